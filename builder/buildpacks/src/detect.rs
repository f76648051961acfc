//! Buildpack detection: pure, over what the source tree holds.
//!
//! The order, first match wins:
//! 1. (Dockerfile builds are another builder's: a tree with a `Dockerfile` is expected to be routed there
//!    before [`detect`] is asked; this module never looks at one.)
//! 2. Python: `requirements.txt` or `pyproject.toml`.
//! 3. Node.js: `package.json`.
//! 4. Python again: a Procfile whose command runs python (a stdlib-only app).
//! 5. Static site: `index.html` at the top, or `public/index.html`.
//! 6. Procfile-only: a Procfile with at least one process.

use std::collections::BTreeMap;

use vocabulary::ProcessType;

use crate::procfile::strip_shell_comment;

/// What detection looks at in a source tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceFacts {
    pub has_requirements_txt: bool,
    pub has_pyproject_toml: bool,
    pub has_package_json: bool,
    /// `index.html` at the top of the tree.
    pub has_index_html: bool,
    /// `public/index.html`.
    pub has_public_index_html: bool,
    /// The parsed Procfile, if there is one.
    pub procfile: Option<BTreeMap<ProcessType, String>>,
}

/// The buildpacks Berth knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buildpack {
    Python,
    Node,
    /// Served by the stack's python3 `http.server` from the named directory of `/app`.
    Static,
    /// The stack and the app, run by the Procfile's commands.
    Procfile,
}

impl Buildpack {
    pub fn name(self) -> &'static str {
        match self {
            Buildpack::Python => "python",
            Buildpack::Node => "nodejs",
            Buildpack::Static => "static",
            Buildpack::Procfile => "procfile",
        }
    }

    /// The `----->` line announcing it.
    pub fn detected_line(self) -> &'static str {
        match self {
            Buildpack::Python => "-----> Python app detected",
            Buildpack::Node => "-----> Node.js app detected",
            Buildpack::Static => "-----> Static site detected",
            Buildpack::Procfile => {
                "-----> Procfile app detected (no language files: the stack runs it as is)"
            }
        }
    }
}

/// The buildpack for a tree, in the order of the module's documentation.
pub fn detect(facts: &SourceFacts) -> Option<Buildpack> {
    let procfile_runs_python = facts
        .procfile
        .as_ref()
        .is_some_and(|p| p.values().any(|command| command_runs_python(command)));
    if facts.has_requirements_txt || facts.has_pyproject_toml {
        Some(Buildpack::Python)
    } else if facts.has_package_json {
        Some(Buildpack::Node)
    } else if procfile_runs_python {
        Some(Buildpack::Python)
    } else if facts.has_index_html || facts.has_public_index_html {
        Some(Buildpack::Static)
    } else if facts.procfile.as_ref().is_some_and(|p| !p.is_empty()) {
        Some(Buildpack::Procfile)
    } else {
        None
    }
}

/// The directory of `/app` a static site is served from: the top when it has an `index.html`, else `public`.
pub fn static_root(facts: &SourceFacts) -> &'static str {
    if facts.has_index_html {
        "/app"
    } else {
        "/app/public"
    }
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
        let facts = SourceFacts::default;
        let cases: Vec<(&str, SourceFacts, Option<Buildpack>)> = vec![
            (
                "requirements.txt",
                SourceFacts {
                    has_requirements_txt: true,
                    ..facts()
                },
                Some(Buildpack::Python),
            ),
            (
                "requirements.txt and a Procfile",
                SourceFacts {
                    has_requirements_txt: true,
                    procfile: web("gunicorn app:app"),
                    ..facts()
                },
                Some(Buildpack::Python),
            ),
            (
                "pyproject.toml",
                SourceFacts {
                    has_pyproject_toml: true,
                    ..facts()
                },
                Some(Buildpack::Python),
            ),
            (
                "Python wins over Node.js",
                SourceFacts {
                    has_requirements_txt: true,
                    has_package_json: true,
                    ..facts()
                },
                Some(Buildpack::Python),
            ),
            (
                "package.json",
                SourceFacts {
                    has_package_json: true,
                    ..facts()
                },
                Some(Buildpack::Node),
            ),
            (
                "package.json wins over a Procfile running python",
                SourceFacts {
                    has_package_json: true,
                    procfile: web("python3 app.py"),
                    ..facts()
                },
                Some(Buildpack::Node),
            ),
            (
                "package.json wins over index.html",
                SourceFacts {
                    has_package_json: true,
                    has_index_html: true,
                    ..facts()
                },
                Some(Buildpack::Node),
            ),
            (
                "a Procfile running python",
                SourceFacts {
                    procfile: web("python3 app.py"),
                    ..facts()
                },
                Some(Buildpack::Python),
            ),
            (
                "index.html",
                SourceFacts {
                    has_index_html: true,
                    ..facts()
                },
                Some(Buildpack::Static),
            ),
            (
                "public/index.html",
                SourceFacts {
                    has_public_index_html: true,
                    ..facts()
                },
                Some(Buildpack::Static),
            ),
            (
                "index.html with a Procfile of its own",
                SourceFacts {
                    has_index_html: true,
                    procfile: web("busybox httpd -f -p $PORT"),
                    ..facts()
                },
                Some(Buildpack::Static),
            ),
            (
                "a Procfile only",
                SourceFacts {
                    procfile: web("node server.js"),
                    ..facts()
                },
                Some(Buildpack::Procfile),
            ),
            (
                "an empty Procfile",
                SourceFacts {
                    procfile: Some(BTreeMap::new()),
                    ..facts()
                },
                None,
            ),
            ("nothing", facts(), None),
        ];
        for (name, facts, expected) in cases {
            assert_eq!(detect(&facts), expected, "{name}: {facts:?}");
        }
    }

    #[test]
    fn static_root_prefers_the_top() {
        let both = SourceFacts {
            has_index_html: true,
            has_public_index_html: true,
            ..SourceFacts::default()
        };
        assert_eq!(static_root(&both), "/app");
        let public = SourceFacts {
            has_public_index_html: true,
            ..SourceFacts::default()
        };
        assert_eq!(static_root(&public), "/app/public");
    }
}
