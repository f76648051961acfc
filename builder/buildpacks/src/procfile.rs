//! Procfile parsing, as lenient as Heroku's: `type: command` lines, blank lines and `#` comment lines
//! ignored, and a trailing shell comment (`web: gunicorn app:app  # two workers`) removed from the command.

use std::collections::BTreeMap;

use vocabulary::ProcessType;

/// A bad Procfile line. The message is shown to the user in the push output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcfileError {
    #[error("Procfile line {line}: expected `type: command`, like `web: python3 app.py`, got {text:?}")]
    NotAProcess { line: usize, text: String },
    #[error("Procfile line {line}: {reason}")]
    BadType { line: usize, reason: String },
    #[error("Procfile line {line}: process type {process_type} has no command")]
    EmptyCommand { line: usize, process_type: String },
    #[error("Procfile line {line}: process type {process_type} is already defined on line {first}")]
    Duplicate {
        line: usize,
        process_type: String,
        first: usize,
    },
}

/// Parses a Procfile into its process types and commands.
pub fn parse_procfile(text: &str) -> Result<BTreeMap<ProcessType, String>, ProcfileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut processes = BTreeMap::new();
    let mut first_line: BTreeMap<String, usize> = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some((name, command)) = trimmed.split_once(':') else {
            return Err(ProcfileError::NotAProcess {
                line,
                text: trimmed.to_owned(),
            });
        };
        let name = name.trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(ProcfileError::NotAProcess {
                line,
                text: trimmed.to_owned(),
            });
        }
        let process_type = ProcessType::new(name).map_err(|e| ProcfileError::BadType {
            line,
            reason: e.to_string(),
        })?;
        let command = strip_shell_comment(command).trim();
        if command.is_empty() {
            return Err(ProcfileError::EmptyCommand {
                line,
                process_type: name.to_owned(),
            });
        }
        if let Some(first) = first_line.insert(name.to_owned(), line) {
            return Err(ProcfileError::Duplicate {
                line,
                process_type: name.to_owned(),
                first,
            });
        }
        processes.insert(process_type, command.to_owned());
    }
    Ok(processes)
}

/// The command without a trailing shell comment: a `#` at the start of a word, outside quotes. `$#`,
/// `${#x}`, `a#b` and `"# not a comment"` are kept, as `sh` would.
pub fn strip_shell_comment(command: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut previous: Option<char> = None;
    for (i, c) in command.char_indices() {
        if escaped {
            escaped = false;
        } else if let Some(q) = quote {
            if c == q {
                quote = None;
            } else if c == '\\' && q == '"' {
                escaped = true;
            }
        } else {
            match c {
                '\\' => escaped = true,
                '\'' | '"' => quote = Some(c),
                '#' if previous.is_none_or(|p| p.is_whitespace() || p == ';' || p == '&' || p == '|') => {
                    return &command[..i];
                }
                _ => {}
            }
        }
        previous = Some(c);
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Vec<(String, String)> {
        parse_procfile(text)
            .unwrap()
            .into_iter()
            .map(|(t, c)| (t.to_string(), c))
            .collect()
    }

    #[test]
    fn good_procfiles() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("web: python3 app.py\n", &[("web", "python3 app.py")]),
            ("web:python3 app.py", &[("web", "python3 app.py")]),
            (
                "# a comment\n\nweb: gunicorn app:app --bind 0.0.0.0:$PORT\nworker: python3 worker.py\n",
                &[
                    ("web", "gunicorn app:app --bind 0.0.0.0:$PORT"),
                    ("worker", "python3 worker.py"),
                ],
            ),
            (
                "web: python3 app.py  # serves HTTP\n",
                &[("web", "python3 app.py")],
            ),
            (
                "web: echo \"# not a comment\" && python3 app.py",
                &[("web", "echo \"# not a comment\" && python3 app.py")],
            ),
            ("web: echo $# ${#x} a#b", &[("web", "echo $# ${#x} a#b")]),
            (
                "\u{feff}web: python3 app.py\r\nclock: python3 clock.py\r\n",
                &[("clock", "python3 clock.py"), ("web", "python3 app.py")],
            ),
            (
                "   web:   python3 app.py   \n  # indented comment\n",
                &[("web", "python3 app.py")],
            ),
            ("", &[]),
        ];
        for (text, expected) in cases {
            let expected: Vec<(String, String)> = expected
                .iter()
                .map(|(t, c)| (t.to_string(), c.to_string()))
                .collect();
            assert_eq!(parsed(text), expected, "{text:?}");
        }
    }

    #[test]
    fn bad_procfiles() {
        let cases: &[(&str, &str)] = &[
            ("web python3 app.py", "Procfile line 1: expected `type: command`, like `web: python3 app.py`, got \"web python3 app.py\""),
            ("\nweb: python3 a.py\nweb: python3 b.py", "Procfile line 3: process type web is already defined on line 2"),
            ("web:", "Procfile line 1: process type web has no command"),
            ("web:   # later", "Procfile line 1: process type web has no command"),
            ("Web: python3 app.py", "Procfile line 1: process type \"Web\" is not valid: use lowercase letters, digits and dashes, starting with a letter and not ending with a dash"),
            ("my worker: python3 w.py", "Procfile line 1: expected `type: command`, like `web: python3 app.py`, got \"my worker: python3 w.py\""),
            (": python3 app.py", "Procfile line 1: expected `type: command`, like `web: python3 app.py`, got \": python3 app.py\""),
        ];
        for (text, message) in cases {
            assert_eq!(
                parse_procfile(text).unwrap_err().to_string(),
                *message,
                "{text:?}"
            );
        }
    }
}
