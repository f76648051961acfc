//! Where classic buildpacks come from: the `BUILDPACK_URL` config var or a `.buildpacks` file (pure parsing),
//! or a directory the platform names itself.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::ClassicError;

/// The config var naming one buildpack, as on Heroku.
pub const BUILDPACK_URL_VAR: &str = "BUILDPACK_URL";
/// The file at the top of the app listing several buildpacks, one a line, run in order.
pub const BUILDPACKS_FILE: &str = ".buildpacks";
const MAX_BUILDPACKS_FILE: u64 = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildpackSource {
    /// A directory on the builder's host, copied for each build. Only the platform (or a test) names these;
    /// tenants' URLs never become one.
    Dir(PathBuf),
    /// A git repository fetched with `git fetch --depth 1`; `reference` is a branch, tag or commit (`#ref`
    /// after the URL), the remote's HEAD when absent.
    Git { url: String, reference: Option<String> },
}

impl fmt::Display for BuildpackSource {
    /// Credentials in a URL (`https://user:token@host/...`) are never shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dir(dir) => write!(f, "{}", dir.display()),
            Self::Git { url, reference } => {
                write!(f, "{}", redact_url(url))?;
                match reference {
                    Some(r) => write!(f, "#{r}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// What tenants may name. `file://` URLs reach the builder host's own repositories, so only tests and
/// operators who know what they do turn them on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SourcePolicy {
    pub allow_file_urls: bool,
}

/// The URL schemes git may use for tenants' buildpacks (never `ext::`, which runs commands).
pub(super) fn allowed_protocols(policy: SourcePolicy) -> &'static str {
    if policy.allow_file_urls {
        "https:http:git:file"
    } else {
        "https:http:git"
    }
}

/// Parses one buildpack reference: `URL` or `URL#REF`, where URL is an `https://`, `http://` or `git://`
/// git URL (`file://` when the policy allows it).
pub fn parse_buildpack_url(spec: &str, policy: SourcePolicy) -> Result<BuildpackSource, ClassicError> {
    let spec = spec.trim();
    let bad = |reason: &str| ClassicError::BadBuildpackUrl {
        url: redact_url(spec),
        reason: reason.to_owned(),
    };
    if spec.is_empty() {
        return Err(bad("it is empty"));
    }
    if spec.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it contains spaces or control characters"));
    }
    let (url, reference) = match spec.split_once('#') {
        Some((url, reference)) => (url, Some(reference)),
        None => (spec, None),
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad(
            "give a git URL such as https://github.com/OWNER/REPO.git (buildpack registry names are not supported)",
        ));
    };
    match scheme {
        "https" | "http" | "git" => {}
        "file" if policy.allow_file_urls => {}
        "file" => return Err(bad("file:// URLs are not allowed on this platform")),
        _ => return Err(bad("only https://, http:// and git:// URLs are supported")),
    }
    if rest.is_empty() || (rest.starts_with('/') && scheme != "file") {
        return Err(bad("it names no host"));
    }
    let lower = url.to_ascii_lowercase();
    if [".tgz", ".tar.gz", ".zip", ".tar"]
        .iter()
        .any(|ext| lower.ends_with(ext))
    {
        return Err(bad("buildpack archives are not supported: give a git URL"));
    }
    let reference = match reference {
        None => None,
        Some(r) if valid_reference(r) => Some(r.to_owned()),
        Some(_) => return Err(bad("the part after # must be a branch, tag or commit")),
    };
    Ok(BuildpackSource::Git {
        url: url.to_owned(),
        reference,
    })
}

/// Git ref names as buildpack URLs use them; never an option (`-x`) nor a range (`a..b`).
fn valid_reference(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 200
        && !r.starts_with(['-', '/', '.'])
        && !r.ends_with(['/', '.'])
        && !r.contains("..")
        && r.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
}

/// Parses a `.buildpacks` file: one buildpack a line, in order; blank lines and `#` comment lines are skipped.
pub fn parse_buildpacks_file(text: &str, policy: SourcePolicy) -> Result<Vec<BuildpackSource>, ClassicError> {
    let mut sources = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let source = parse_buildpack_url(line, policy).map_err(|e| ClassicError::BuildpacksFile {
            line: i + 1,
            reason: e.to_string(),
        })?;
        sources.push(source);
    }
    if sources.is_empty() {
        return Err(ClassicError::BuildpacksFile {
            line: 0,
            reason: "it lists no buildpack".to_owned(),
        });
    }
    Ok(sources)
}

/// The classic buildpacks an app asks for, if any: its `BUILDPACK_URL` config var, else the `.buildpacks`
/// file at the top of its tree. `None` means the built-in buildpacks apply.
pub fn requested_buildpacks(
    source_dir: &Path,
    config_vars: &BTreeMap<String, String>,
    policy: SourcePolicy,
) -> Result<Option<Vec<BuildpackSource>>, ClassicError> {
    if let Some(url) = config_vars.get(BUILDPACK_URL_VAR) {
        return Ok(Some(vec![parse_buildpack_url(url, policy)?]));
    }
    let path = source_dir.join(BUILDPACKS_FILE);
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(ClassicError::io("reading", &path)(source)),
    };
    // A symlink could point at the host's files.
    if !meta.is_file() || meta.len() > MAX_BUILDPACKS_FILE {
        return Err(ClassicError::BuildpacksFile {
            line: 0,
            reason: format!("it must be a regular file of at most {MAX_BUILDPACKS_FILE} bytes"),
        });
    }
    let mut text = String::new();
    std::fs::File::open(&path)
        .and_then(|f| f.take(MAX_BUILDPACKS_FILE).read_to_string(&mut text))
        .map_err(ClassicError::io("reading", &path))?;
    parse_buildpacks_file(&text, policy).map(Some)
}

/// `scheme://user:secret@host/path` → `scheme://***@host/path`.
pub(super) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: SourcePolicy = SourcePolicy {
        allow_file_urls: true,
    };

    fn git(url: &str, reference: Option<&str>) -> BuildpackSource {
        BuildpackSource::Git {
            url: url.to_owned(),
            reference: reference.map(str::to_owned),
        }
    }

    #[test]
    fn buildpack_urls() {
        let ok: &[(&str, BuildpackSource)] = &[
            (
                "https://github.com/heroku/heroku-buildpack-ruby.git",
                git("https://github.com/heroku/heroku-buildpack-ruby.git", None),
            ),
            (
                " https://example.com/bp.git#v1.2 ",
                git("https://example.com/bp.git", Some("v1.2")),
            ),
            (
                "git://example.com/bp#release/2024",
                git("git://example.com/bp", Some("release/2024")),
            ),
            (
                "file:///srv/bp.git#0123abcd",
                git("file:///srv/bp.git", Some("0123abcd")),
            ),
        ];
        for (spec, want) in ok {
            assert_eq!(&parse_buildpack_url(spec, OPEN).unwrap(), want, "{spec}");
        }
        let bad: &[(&str, SourcePolicy, &str)] = &[
            ("", OPEN, "it is empty"),
            ("heroku/python", OPEN, "give a git URL"),
            ("git@github.com:o/r.git", OPEN, "give a git URL"),
            ("ext::sh -c id", OPEN, "spaces"),
            ("ssh://host/r.git", OPEN, "only https://"),
            ("file:///srv/bp.git", SourcePolicy::default(), "not allowed"),
            ("https:///path", OPEN, "no host"),
            ("https://h/bp.tgz", OPEN, "archives"),
            ("https://h/bp.git#--upload-pack=x", OPEN, "branch, tag or commit"),
            ("https://h/bp.git#a..b", OPEN, "branch, tag or commit"),
            ("https://h/bp.git#", OPEN, "branch, tag or commit"),
        ];
        for (spec, policy, want) in bad {
            let err = parse_buildpack_url(spec, *policy).unwrap_err().to_string();
            assert!(err.contains(want), "{spec:?}: {err}");
        }
    }

    #[test]
    fn credentials_never_shown() {
        let spec = "https://bob:s3cret@example.com/bp.git#main";
        let source = parse_buildpack_url(spec, OPEN).unwrap();
        assert_eq!(source.to_string(), "https://***@example.com/bp.git#main");
        let err = parse_buildpack_url("https://bob:s3cret@example.com/bp.tgz", OPEN).unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
        assert_eq!(redact_url("https://example.com/a@b"), "https://example.com/a@b");
    }

    #[test]
    fn buildpacks_file_lists_in_order() {
        let text = "# first the marker\nhttps://h/a.git\n\n  https://h/b.git#v2\n";
        assert_eq!(
            parse_buildpacks_file(text, OPEN).unwrap(),
            [git("https://h/a.git", None), git("https://h/b.git", Some("v2"))]
        );
        let err = parse_buildpacks_file("https://h/a.git\nheroku/python\n", OPEN).unwrap_err();
        assert!(err.to_string().starts_with(".buildpacks line 2: "), "{err}");
        let err = parse_buildpacks_file("# nothing\n\n", OPEN).unwrap_err();
        assert_eq!(err.to_string(), ".buildpacks: it lists no buildpack");
    }

    #[test]
    fn config_var_wins_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let none = BTreeMap::new();
        assert_eq!(requested_buildpacks(dir.path(), &none, OPEN).unwrap(), None);
        std::fs::write(dir.path().join(BUILDPACKS_FILE), "https://h/file.git\n").unwrap();
        assert_eq!(
            requested_buildpacks(dir.path(), &none, OPEN).unwrap(),
            Some(vec![git("https://h/file.git", None)])
        );
        let vars = BTreeMap::from([(BUILDPACK_URL_VAR.to_owned(), "https://h/var.git".to_owned())]);
        assert_eq!(
            requested_buildpacks(dir.path(), &vars, OPEN).unwrap(),
            Some(vec![git("https://h/var.git", None)])
        );
        let link = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/hostname", link.path().join(BUILDPACKS_FILE)).unwrap();
        let err = requested_buildpacks(link.path(), &none, OPEN).unwrap_err();
        assert!(err.to_string().contains("regular file"), "{err}");
    }
}
