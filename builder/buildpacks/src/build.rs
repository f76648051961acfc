//! The build entry point: detect, ensure the stack, the dependency layer (reused when its inputs are
//! unchanged), the app layer, and the image.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use agent_contract::ImageRef;
use image_store::{ImageConfig, ImageStore, LayerInfo, LayerMode, LayerOptions};
use stack::StackConfig;
use tokio::sync::mpsc;
use vocabulary::{AppName, ProcessType};

use crate::cache::{cache_err, dependency_key, Cache, DependencyRecord};
use crate::detect::{detect, Buildpack, SourceFacts};
use crate::pip::{self, PipRun};
use crate::procfile::parse_procfile;
use crate::BuildError;

/// Procfiles and requirements files bigger than this are refused (they are read into memory).
const MAX_SOURCE_FILE: u64 = 1024 * 1024;

/// The label holding the image's process types as a JSON object.
pub const PROCESSES_LABEL: &str = "berth.processes";
pub const BUILDPACK_LABEL: &str = "berth.buildpack";

#[derive(Debug, Clone)]
pub struct BuilderConfig {
    pub store: ImageStore,
    pub stack: StackConfig,
    /// See [`crate::cache`] for its layout.
    pub cache_dir: PathBuf,
    /// The program that acts as container init when run with `container::INIT_ARG` (normally the `berth`
    /// binary, `/proc/self/exe`).
    pub init_program: PathBuf,
    /// How long `pip install` may run.
    pub pip_timeout: Duration,
    /// A CA bundle from the host bound over the stack's own in build containers, so that builds trust what
    /// the host trusts (needed behind a TLS-intercepting proxy). Build-time only: images keep Debian's
    /// bundle. Defaults to the host's `/etc/ssl/certs/ca-certificates.crt` when it exists.
    pub build_ca_bundle: Option<PathBuf>,
}

impl BuilderConfig {
    pub fn new(store: ImageStore, stack: StackConfig, cache_dir: PathBuf, init_program: PathBuf) -> Self {
        let host_bundle = PathBuf::from("/etc/ssl/certs/ca-certificates.crt");
        Self {
            store,
            stack,
            cache_dir,
            init_program,
            pip_timeout: Duration::from_secs(15 * 60),
            build_ca_bundle: host_bundle.is_file().then_some(host_bundle),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRequest {
    pub app: AppName,
    /// The checked-out tree to build (a `.git` inside it is left out of the image).
    pub source_dir: PathBuf,
    /// The tag of the image in the store.
    pub tag: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOutput {
    pub image: ImageRef,
    pub processes: BTreeMap<ProcessType, String>,
    pub buildpack: String,
    /// Stack, dependencies (when there is a requirements.txt), app.
    pub layers: Vec<LayerInfo>,
    /// Whether the dependency layer of the previous build was reused.
    pub dependencies_reused: bool,
}

/// Builds images. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Builder {
    config: Arc<BuilderConfig>,
}

impl Builder {
    pub fn new(config: BuilderConfig) -> Self {
        Self {
            config: Arc::new(config),
        }
    }

    pub fn config(&self) -> &BuilderConfig {
        &self.config
    }

    /// Builds `req.source_dir` into an image tagged `req.tag`, announcing each step on `log` as `----->`
    /// lines (the user sees them in `git push`).
    pub async fn build(
        &self,
        req: BuildRequest,
        log: mpsc::Sender<String>,
    ) -> Result<BuildOutput, BuildError> {
        let span = tracing::info_span!("build", app = %req.app, tag = %req.tag);
        let _enter = span.enter();
        drop(_enter);
        let cfg = &*self.config;
        let cache = Cache {
            root: cfg.cache_dir.clone(),
        };
        let say = |line: String| {
            let log = log.clone();
            async move {
                let _ = log.send(line).await;
            }
        };

        // Detect.
        let procfile_text = read_source_file(&req.source_dir, "Procfile")?;
        let requirements = read_source_file(&req.source_dir, "requirements.txt")?;
        let procfile = procfile_text
            .as_deref()
            .map(|t| parse_procfile(&String::from_utf8_lossy(t)))
            .transpose()?;
        let facts = SourceFacts {
            has_requirements_txt: requirements.is_some(),
            procfile: procfile.clone(),
        };
        let buildpack = detect(&facts).ok_or(BuildError::NoBuildpack)?;
        let Buildpack::Python = buildpack;
        say("-----> Python app detected".to_owned()).await;
        let processes = procfile.unwrap_or_default();
        if processes.is_empty() {
            say("       No Procfile process types: add a Procfile such as `web: python3 app.py`".to_owned())
                .await;
        }

        // The stack. Its progress callback is synchronous; an unbounded queue hands lines to `log` in order.
        let (progress_tx, mut progress_rx) = mpsc::unbounded_channel::<String>();
        let forward = {
            let log = log.clone();
            tokio::spawn(async move {
                while let Some(line) = progress_rx.recv().await {
                    let _ = log.send(line).await;
                }
            })
        };
        let progress = move |line: &str| {
            let _ = progress_tx.send(line.to_owned());
        };
        let stack = stack::ensure_stack(&cfg.stack, &cfg.store, &progress).await;
        drop(progress);
        let _ = forward.await;
        let stack = stack.map_err(BuildError::Stack)?;
        say(format!(
            "-----> Using the {} stack ({})",
            stack.name,
            short(&stack.layer.digest)
        ))
        .await;
        let mut layers = vec![stack.layer.clone()];
        let mut history = vec![format!("berth stack {} (debootstrap minbase)", stack.name)];

        // Dependencies.
        let mut dependencies_reused = false;
        if let Some(requirements) = &requirements {
            let key = dependency_key(requirements, &stack.layer.diff_id);
            let layer = match cache.reusable_dependencies(&req.app, &key, &cfg.store) {
                Some(layer) => {
                    say("-----> Reusing dependencies layer (requirements.txt unchanged)".to_owned()).await;
                    dependencies_reused = true;
                    layer
                }
                None => {
                    say("-----> Installing requirements with pip".to_owned()).await;
                    let layer = self
                        .install_dependencies(&req, &stack.layer, &cache, &log)
                        .await?;
                    cache.record_dependencies(
                        &req.app,
                        &DependencyRecord {
                            key,
                            layer: layer.clone(),
                        },
                    )?;
                    layer
                }
            };
            layers.push(layer);
            history.push("berth python buildpack: pip install -r requirements.txt".to_owned());
        }

        // The app.
        say("-----> Writing the app layer".to_owned()).await;
        let app_layer = {
            let (store, dir) = (cfg.store.clone(), req.source_dir.clone());
            blocking(move || {
                let mut options = LayerOptions::new("app", LayerMode::Reproducible);
                options.exclude.push(".git".into());
                store
                    .write_layer(&dir, &options)
                    .map_err(|source| BuildError::WriteLayer { what: "app", source })
            })
            .await?
        };
        layers.push(app_layer);
        history.push("berth app source".to_owned());

        // The image.
        let config = image_config(&processes, buildpack, history);
        let manifest_digest = {
            let (store, tag, layers) = (cfg.store.clone(), req.tag.clone(), layers.clone());
            blocking(move || {
                store
                    .put_image(&tag, &layers, &config)
                    .map_err(|source| BuildError::PutImage { tag, source })
            })
            .await?
        };
        say(format!(
            "-----> Built image {} ({})",
            req.tag,
            short(&manifest_digest)
        ))
        .await;
        tracing::info!(app = %req.app, %manifest_digest, dependencies_reused, "built image");
        Ok(BuildOutput {
            image: ImageRef { manifest_digest },
            processes,
            buildpack: buildpack.name().to_owned(),
            layers,
            dependencies_reused,
        })
    }

    async fn install_dependencies(
        &self,
        req: &BuildRequest,
        stack_layer: &LayerInfo,
        cache: &Cache,
        log: &mpsc::Sender<String>,
    ) -> Result<LayerInfo, BuildError> {
        let cfg = &*self.config;
        let stack_rootfs = {
            let (store, layer) = (cfg.store.clone(), stack_layer.clone());
            let cache = Cache {
                root: cache.root.clone(),
            };
            blocking(move || cache.stack_rootfs(&store, &layer)).await?
        };
        let tmp_parent = cache.tmp_dir();
        std::fs::create_dir_all(&tmp_parent).map_err(cache_err(&tmp_parent))?;
        // Removed on every return path, also when the build fails or is cancelled. The overlay itself lives in
        // the container's mount namespace and is gone once the container is.
        let scratch = tempfile::Builder::new()
            .prefix("build-")
            .tempdir_in(&tmp_parent)
            .map_err(cache_err(&tmp_parent))?;
        let output_dir = scratch.path().join("out");
        pip::install(
            PipRun {
                init_program: &cfg.init_program,
                stack_rootfs: &stack_rootfs,
                source_dir: &req.source_dir,
                output_dir: &output_dir,
                build_cache: &cache.app_build_cache(&req.app),
                scratch: scratch.path(),
                timeout: cfg.pip_timeout,
                ca_bundle: cfg.build_ca_bundle.as_deref(),
            },
            log,
        )
        .await?;
        let _ = log.send("-----> Writing the dependencies layer".to_owned()).await;
        let store = cfg.store.clone();
        let layer = blocking(move || {
            let layer = store
                .write_layer_from_dir(
                    &output_dir,
                    pip::DEPS_DIR.trim_start_matches('/'),
                    LayerMode::Reproducible,
                )
                .map_err(|source| BuildError::WriteLayer {
                    what: "dependencies",
                    source,
                });
            drop(scratch);
            layer
        })
        .await?;
        Ok(layer)
    }
}

fn image_config(
    processes: &BTreeMap<ProcessType, String>,
    buildpack: Buildpack,
    history: Vec<String>,
) -> ImageConfig {
    let env = [
        (
            "PATH",
            "/layers/python/site-packages/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ),
        ("PYTHONPATH", "/layers/python/site-packages"),
        ("PYTHONUNBUFFERED", "1"),
        ("LANG", "C.UTF-8"),
        ("HOME", "/app"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let cmd = processes
        .get(&ProcessType::web())
        .map(|web| vec!["/bin/sh".to_owned(), "-c".to_owned(), web.clone()])
        .unwrap_or_default();
    let processes_json: BTreeMap<&str, &str> =
        processes.iter().map(|(t, c)| (t.as_str(), c.as_str())).collect();
    let labels = BTreeMap::from([
        (
            PROCESSES_LABEL.to_owned(),
            serde_json::to_string(&processes_json).expect("a map of strings serializes"),
        ),
        (BUILDPACK_LABEL.to_owned(), buildpack.name().to_owned()),
    ]);
    ImageConfig {
        env,
        cmd,
        working_dir: "/app".to_owned(),
        labels,
        history,
        created: None,
    }
}

/// Reads `name` at the top of the source tree: `None` when absent; refused when it is not a regular file
/// (a symlink could point at the host's files) or too big.
fn read_source_file(source_dir: &Path, name: &'static str) -> Result<Option<Vec<u8>>, BuildError> {
    let path = source_dir.join(name);
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(BuildError::ReadSource { path, source }),
    };
    if !meta.is_file() || meta.len() > MAX_SOURCE_FILE {
        return Err(BuildError::BadSourceFile {
            name,
            max: MAX_SOURCE_FILE,
        });
    }
    let mut bytes = Vec::new();
    std::fs::File::open(&path)
        .and_then(|f| f.take(MAX_SOURCE_FILE).read_to_end(&mut bytes))
        .map_err(|source| BuildError::ReadSource { path, source })?;
    Ok(Some(bytes))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BuildError> + Send + 'static,
) -> Result<T, BuildError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BuildError::Task(e.to_string()))?
}

fn short(digest: &str) -> &str {
    &digest[..digest.len().min("sha256:".len() + 12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_config_runs_the_web_process() {
        let processes = BTreeMap::from([
            (ProcessType::web(), "python3 app.py".to_owned()),
            (
                ProcessType::new("worker").unwrap(),
                "python3 worker.py".to_owned(),
            ),
        ]);
        let config = image_config(&processes, Buildpack::Python, vec![]);
        assert_eq!(config.cmd, ["/bin/sh", "-c", "python3 app.py"]);
        assert_eq!(config.working_dir, "/app");
        assert_eq!(config.env["PYTHONPATH"], "/layers/python/site-packages");
        assert!(config.env["PATH"].starts_with("/layers/python/site-packages/bin:"));
        assert_eq!(
            config.labels[PROCESSES_LABEL],
            r#"{"web":"python3 app.py","worker":"python3 worker.py"}"#
        );
        let no_web = image_config(&BTreeMap::new(), Buildpack::Python, vec![]);
        assert!(no_web.cmd.is_empty());
    }

    #[test]
    fn source_files_must_be_regular() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_source_file(dir.path(), "Procfile").unwrap(), None);
        std::fs::write(dir.path().join("Procfile"), "web: python3 app.py\n").unwrap();
        assert_eq!(
            read_source_file(dir.path(), "Procfile").unwrap().unwrap(),
            b"web: python3 app.py\n"
        );
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("requirements.txt")).unwrap();
        let err = read_source_file(dir.path(), "requirements.txt").unwrap_err();
        assert!(matches!(err, BuildError::BadSourceFile { .. }), "{err:?}");
    }
}
