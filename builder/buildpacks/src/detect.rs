//! Buildpack detection: pure, over what the source tree holds.

use std::collections::BTreeMap;

use vocabulary::ProcessType;

use crate::procfile::strip_shell_comment;

/// What detection looks at in a source tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceFacts {
    pub has_requirements_txt: bool,
    /// The parsed Procfile, if there is one.
    pub procfile: Option<BTreeMap<ProcessType, String>>,
}

/// The buildpacks Berth knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buildpack {
    Python,
}

impl Buildpack {
    pub fn name(self) -> &'static str {
        match self {
            Buildpack::Python => "python",
        }
    }
}

/// Python when there is a `requirements.txt`, or a Procfile with a command that runs python.
pub fn detect(facts: &SourceFacts) -> Option<Buildpack> {
    let procfile_runs_python = facts
        .procfile
        .as_ref()
        .is_some_and(|p| p.values().any(|command| command_runs_python(command)));
    (facts.has_requirements_txt || procfile_runs_python).then_some(Buildpack::Python)
}

/// Whether a shell command runs a Python interpreter: a word `python`, `python3`, `python3.11` (or a path
/// ending in one), after any `VAR=value` assignments and shell operators.
pub fn command_runs_python(command: &str) -> bool {
    strip_shell_comment(command)
        .split(|c: char| c.is_whitespace() || matches!(c, ';' | '&' | '|' | '(' | ')' | '`'))
        .filter(|word| !word.is_empty())
        .map(|word| word.trim_matches(|c| c == '"' || c == '\''))
        .filter(|word| !is_assignment(word))
        .map(|word| word.rsplit('/').next().unwrap_or(word))
        .any(is_python)
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

fn is_python(name: &str) -> bool {
    let Some(version) = name.strip_prefix("python") else {
        return false;
    };
    version.is_empty() || version.chars().all(|c| c.is_ascii_digit() || c == '.') && version.starts_with('3')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_commands() {
        let cases: &[(&str, bool)] = &[
            ("python3 app.py", true),
            ("python app.py", true),
            ("python3.11 -m http.server $PORT", true),
            ("/usr/bin/python3 app.py", true),
            ("PORT=5000 DEBUG=1 python3 app.py", true),
            ("cd src && python3 main.py", true),
            ("exec python3 -u app.py", true),
            ("sh -c 'python3 app.py'", true),
            ("node server.js", false),
            ("./run-python-thing", false),
            ("pythonista app.py", false),
            ("python2 app.py", false),
            ("echo hi # python3 app.py", false),
            ("gunicorn app:app", false),
        ];
        for (command, expected) in cases {
            assert_eq!(command_runs_python(command), *expected, "{command:?}");
        }
    }

    #[test]
    fn detection() {
        let web = |cmd: &str| Some(BTreeMap::from([(ProcessType::web(), cmd.to_owned())]));
        let cases: &[(SourceFacts, Option<Buildpack>)] = &[
            (
                SourceFacts {
                    has_requirements_txt: true,
                    procfile: None,
                },
                Some(Buildpack::Python),
            ),
            (
                SourceFacts {
                    has_requirements_txt: true,
                    procfile: web("gunicorn app:app"),
                },
                Some(Buildpack::Python),
            ),
            (
                SourceFacts {
                    has_requirements_txt: false,
                    procfile: web("python3 app.py"),
                },
                Some(Buildpack::Python),
            ),
            (
                SourceFacts {
                    has_requirements_txt: false,
                    procfile: web("node server.js"),
                },
                None,
            ),
            (
                SourceFacts {
                    has_requirements_txt: false,
                    procfile: Some(BTreeMap::new()),
                },
                None,
            ),
            (SourceFacts::default(), None),
        ];
        for (facts, expected) in cases {
            assert_eq!(detect(facts), *expected, "{facts:?}");
        }
    }
}
