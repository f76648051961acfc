//! Deploying an existing image (`berth deploy --image REF`): `skopeo copy` pulls it into a temporary OCI
//! layout (never into the store's own, whose `index.json` only the store writes), the image store imports it
//! with every digest checked, and the release is rolled out like a push's. The processes are the image's
//! `berth.processes` label when it has one (images Berth built), else `web` runs its Entrypoint + Cmd.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use image_store::{ImageStore, ImportOptions};
use tokio::sync::mpsc;
use vocabulary::ProcessType;

use crate::deploy::{Built, Rollout};
use crate::reconcile::error_chain;

/// How image deploys pull and import.
#[derive(Debug, Clone)]
pub struct ImageDeployConfig {
    /// The skopeo program (normally `skopeo`, found on `PATH`).
    pub skopeo: PathBuf,
    /// Where temporary pull layouts go; on the same filesystem as the image store keeps copies cheap.
    pub work_dir: PathBuf,
    /// The largest image accepted, in bytes of layers (compressed or not).
    pub max_image_bytes: u64,
    /// How long a pull may take.
    pub pull_timeout: Duration,
}

/// What to deploy where.
#[derive(Debug, Clone)]
pub struct ImageDeployRequest {
    pub app: store::App,
    pub account: store::Account,
    pub image: ImageRef,
    /// Require HTTPS with a valid certificate at the source registry.
    pub tls_verify: bool,
}

/// Runs image deploys. Cheap to clone.
#[derive(Clone)]
pub struct ImageDeploys {
    inner: Arc<Inner>,
}

struct Inner {
    config: ImageDeployConfig,
    images: ImageStore,
    rollout: Rollout,
}

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

/// The processes of an image: its `berth.processes` label (a JSON object of process type → command, what
/// the buildpacks write) when present, else `web` running Entrypoint + Cmd as one `/bin/sh -c` line.
pub fn image_processes(
    labels: &BTreeMap<String, String>,
    entrypoint: &[String],
    cmd: &[String],
) -> Result<BTreeMap<ProcessType, String>, String> {
    if let Some(json) = labels.get(buildpacks::PROCESSES_LABEL) {
        let bad = |why: String| {
            format!(
                "the image's {} label is not a JSON object of process type to command: {why}",
                buildpacks::PROCESSES_LABEL
            )
        };
        let map: BTreeMap<String, String> = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
        return map
            .into_iter()
            .map(|(name, command)| {
                let process_type = ProcessType::new(name).map_err(|e| bad(e.to_string()))?;
                Ok((process_type, command))
            })
            .collect();
    }
    let argv: Vec<String> = entrypoint.iter().chain(cmd).cloned().collect();
    match dockerfile::shell_command(&argv) {
        Some(command) => Ok(BTreeMap::from([(ProcessType::web(), command)])),
        None => Err(format!(
            "the image has no Entrypoint or Cmd and no {} label: there is nothing to run",
            buildpacks::PROCESSES_LABEL
        )),
    }
}

impl ImageDeploys {
    pub(crate) fn new(config: ImageDeployConfig, images: ImageStore, rollout: Rollout) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                images,
                rollout,
            }),
        }
    }

    /// Pulls, imports and releases the image, sending progress lines through `log`; ends with a summary or
    /// the reason it failed (the running release keeps serving either way).
    pub async fn deploy(&self, req: ImageDeployRequest, log: mpsc::Sender<String>) -> Result<String, String> {
        let inner = &self.inner;
        say(&log, format!("-----> Pulling {}", req.image)).await;
        let pull_dir = tempfile::Builder::new()
            .prefix("pull-")
            .tempdir_in(&inner.config.work_dir)
            .map_err(|e| {
                tracing::error!(error = %e, dir = %inner.config.work_dir.display(), "cannot make a pull dir");
                "internal error while preparing the pull; the previous release keeps serving".to_owned()
            })?;
        let layout = pull_dir.path().join("layout");
        inner.pull(&req, &layout).await?;

        let tag = format!(
            "{}-image-{}",
            req.app.name,
            chrono::Utc::now().format("%Y%m%d%H%M%S%3f")
        );
        let images = inner.images.clone();
        let options = ImportOptions {
            source_tag: "pull".to_owned(),
            tag,
            max_bytes: inner.config.max_image_bytes,
        };
        let imported = tokio::task::spawn_blocking(move || {
            let imported = images.import_from_layout(&layout, &options)?;
            let image = images.read_image(&imported.manifest_digest)?;
            let extras = images.read_image_extras(&imported.manifest_digest)?;
            Ok::<_, image_store::ImageStoreError>((imported, image, extras))
        })
        .await
        .map_err(|e| format!("the import stopped unexpectedly: {e}"))?;
        drop(pull_dir);
        let (imported, image, extras) = imported.map_err(|e| {
            format!(
                "cannot import {}: {}; the previous release keeps serving",
                req.image,
                error_chain(&e)
            )
        })?;
        say(
            &log,
            format!(
                "-----> Imported {} layer(s), {:.1} MB, as {}",
                imported.layers,
                imported.bytes as f64 / 1e6,
                imported.manifest_digest
            ),
        )
        .await;
        let processes = image_processes(&image.config.labels, &extras.entrypoint, &image.config.cmd)
            .map_err(|e| format!("{e}; the previous release keeps serving"))?;
        for (process_type, command) in &processes {
            say(&log, format!("       {process_type}: {command}")).await;
        }
        inner
            .rollout
            .release(
                &req.app,
                &req.account,
                Built {
                    image_digest: imported.manifest_digest,
                    processes,
                },
                format!("Deploy image {}", req.image),
                &log,
            )
            .await
    }
}

impl Inner {
    /// `skopeo copy docker://REF oci:LAYOUT:pull`, with a clear error when skopeo is missing, the pull fails
    /// or takes too long.
    async fn pull(&self, req: &ImageDeployRequest, layout: &std::path::Path) -> Result<(), String> {
        let mut command = tokio::process::Command::new(&self.config.skopeo);
        command
            .arg("copy")
            .arg(format!("--src-tls-verify={}", req.tls_verify))
            .arg(req.image.skopeo_source())
            .arg(format!("oci:{}:pull", layout.display()))
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let output = tokio::time::timeout(self.config.pull_timeout, command.output()).await;
        let output = match output {
            Err(_) => {
                return Err(format!(
                    "pulling {} took longer than {} s; the previous release keeps serving",
                    req.image,
                    self.config.pull_timeout.as_secs()
                ))
            }
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(format!(
                    "the server cannot pull images: {} is not installed there (apt-get install skopeo)",
                    self.config.skopeo.display()
                ))
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot run skopeo");
                return Err(
                    "internal error while starting the pull; the previous release keeps serving".to_owned(),
                );
            }
            Ok(Ok(output)) => output,
        };
        if !output.status.success() {
            return Err(format!(
                "cannot pull {}: {}. Check the reference, that the registry is reachable from the server, \
                 and --src-tls-verify=false for a plain-HTTP registry; the previous release keeps serving",
                req.image,
                skopeo_reason(&String::from_utf8_lossy(&output.stderr))
            ));
        }
        Ok(())
    }
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

async fn say(log: &mpsc::Sender<String>, line: String) {
    let _ = log.send(line).await;
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
    fn processes() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let label = |json: &str| BTreeMap::from([(buildpacks::PROCESSES_LABEL.to_owned(), json.to_owned())]);
        let web = |c: &str| Ok(BTreeMap::from([(ProcessType::web(), c.to_owned())]));
        type Case = (
            BTreeMap<String, String>,
            Vec<String>,
            Vec<String>,
            Result<BTreeMap<ProcessType, String>, &'static str>,
        );
        let cases: Vec<Case> = vec![
            (
                BTreeMap::new(),
                vec![],
                s(&["/bin/sh", "-c", "busybox httpd -f -p $PORT -h /www"]),
                web("busybox httpd -f -p $PORT -h /www"),
            ),
            (
                BTreeMap::new(),
                s(&["/app/server"]),
                s(&["--listen", "0.0.0.0:$PORT"]),
                web("exec /app/server --listen '0.0.0.0:$PORT'"),
            ),
            (
                label(r#"{"web":"python3 app.py","worker":"python3 w.py"}"#),
                s(&["ignored"]),
                vec![],
                Ok(BTreeMap::from([
                    (ProcessType::web(), "python3 app.py".to_owned()),
                    (ProcessType::new("worker").unwrap(), "python3 w.py".to_owned()),
                ])),
            ),
            (BTreeMap::new(), vec![], vec![], Err("nothing to run")),
            (label("[1]"), vec![], vec![], Err("not a JSON object")),
            (label(r#"{"We b":"x"}"#), vec![], vec![], Err("not a JSON object")),
        ];
        for (labels, entrypoint, cmd, expected) in cases {
            let got = image_processes(&labels, &entrypoint, &cmd);
            match expected {
                Ok(map) => assert_eq!(got, Ok(map), "{labels:?} {entrypoint:?} {cmd:?}"),
                Err(word) => {
                    let err = got.unwrap_err();
                    assert!(err.contains(word), "{err}");
                }
            }
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
}
