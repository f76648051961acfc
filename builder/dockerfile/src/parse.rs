//! The Dockerfile parser: pure, from text to typed instructions with their line numbers.
//!
//! Arguments are kept as unexpanded words (see [`crate::words`]); the executor expands them with the build's
//! `ARG` and `ENV` values where Docker does (`FROM`, `COPY`, `ADD`, `ENV`, `ARG`, `WORKDIR`, `USER`,
//! `EXPOSE`, `LABEL`), and leaves `RUN`, `CMD` and `ENTRYPOINT` to the shell. Every word is checked here
//! once, so a bad quote or substitution is reported with its line before anything runs.

use crate::words::{expand, split_words, WordError};

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The escape character (`\` unless a `# escape=` directive says `` ` ``).
    pub escape: char,
    /// `ARG`s before `FROM`: usable in `FROM` only, as in Docker.
    pub global_args: Vec<Instruction>,
    pub instructions: Vec<Instruction>,
}

/// One instruction: its first line in the file, its text (continuations joined) and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    pub line: usize,
    pub text: String,
    pub kind: Kind,
}

/// A command of `RUN`, `CMD` or `ENTRYPOINT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run with `/bin/sh -c`.
    Shell(String),
    /// The JSON array form, run as it is.
    Exec(Vec<String>),
}

/// What an instruction says. Strings are unexpanded words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    From {
        image: String,
    },
    Run(Command),
    Cmd(Command),
    Entrypoint(Command),
    /// `COPY` (`add: false`) or `ADD` (local files only), with `--chown=USER[:GROUP]`.
    Copy {
        add: bool,
        sources: Vec<String>,
        dest: String,
        chown: Option<String>,
    },
    Env(Vec<(String, String)>),
    Arg {
        name: String,
        default: Option<String>,
    },
    Workdir(String),
    User(String),
    Expose(Vec<String>),
    Label(Vec<(String, String)>),
    /// `MAINTAINER`, `VOLUME`, `STOPSIGNAL`, `HEALTHCHECK`, `ONBUILD`: accepted and ignored (Berth's
    /// instances have no volumes, health checks run by the platform, and no image builds on another's).
    Ignored {
        keyword: String,
    },
}

impl Kind {
    /// Whether the step changes the filesystem (makes a layer).
    pub fn makes_layer(&self) -> bool {
        matches!(self, Kind::Run(_) | Kind::Copy { .. })
    }
}

/// A syntax error, with the line it is on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Dockerfile line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// Parses a whole Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let escape = escape_directive(text)?;
    let mut global_args = Vec::new();
    let mut instructions: Vec<Instruction> = Vec::new();
    let mut seen_from = false;
    for (line, joined) in logical_lines(text, escape) {
        let err = |message: String| ParseError { line, message };
        let (keyword, args) = match joined.split_once(char::is_whitespace) {
            Some((k, a)) => (k, a.trim()),
            None => (joined.as_str(), ""),
        };
        let kind = parse_instruction(&keyword.to_ascii_uppercase(), args, escape).map_err(err)?;
        let instruction = Instruction {
            line,
            text: joined.clone(),
            kind,
        };
        match (&instruction.kind, seen_from) {
            (Kind::From { .. }, true) => {
                return Err(err(
                    "multi-stage builds (a second FROM) are not supported yet".into()
                ))
            }
            (Kind::From { .. }, false) => seen_from = true,
            (Kind::Arg { .. }, false) => {
                global_args.push(instruction);
                continue;
            }
            (_, false) => {
                return Err(err(format!(
                    "{} before FROM: a Dockerfile must start with FROM (only ARG may come before it)",
                    keyword.to_ascii_uppercase()
                )))
            }
            (_, true) => {}
        }
        instructions.push(instruction);
    }
    if !seen_from {
        return Err(ParseError {
            line: text.lines().count().max(1),
            message: "no FROM instruction".into(),
        });
    }
    Ok(Dockerfile {
        escape,
        global_args,
        instructions,
    })
}

/// Reads the parser directives at the top (`# escape=`, `# syntax=`, `# check=`): they end at the first line
/// that is not one.
fn escape_directive(text: &str) -> Result<char, ParseError> {
    let mut escape = '\\';
    for (i, line) in text.lines().enumerate() {
        let Some(comment) = line.trim().strip_prefix('#') else {
            break;
        };
        let Some((name, value)) = comment.split_once('=') else {
            break;
        };
        let name = name.trim().to_ascii_lowercase();
        if name.contains(char::is_whitespace) {
            break;
        }
        match name.as_str() {
            "escape" => {
                escape = match value.trim() {
                    "\\" => '\\',
                    "`" => '`',
                    other => {
                        return Err(ParseError {
                            line: i + 1,
                            message: format!("escape directive must be \\ or `, not {other:?}"),
                        })
                    }
                }
            }
            "syntax" | "check" => {}
            _ => break,
        }
    }
    Ok(escape)
}

/// Joins continuation lines and drops comments and blank lines; yields (first line number, text).
fn logical_lines(text: &str, escape: char) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        // Comments are dropped also inside a continuation, as Docker does.
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_none()) {
            continue;
        }
        if trimmed.is_empty() {
            continue;
        }
        let line = raw.trim_end();
        let (content, continues) = match line.strip_suffix(escape) {
            // An escaped escape at the end (`\\`) is not a continuation.
            Some(rest) if !rest.ends_with(escape) => (rest, true),
            _ => (line, false),
        };
        let entry = current.get_or_insert_with(|| (i + 1, String::new()));
        if entry.1.is_empty() {
            entry.1.push_str(content.trim_start());
        } else {
            entry.1.push_str(content);
        }
        if !continues {
            out.extend(current.take());
        }
    }
    out.extend(current.take());
    out
}

fn parse_instruction(keyword: &str, args: &str, escape: char) -> Result<Kind, String> {
    let need_args = || {
        if args.is_empty() {
            Err(format!("{keyword} needs arguments"))
        } else {
            Ok(())
        }
    };
    let words = || -> Result<Vec<String>, String> {
        let words = split_words(args, escape).map_err(|WordError(e)| e)?;
        for word in &words {
            check_word(word, escape)?;
        }
        Ok(words)
    };
    match keyword {
        "FROM" => {
            need_args()?;
            let words = words()?;
            refuse_flags(keyword, &words)?;
            match words.as_slice() {
                [image] => Ok(Kind::From { image: image.clone() }),
                [image, as_, _name] if as_.eq_ignore_ascii_case("as") => {
                    Ok(Kind::From { image: image.clone() })
                }
                _ => Err("FROM takes an image, optionally followed by AS NAME".into()),
            }
        }
        "RUN" => {
            need_args()?;
            if args.starts_with("--") {
                return Err(format!(
                    "RUN flags such as {} are not supported",
                    args.split_whitespace().next().unwrap_or_default()
                ));
            }
            Ok(Kind::Run(command(args, keyword)?))
        }
        "CMD" => {
            need_args()?;
            Ok(Kind::Cmd(command(args, keyword)?))
        }
        "ENTRYPOINT" => {
            need_args()?;
            Ok(Kind::Entrypoint(command(args, keyword)?))
        }
        "COPY" | "ADD" => {
            need_args()?;
            let add = keyword == "ADD";
            // Flags come first, also before the JSON form.
            let mut rest = args;
            let mut chown = None;
            while let Some(flagged) = rest.strip_prefix("--") {
                let (flag, after) = flagged.split_once(char::is_whitespace).unwrap_or((flagged, ""));
                match flag.split_once('=') {
                    Some(("chown", value)) if !value.is_empty() => {
                        check_word(value, escape)?;
                        chown = Some(value.to_owned());
                    }
                    _ => refuse_flags(keyword, &[format!("--{flag}")])?,
                }
                rest = after.trim_start();
            }
            let mut parts = match json_array(rest) {
                Some(parts) => parts?,
                None => {
                    let words = split_words(rest, escape).map_err(|WordError(e)| e)?;
                    for word in &words {
                        check_word(word, escape)?;
                    }
                    words
                }
            };
            if parts.len() < 2 {
                return Err(format!("{keyword} needs at least one source and a destination"));
            }
            let dest = parts.pop().expect("two or more parts");
            if add {
                if let Some(url) = parts.iter().find(|s| s.contains("://") || s.starts_with("git@")) {
                    return Err(format!(
                        "ADD of a URL ({url}) is not supported: download it in a RUN step instead"
                    ));
                }
            }
            Ok(Kind::Copy {
                add,
                sources: parts,
                dest,
                chown,
            })
        }
        "ENV" | "LABEL" => {
            need_args()?;
            let pairs = pairs(keyword, args, escape, &words()?)?;
            Ok(if keyword == "ENV" {
                Kind::Env(pairs)
            } else {
                Kind::Label(pairs)
            })
        }
        "ARG" => {
            need_args()?;
            match words()?.as_slice() {
                [one] => {
                    let (name, default) = match one.split_once('=') {
                        Some((n, d)) => (n.to_owned(), Some(d.to_owned())),
                        None => (one.clone(), None),
                    };
                    check_name(keyword, &name)?;
                    Ok(Kind::Arg { name, default })
                }
                _ => Err("ARG takes one NAME or NAME=default".into()),
            }
        }
        "WORKDIR" | "USER" => {
            need_args()?;
            check_word(args, escape)?;
            if keyword == "USER" && words()?.len() != 1 {
                return Err("USER takes one user, as NAME, UID, NAME:GROUP or UID:GID".into());
            }
            Ok(if keyword == "WORKDIR" {
                Kind::Workdir(args.to_owned())
            } else {
                Kind::User(args.to_owned())
            })
        }
        "EXPOSE" => {
            need_args()?;
            Ok(Kind::Expose(words()?))
        }
        // They change nothing that Berth runs: kept in the history, announced as ignored.
        "MAINTAINER" | "VOLUME" | "STOPSIGNAL" | "HEALTHCHECK" | "ONBUILD" => {
            need_args()?;
            Ok(Kind::Ignored {
                keyword: keyword.to_owned(),
            })
        }
        "SHELL" => Err("SHELL is not supported: RUN, CMD and ENTRYPOINT shell forms use /bin/sh -c".into()),
        other => Err(format!("unknown instruction {other}")),
    }
}

/// Docker parses a JSON array of strings as the exec form and anything else as the shell form.
fn json_array(args: &str) -> Option<Result<Vec<String>, String>> {
    if !args.starts_with('[') {
        return None;
    }
    match serde_json::from_str::<Vec<String>>(args) {
        Ok(parts) => Some(Ok(parts)),
        Err(_) if serde_json::from_str::<serde_json::Value>(args).is_ok() => {
            Some(Err("the JSON form must be an array of strings".into()))
        }
        Err(_) => None,
    }
}

fn command(args: &str, keyword: &str) -> Result<Command, String> {
    match json_array(args) {
        Some(Ok(parts)) if parts.is_empty() && keyword == "RUN" => Err("RUN [] runs nothing".into()),
        Some(Ok(parts)) => Ok(Command::Exec(parts)),
        Some(Err(e)) => Err(e),
        None => Ok(Command::Shell(args.to_owned())),
    }
}

fn refuse_flags(keyword: &str, words: &[String]) -> Result<(), String> {
    match words.iter().find(|w| w.starts_with("--")) {
        Some(flag) if flag == "--chown" => {
            Err(format!("{keyword} --chown needs a value: --chown=USER[:GROUP]"))
        }
        Some(flag) if flag.starts_with("--from") => Err(format!(
            "{keyword} {flag}: multi-stage builds are not supported yet"
        )),
        Some(flag) => Err(format!("{keyword} flag {flag} is not supported")),
        None => Ok(()),
    }
}

/// `KEY=VALUE ...`, or the legacy `KEY VALUE WITH SPACES`.
fn pairs(keyword: &str, args: &str, escape: char, words: &[String]) -> Result<Vec<(String, String)>, String> {
    let first = &words[0];
    if !first.contains('=') {
        let value = args[first.len()..].trim();
        if value.is_empty() {
            return Err(format!(
                "{keyword} {first} needs a value: use {keyword} {first}=VALUE"
            ));
        }
        check_name(keyword, first)?;
        check_word(value, escape)?;
        return Ok(vec![(first.clone(), value.to_owned())]);
    }
    words
        .iter()
        .map(|word| {
            let (key, value) = word
                .split_once('=')
                .ok_or_else(|| format!("{keyword} {word}: expected KEY=VALUE"))?;
            if keyword == "ENV" {
                check_name(keyword, key)?;
            } else if key.is_empty() {
                return Err(format!("{keyword} {word}: empty key"));
            }
            Ok((key.to_owned(), value.to_owned()))
        })
        .collect()
}

fn check_name(keyword: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!("{keyword}: {name:?} is not a valid variable name"))
    }
}

/// Expands a word with no variables set, to report bad quotes and substitutions at parse time.
fn check_word(word: &str, escape: char) -> Result<(), String> {
    expand(word, escape, &|_| None)
        .map(drop)
        .map_err(|WordError(e)| e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<Kind> {
        parse(text)
            .unwrap()
            .instructions
            .into_iter()
            .map(|i| i.kind)
            .collect()
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn kv(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn instructions() {
        let from = || Kind::From {
            image: "berth/bookworm".into(),
        };
        let cases: Vec<(&str, Vec<Kind>)> = vec![
            ("FROM berth/bookworm", vec![from()]),
            ("from berth/bookworm AS build", vec![from()]),
            (
                "FROM berth/bookworm\nRUN apt-get update && echo hi",
                vec![from(), Kind::Run(Command::Shell("apt-get update && echo hi".into()))],
            ),
            (
                "FROM berth/bookworm\nRUN [\"echo\", \"a b\"]",
                vec![from(), Kind::Run(Command::Exec(s(&["echo", "a b"])))],
            ),
            (
                "FROM berth/bookworm\nCMD [not json",
                vec![from(), Kind::Cmd(Command::Shell("[not json".into()))],
            ),
            (
                "FROM berth/bookworm\nENTRYPOINT [\"python3\"]\nCMD [\"app.py\"]",
                vec![
                    from(),
                    Kind::Entrypoint(Command::Exec(s(&["python3"]))),
                    Kind::Cmd(Command::Exec(s(&["app.py"]))),
                ],
            ),
            (
                "FROM berth/bookworm\nCOPY a b /app/\nADD [\"x y\", \"/z\"]\nCOPY --chown=app:$GROUP . /srv\nCOPY --chown=1000 [\"a\", \"b\"]",
                vec![
                    from(),
                    Kind::Copy {
                        add: false,
                        sources: s(&["a", "b"]),
                        dest: "/app/".into(),
                        chown: None,
                    },
                    Kind::Copy {
                        add: true,
                        sources: s(&["x y"]),
                        dest: "/z".into(),
                        chown: None,
                    },
                    Kind::Copy {
                        add: false,
                        sources: s(&["."]),
                        dest: "/srv".into(),
                        chown: Some("app:$GROUP".into()),
                    },
                    Kind::Copy {
                        add: false,
                        sources: s(&["a"]),
                        dest: "b".into(),
                        chown: Some("1000".into()),
                    },
                ],
            ),
            (
                "FROM berth/bookworm\nENV A=1 B=\"two words\"\nENV LEGACY some value",
                vec![
                    from(),
                    Kind::Env(kv(&[("A", "1"), ("B", "\"two words\"")])),
                    Kind::Env(kv(&[("LEGACY", "some value")])),
                ],
            ),
            (
                "ARG BASE=berth/bookworm\nFROM $BASE\nARG V\nARG W=${V:-x}",
                vec![
                    Kind::From {
                        image: "$BASE".into(),
                    },
                    Kind::Arg {
                        name: "V".into(),
                        default: None,
                    },
                    Kind::Arg {
                        name: "W".into(),
                        default: Some("${V:-x}".into()),
                    },
                ],
            ),
            (
                "FROM berth/bookworm\nWORKDIR /srv/my app\nUSER app:app\nEXPOSE 8080 53/udp\nLABEL a.b=c \"d e\"=f",
                vec![
                    from(),
                    Kind::Workdir("/srv/my app".into()),
                    Kind::User("app:app".into()),
                    Kind::Expose(s(&["8080", "53/udp"])),
                    Kind::Label(kv(&[("a.b", "c"), ("\"d e\"", "f")])),
                ],
            ),
            (
                "FROM x\nVOLUME /data\nhealthcheck CMD curl -f http://localhost/",
                vec![
                    Kind::From { image: "x".into() },
                    Kind::Ignored {
                        keyword: "VOLUME".into(),
                    },
                    Kind::Ignored {
                        keyword: "HEALTHCHECK".into(),
                    },
                ],
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(kinds(text), expected, "{text:?}");
        }
    }

    #[test]
    fn lines_comments_and_continuations() {
        let text = "# a comment\n\nFROM berth/bookworm\n\nRUN echo a \\\n  # inside\n    && echo b\n# between\nCMD x\n";
        let parsed = parse(text).unwrap();
        let lines: Vec<(usize, &str)> = parsed
            .instructions
            .iter()
            .map(|i| (i.line, i.text.as_str()))
            .collect();
        assert_eq!(
            lines,
            [
                (3, "FROM berth/bookworm"),
                (5, "RUN echo a     && echo b"),
                (9, "CMD x")
            ]
        );
        // An escaped escape at the end of a line does not continue it.
        let parsed = parse("FROM x\nRUN echo \\\\\nCMD y").unwrap();
        assert_eq!(parsed.instructions.len(), 3);
    }

    #[test]
    fn escape_directive() {
        let parsed = parse("# escape=`\nFROM x\nRUN echo a `\n  b\nCOPY C:\\src /dst\n").unwrap();
        assert_eq!(parsed.escape, '`');
        assert_eq!(
            parsed.instructions[1].kind,
            Kind::Run(Command::Shell("echo a   b".into()))
        );
        // After the first non-directive line, `# escape=` is an ordinary comment.
        let parsed = parse("# hello\n# escape=`\nFROM x\n").unwrap();
        assert_eq!(parsed.escape, '\\');
        let err = parse("# escape=x\nFROM x\n").unwrap_err();
        assert_eq!(err.line, 1);
    }

    #[test]
    fn errors_name_the_line() {
        let cases: &[(&str, usize, &str)] = &[
            ("FROM x\nFOO bar", 2, "unknown instruction FOO"),
            ("RUN echo", 1, "before FROM"),
            ("", 1, "no FROM"),
            ("FROM x\n\nADD https://example.com/a.tgz /a", 3, "ADD of a URL"),
            ("FROM x\nCOPY onlyone", 2, "at least one source"),
            ("FROM x\nCOPY --from=build /a /b", 2, "multi-stage"),
            ("FROM x\nCOPY --chmod=755 a /b", 2, "flag --chmod"),
            ("FROM x\nCOPY --chown a /b", 2, "--chown needs a value"),
            ("FROM x\nCOPY --chown=a", 2, "at least one source"),
            ("FROM x\nFROM y", 2, "multi-stage"),
            ("FROM x\nENV", 2, "ENV needs arguments"),
            ("FROM x\nENV A", 2, "needs a value"),
            ("FROM x\nENV 1A=b", 2, "not a valid variable name"),
            ("FROM x\nENV A=\"open", 2, "unterminated"),
            ("FROM x\nWORKDIR ${DIR", 2, "missing '}'"),
            ("FROM x\nLABEL a=b c", 2, "expected KEY=VALUE"),
            ("FROM x\nRUN --mount=type=cache,target=/x true", 2, "--mount"),
            ("FROM x\nRUN []", 2, "runs nothing"),
            ("FROM x\nCMD [1, 2]", 2, "array of strings"),
            ("FROM x\nARG A B", 2, "ARG takes one"),
            ("FROM x\nUSER a b", 2, "USER takes one"),
            ("FROM x\nSHELL [\"bash\", \"-c\"]", 2, "SHELL is not supported"),
            ("FROM x\nHEALTHCHECK", 2, "HEALTHCHECK needs arguments"),
            ("FROM x\nRUN echo \\\n\n  \\\nHEALTHCHECK x", 2, ""),
        ];
        for (text, line, needle) in cases {
            match parse(text) {
                Err(err) => {
                    assert_eq!(err.line, *line, "{text:?}: {err}");
                    assert!(err.to_string().contains(needle), "{text:?}: {err}");
                    assert!(err.to_string().starts_with(&format!("Dockerfile line {line}: ")));
                }
                Ok(parsed) => assert!(needle.is_empty(), "{text:?} parsed: {parsed:?}"),
            }
        }
    }
}
