//! Docker's word rules: splitting an instruction's arguments into words (quotes and the escape character
//! keep whitespace inside a word), and expanding one word (quotes removed, `$VAR`, `${VAR}`,
//! `${VAR:-default}`, `${VAR:+alt}`, `${VAR-default}`, `${VAR+alt}` substituted outside single quotes).
//!
//! Splitting happens before expansion, as in Docker: a value that holds spaces stays one word.

/// A word-level syntax error; the parser adds the line number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WordError(pub String);

/// Splits `text` on unquoted, unescaped whitespace. Quotes and escapes stay in the words (see [`expand`]).
pub fn split_words(text: &str, escape: char) -> Result<Vec<String>, WordError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                word.push(c);
                if c == q {
                    quote = None;
                } else if c == escape && q == '"' {
                    if let Some(next) = chars.next() {
                        word.push(next);
                    }
                }
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            None => {
                in_word = true;
                word.push(c);
                if c == '\'' || c == '"' {
                    quote = Some(c);
                } else if c == escape {
                    if let Some(next) = chars.next() {
                        word.push(next);
                    }
                }
            }
        }
    }
    if let Some(q) = quote {
        return Err(WordError(format!("unterminated {q} quote")));
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Expands one word: removes quotes and escapes, substitutes variables from `lookup` (outside single
/// quotes). An unset variable expands to nothing, as in Docker.
pub fn expand(
    word: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, WordError> {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        match (quote, c) {
            (Some('\''), '\'') | (Some('"'), '"') => quote = None,
            (Some('\''), _) => out.push(c),
            (None, '\'') | (None, '"') => quote = Some(c),
            (_, c) if c == escape => {
                i += 1;
                match chars.get(i) {
                    // Inside double quotes, the escape only escapes `"`, `$` and itself, like the shell.
                    Some(&next) if quote.is_none() || matches!(next, '"' | '$') || next == escape => {
                        out.push(next)
                    }
                    Some(&next) => {
                        out.push(c);
                        out.push(next);
                    }
                    None => out.push(c),
                }
            }
            (_, '$') => {
                let (value, used) = variable(&chars[i + 1..], escape, lookup)?;
                out.push_str(&value);
                i += used;
            }
            _ => out.push(c),
        }
        i += 1;
    }
    if let Some(q) = quote {
        return Err(WordError(format!("unterminated {q} quote")));
    }
    Ok(out)
}

/// The value of the variable reference after a `$`, and how many characters it used (0 for a lone `$`).
fn variable(
    rest: &[char],
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, usize), WordError> {
    let is_name = |c: &char| c.is_ascii_alphanumeric() || *c == '_';
    match rest.first() {
        Some('{') => {
            let body_len = closing_brace(&rest[1..])
                .ok_or_else(|| WordError("missing '}' in a ${...} substitution".into()))?;
            let body: String = rest[1..1 + body_len].iter().collect();
            let name_len = body.chars().take_while(is_name).count();
            let (name, op) = body.split_at(name_len);
            if name.is_empty() {
                return Err(WordError(format!("bad substitution ${{{body}}}")));
            }
            let value = lookup(name);
            let expanded = |word: &str| expand(word, escape, lookup);
            let result = if op.is_empty() {
                value.unwrap_or_default()
            } else if let Some(word) = op.strip_prefix(":-") {
                match value {
                    Some(v) if !v.is_empty() => v,
                    _ => expanded(word)?,
                }
            } else if let Some(word) = op.strip_prefix(":+") {
                match value {
                    Some(v) if !v.is_empty() => expanded(word)?,
                    _ => String::new(),
                }
            } else if let Some(word) = op.strip_prefix('-') {
                match value {
                    Some(v) => v,
                    None => expanded(word)?,
                }
            } else if let Some(word) = op.strip_prefix('+') {
                match value {
                    Some(_) => expanded(word)?,
                    None => String::new(),
                }
            } else {
                return Err(WordError(format!(
                    "unsupported substitution ${{{body}}}: use ${{NAME}}, ${{NAME:-default}} or ${{NAME:+alternative}}"
                )));
            };
            Ok((result, body_len + 2))
        }
        Some(c) if is_name(c) => {
            let name: String = rest.iter().take_while(|c| is_name(c)).collect();
            let used = name.chars().count();
            Ok((lookup(&name).unwrap_or_default(), used))
        }
        _ => Ok(("$".to_owned(), 0)),
    }
}

/// The index of the `}` closing a `${`, allowing nested `${...}` in defaults.
fn closing_brace(chars: &[char]) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in chars.iter().enumerate() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "NAME" => Some("berth".into()),
            "EMPTY" => Some(String::new()),
            "SPACED" => Some("a b".into()),
            _ => None,
        }
    }

    #[test]
    fn splitting() {
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("a b  c", &["a", "b", "c"]),
            ("  a\tb ", &["a", "b"]),
            (r#"a="x y" b"#, &[r#"a="x y""#, "b"]),
            ("'a b' c", &["'a b'", "c"]),
            (r"a\ b c", &[r"a\ b", "c"]),
            (r#""a \" b" c"#, &[r#""a \" b""#, "c"]),
            ("$X ${Y:-a b}", &["$X", "${Y:-a", "b}"]),
        ];
        for (text, words) in cases {
            assert_eq!(split_words(text, '\\').unwrap(), *words, "{text:?}");
        }
        assert_eq!(split_words("a` b c", '`').unwrap(), ["a` b", "c"]);
        for bad in ["'open", "a \"open"] {
            assert!(split_words(bad, '\\').is_err(), "{bad:?}");
        }
    }

    #[test]
    fn expanding() {
        let cases: &[(&str, &str)] = &[
            ("plain", "plain"),
            ("$NAME", "berth"),
            ("${NAME}", "berth"),
            ("x${NAME}y", "xberthy"),
            ("$NAME.txt", "berth.txt"),
            ("$NAMEx", ""),
            ("$MISSING", ""),
            ("${MISSING:-def}", "def"),
            ("${EMPTY:-def}", "def"),
            ("${EMPTY-def}", ""),
            ("${MISSING-def}", "def"),
            ("${NAME:-def}", "berth"),
            ("${NAME:+alt}", "alt"),
            ("${MISSING:+alt}", ""),
            ("${EMPTY+alt}", "alt"),
            ("${MISSING:-${NAME}}", "berth"),
            ("'$NAME'", "$NAME"),
            ("\"$NAME\"", "berth"),
            ("\"a b\"", "a b"),
            (r"\$NAME", "$NAME"),
            (r"a\ b", "a b"),
            (r#""a\"b""#, "a\"b"),
            (r#""a\nb""#, r"a\nb"),
            ("$", "$"),
            ("cost $5", "cost "),
            ("${SPACED}", "a b"),
        ];
        for (word, expanded) in cases {
            assert_eq!(expand(word, '\\', &vars).unwrap(), *expanded, "{word:?}");
        }
        assert_eq!(expand("`$NAME", '`', &vars).unwrap(), "$NAME");
        assert_eq!(expand(r"C:\dir", '`', &vars).unwrap(), r"C:\dir");
        for bad in ["${", "${NAME", "${}", "${NAME/x/y}", "'open", "${:-x}"] {
            assert!(expand(bad, '\\', &vars).is_err(), "{bad:?} accepted");
        }
    }
}
