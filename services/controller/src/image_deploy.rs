//! Deploying an existing image (`berth deploy --image REF`): `skopeo copy` pulls it into a temporary OCI
//! layout (never into the store's own, whose `index.json` only the store writes), the image store imports it
//! with every digest checked, and the release is rolled out like a push's. The processes are the image's
//! `berth.processes` label when it has one (images Berth built), else `web` runs its Entrypoint + Cmd.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use dockerfile::registry::ImageRef;
use dockerfile::registry::PullError;
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
                (store::ReleaseKind::Image, format!("Deploy image {}", req.image)),
                &log,
            )
            .await
    }
}

impl Inner {
    /// `skopeo copy docker://REF oci:LAYOUT:pull`, with a clear error when skopeo is missing, the pull fails
    /// or takes too long.
    async fn pull(&self, req: &ImageDeployRequest, layout: &std::path::Path) -> Result<(), String> {
        let pulled = dockerfile::registry::pull(
            &self.config.skopeo,
            &req.image,
            req.tls_verify,
            self.config.pull_timeout,
            layout,
            "pull",
        )
        .await;
        pulled.map_err(|e| match e {
            PullError::NoSkopeo { .. } => e.to_string(),
            PullError::Start { .. } => {
                tracing::error!(error = %error_chain(&e), "cannot run skopeo");
                "internal error while starting the pull; the previous release keeps serving".to_owned()
            }
            PullError::Timeout { .. } => format!("{e}; the previous release keeps serving"),
            PullError::Failed { .. } => format!(
                "{e}. Check the reference, that the registry is reachable from the server, and \
                 --src-tls-verify=false for a plain-HTTP registry; the previous release keeps serving"
            ),
        })
    }
}

async fn say(log: &mpsc::Sender<String>, line: String) {
    let _ = log.send(line).await;
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
