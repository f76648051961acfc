//! `.slugignore`, Heroku's format: one pattern per line, blank lines and `#` comments skipped, matched like
//! `.gitignore` without negation. A pattern with a `/` inside (or at the start) is matched against the path
//! from the top of the tree, one without against every file or directory name; a trailing `/` matches
//! directories only. `*` and `?` stay within one name, `**` crosses directories. Matched paths are left out
//! of the app layer (and of builds that run on a copy of the tree), with everything beneath them.

use std::path::{Path, PathBuf};

/// One usable line of a `.slugignore`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    glob: String,
    /// Matched against the whole relative path rather than each name.
    anchored: bool,
    dir_only: bool,
}

/// The patterns of a `.slugignore`, and the lines that were ignored, with why (shown as warnings).
pub fn parse(text: &str) -> (Vec<Pattern>, Vec<String>) {
    let mut patterns = Vec::new();
    let mut warnings = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('!') {
            warnings.push(format!(
                ".slugignore line {}: negated patterns are not supported, ignoring {line:?}",
                index + 1
            ));
            continue;
        }
        let dir_only = line.ends_with('/');
        let body = line.trim_end_matches('/');
        let anchored = body.contains('/');
        let glob = body.trim_start_matches('/');
        if glob.is_empty() || glob.split('/').any(|part| part == "..") {
            warnings.push(format!(".slugignore line {}: ignoring {line:?}", index + 1));
            continue;
        }
        patterns.push(Pattern {
            glob: glob.to_owned(),
            anchored,
            dir_only,
        });
    }
    (patterns, warnings)
}

impl Pattern {
    /// Whether `rel` (relative to the top, `/`-separated) is matched.
    pub fn matches(&self, rel: &str, is_dir: bool) -> bool {
        if self.dir_only && !is_dir {
            return false;
        }
        if self.anchored {
            glob_match(self.glob.as_bytes(), rel.as_bytes())
        } else {
            let name = rel.rsplit('/').next().unwrap_or(rel);
            glob_match(self.glob.as_bytes(), name.as_bytes())
        }
    }
}

/// The relative paths under `root` that `patterns` leave out (a matched directory stands for its contents).
pub fn excluded_paths(root: &Path, patterns: &[Pattern]) -> Vec<PathBuf> {
    if patterns.is_empty() {
        return Vec::new();
    }
    let mut excluded = Vec::new();
    let mut walk = walkdir::WalkDir::new(root)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter();
    while let Some(Ok(entry)) = walk.next() {
        let Ok(rel) = entry.path().strip_prefix(root) else {
            continue;
        };
        let Some(rel_str) = rel.to_str() else { continue };
        let is_dir = entry.file_type().is_dir();
        if patterns.iter().any(|p| p.matches(rel_str, is_dir)) {
            excluded.push(rel.to_owned());
            if is_dir {
                walk.skip_current_dir();
            }
        }
    }
    excluded
}

/// Glob matching: `*` and `?` do not cross `/`, `**` does.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) if rest.first() == Some(&b'*') => {
            // `**/` also matches no directory at all.
            let rest = &rest[1..];
            if let Some(after) = rest.strip_prefix(b"/") {
                if glob_match(after, text) {
                    return true;
                }
            }
            (0..=text.len()).any(|i| glob_match(rest, &text[i..]))
        }
        Some((b'*', rest)) => {
            for i in 0..=text.len() {
                if glob_match(rest, &text[i..]) {
                    return true;
                }
                if text.get(i) == Some(&b'/') {
                    break;
                }
            }
            false
        }
        Some((b'?', rest)) => matches!(text.first(), Some(c) if *c != b'/') && glob_match(rest, &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && glob_match(rest, &text[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing() {
        let (patterns, warnings) = parse("# docs\n\n*.psd\n/test/\n!keep.psd\nspec/fixtures\n  \n/\n");
        assert_eq!(
            patterns,
            [
                Pattern {
                    glob: "*.psd".into(),
                    anchored: false,
                    dir_only: false
                },
                Pattern {
                    glob: "test".into(),
                    anchored: true,
                    dir_only: true
                },
                Pattern {
                    glob: "spec/fixtures".into(),
                    anchored: true,
                    dir_only: false
                },
            ]
        );
        assert_eq!(
            warnings,
            [
                ".slugignore line 5: negated patterns are not supported, ignoring \"!keep.psd\"",
                ".slugignore line 8: ignoring \"/\""
            ]
        );
    }

    #[test]
    fn matching() {
        // (pattern line, path, is_dir, matched)
        let cases: &[(&str, &str, bool, bool)] = &[
            ("*.psd", "art.psd", false, true),
            ("*.psd", "assets/deep/art.psd", false, true),
            ("*.psd", "art.psd.txt", false, false),
            ("/test", "test", true, true),
            ("/test", "src/test", true, false),
            ("test", "src/test", true, true),
            ("test/", "test", false, false),
            ("test/", "test", true, true),
            ("spec/fixtures", "spec/fixtures", true, true),
            ("spec/fixtures", "app/spec/fixtures", true, false),
            ("docs/*.md", "docs/a.md", false, true),
            ("docs/*.md", "docs/sub/a.md", false, false),
            ("docs/**/*.md", "docs/sub/a.md", false, true),
            ("docs/**/*.md", "docs/a.md", false, true),
            ("**/*.log", "a/b/c.log", false, true),
            ("?.txt", "a.txt", false, true),
            ("?.txt", "ab.txt", false, false),
            ("node_modules", "node_modules", true, true),
        ];
        for (line, path, is_dir, expected) in cases {
            let (patterns, _) = parse(line);
            assert_eq!(
                patterns[0].matches(path, *is_dir),
                *expected,
                "{line:?} on {path:?}"
            );
        }
    }

    #[test]
    fn excluded_paths_stop_at_matched_directories() {
        let dir = tempfile::tempdir().unwrap();
        for file in [
            "app.py",
            "art/logo.psd",
            "art/logo.png",
            "test/a.py",
            "test/b/c.psd",
        ] {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x").unwrap();
        }
        let (patterns, _) = parse("*.psd\n/test\n");
        assert_eq!(
            excluded_paths(dir.path(), &patterns),
            [PathBuf::from("art/logo.psd"), PathBuf::from("test")]
        );
        assert!(excluded_paths(dir.path(), &[]).is_empty());
    }
}
