//! Registry references and pulls with skopeo, shared by `FROM REGISTRY/REPO:TAG` and the controller's image
//! deploys: `skopeo copy docker://REF oci:LAYOUT:TAG` into a temporary OCI layout (never the store's own),
//! which the image store then imports with every digest checked.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A registry reference as typed: `REGISTRY/REPO[:TAG]` or `REGISTRY/REPO@sha256:HEX`, with an explicit
/// registry host (so nothing is pulled from a default registry by surprise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    registry: String,
    repository: String,
    reference: Reference,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Reference {
    Tag(String),
    Digest(String),
}

impl ImageRef {
    /// Parses and checks a reference (a leading `docker://` is accepted); the error says what is wrong.
    pub fn parse(typed: &str) -> Result<ImageRef, String> {
        let example = "such as registry.example.com/team/app:1.0 or 127.0.0.1:5000/app@sha256:…";
        let bare = typed.strip_prefix("docker://").unwrap_or(typed);
        if bare.is_empty() || bare.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("image {typed:?} is not a registry reference {example}"));
        }
        let (name, digest) = match bare.split_once('@') {
            Some((name, digest)) => (name, Some(digest)),
            None => (bare, None),
        };
        let Some((registry, path)) = name.split_once('/') else {
            return Err(format!(
                "image {typed:?} names no registry: write REGISTRY/REPO:TAG, {example}"
            ));
        };
        let registry_ok = (registry.contains('.') || registry.contains(':') || registry == "localhost")
            && !registry.starts_with(['-', '.', ':'])
            && registry
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:".contains(&b));
        if !registry_ok {
            return Err(format!(
                "image {typed:?} names no registry host (a name with a dot or a port, or localhost) before \
                 the first '/': write REGISTRY/REPO:TAG, {example}"
            ));
        }
        let last_slash = path.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match path[last_slash..].split_once(':') {
            Some((_, tag)) => (&path[..path.len() - tag.len() - 1], Some(tag)),
            None => (path, None),
        };
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && c.as_bytes()[0].is_ascii_alphanumeric()
        };
        if !repository.split('/').all(component_ok) {
            return Err(format!(
                "image {typed:?} has a repository name {repository:?} that is not valid: use lowercase \
                 letters, digits, '.', '_' and '-' between slashes"
            ));
        }
        let reference = match (tag, digest) {
            (Some(_), Some(_)) => {
                return Err(format!(
                    "image {typed:?} has both a tag and a digest: give one of them"
                ))
            }
            (Some(tag), None) => {
                let ok = !tag.is_empty()
                    && tag.len() <= 128
                    && tag
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                    && (tag.as_bytes()[0].is_ascii_alphanumeric() || tag.as_bytes()[0] == b'_');
                if !ok {
                    return Err(format!(
                        "image {typed:?} has a tag {tag:?} that is not valid: use up to 128 letters, \
                         digits, '.', '_' or '-'"
                    ));
                }
                Reference::Tag(tag.to_owned())
            }
            (None, Some(digest)) => {
                if !image_store::is_digest(digest) {
                    return Err(format!(
                        "image {typed:?} has a digest {digest:?} that is not sha256:<64 lowercase hex digits>"
                    ));
                }
                Reference::Digest(digest.to_owned())
            }
            (None, None) => Reference::Tag("latest".to_owned()),
        };
        Ok(ImageRef {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            reference,
        })
    }

    /// Whether the registry is on this host's loopback (`127.x.x.x` or `localhost`, with or without a port):
    /// the only registries a build may reach without TLS, and only when the operator allows it.
    pub fn is_loopback(&self) -> bool {
        let host = self.registry.split(':').next().unwrap_or("");
        host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// The reference in skopeo's `docker://` transport.
    pub fn skopeo_source(&self) -> String {
        format!("docker://{self}")
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reference {
            Reference::Tag(tag) => write!(f, "{}/{}:{tag}", self.registry, self.repository),
            Reference::Digest(digest) => write!(f, "{}/{}@{digest}", self.registry, self.repository),
        }
    }
}

/// Why a pull failed.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("pulling {image} took longer than {seconds} s")]
    Timeout { image: String, seconds: u64 },
    #[error("the server cannot pull images: {} is not installed there (apt-get install skopeo)", program.display())]
    NoSkopeo { program: PathBuf },
    #[error("starting {}", program.display())]
    Start {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// skopeo ran and failed; `reason` is the useful part of what it said.
    #[error("cannot pull {image}: {reason}")]
    Failed { image: String, reason: String },
}

/// `skopeo copy docker://IMAGE oci:LAYOUT:TAG`, within `timeout` (skopeo is killed after it).
pub async fn pull(
    skopeo: &Path,
    image: &ImageRef,
    tls_verify: bool,
    timeout: Duration,
    layout: &Path,
    tag: &str,
) -> Result<(), PullError> {
    let mut command = tokio::process::Command::new(skopeo);
    command
        .arg("copy")
        .arg(format!("--src-tls-verify={tls_verify}"))
        .arg(image.skopeo_source())
        .arg(format!("oci:{}:{tag}", layout.display()))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = match tokio::time::timeout(timeout, command.output()).await {
        Err(_) => {
            return Err(PullError::Timeout {
                image: image.to_string(),
                seconds: timeout.as_secs(),
            })
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(PullError::NoSkopeo {
                program: skopeo.to_owned(),
            })
        }
        Ok(Err(source)) => {
            return Err(PullError::Start {
                program: skopeo.to_owned(),
                source,
            })
        }
        Ok(Ok(output)) => output,
    };
    if !output.status.success() {
        return Err(PullError::Failed {
            image: image.to_string(),
            reason: skopeo_reason(&String::from_utf8_lossy(&output.stderr)),
        });
    }
    Ok(())
}

/// The useful part of skopeo's stderr: its last non-empty line without the log prefix, cut short.
fn skopeo_reason(stderr: &str) -> String {
    let line = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let line = line
        .split_once("msg=\"")
        .map_or(line, |(_, rest)| rest.trim_end_matches('"'));
    let reason: String = line.replace("\\\"", "\"").chars().take(400).collect();
    if reason.is_empty() {
        "skopeo failed without saying why".to_owned()
    } else {
        reason
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let ok: &[(&str, &str)] = &[
            ("127.0.0.1:5000/x:1", "127.0.0.1:5000/x:1"),
            ("docker://127.0.0.1:5000/x:1", "127.0.0.1:5000/x:1"),
            (
                "registry.example.com/team/app",
                "registry.example.com/team/app:latest",
            ),
            ("localhost/a.b_c-d/e:v1.2_3", "localhost/a.b_c-d/e:v1.2_3"),
            (
                &format!("reg.io:443/app@{digest}"),
                &format!("reg.io:443/app@{digest}"),
            ),
        ];
        for (typed, shown) in ok {
            let parsed = ImageRef::parse(typed).unwrap_or_else(|e| panic!("{typed}: {e}"));
            assert_eq!(parsed.to_string(), *shown);
            assert_eq!(parsed.skopeo_source(), format!("docker://{shown}"));
        }
        let bad: &[(&str, &str)] = &[
            ("", "not a registry reference"),
            ("nginx:1.25", "names no registry"),
            ("library/nginx", "no registry host"),
            ("-rm.example.com/x", "no registry host"),
            ("reg.io/App:1", "repository name"),
            ("reg.io//x", "repository name"),
            ("reg.io/x:", "tag"),
            ("reg.io/x:-1", "tag"),
            ("reg.io/x@sha256:abc", "digest"),
            (&format!("reg.io/x:1@{digest}"), "both a tag and a digest"),
            ("reg.io/x y", "not a registry reference"),
        ];
        for (typed, expected) in bad {
            let err = ImageRef::parse(typed).unwrap_err();
            assert!(err.contains(expected), "{typed:?}: {err}");
        }
    }

    #[test]
    fn skopeo_reasons() {
        let cases = [
            ("", "skopeo failed without saying why"),
            (
                "time=\"2026\" level=fatal msg=\"initializing source docker://x: manifest unknown\"\n",
                "initializing source docker://x: manifest unknown",
            ),
            ("Error: plain words\n\n", "Error: plain words"),
            (
                "level=fatal msg=\"pinging: Get \\\"https://x/v2/\\\": refused\"",
                "pinging: Get \"https://x/v2/\": refused",
            ),
        ];
        for (stderr, expected) in cases {
            assert_eq!(skopeo_reason(stderr), expected);
        }
    }

    #[test]
    fn loopback_registries() {
        let cases = [
            ("127.0.0.1:5000/x:1", true),
            ("127.1.2.3/x", true),
            ("localhost:5000/x", true),
            ("localhost/x", true),
            ("registry.example.com/x", false),
            ("10.0.0.1:5000/x", false),
            ("localhost.example.com/x", false),
        ];
        for (typed, loopback) in cases {
            assert_eq!(ImageRef::parse(typed).unwrap().is_loopback(), loopback, "{typed}");
        }
    }
}
