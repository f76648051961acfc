//! The build entry point: detect, ensure the stack, the buildpack's steps (a dependency layer reused when its
//! inputs are unchanged, build scripts), the app layer, and the image.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use agent_contract::ImageRef;
use build_sandbox::{BuildSandbox, SandboxConfig, DEFAULT_BUILD_TIMEOUT};
use image_store::{ImageConfig, ImageStore, ImageStoreError, LayerInfo, LayerMode, LayerOptions};
use stack::{StackConfig, StackLayer};
use tokio::sync::mpsc;
use vocabulary::{AppName, IdRange, ProcessType};

use crate::cache::Cache;
use crate::classic::{self, ClassicRun, SourcePolicy};
use crate::ctx::{Ctx, Dependencies};
use crate::detect::{detect, static_root, Buildpack, SourceFacts};
use crate::procfile::parse_procfile;
use crate::{node, node_build, pip, pyproject, python_build, slugignore, BuildError};

/// Procfiles, requirements and package files bigger than this are refused (they are read into memory).
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
    /// How long one build step (`pip install`, `npm ci`, a build script) may run; by default as long as the
    /// longest build, so that the build's own time limit (the app's `build_timeout`) decides.
    pub step_timeout: Duration,
    /// A CA bundle from the host bound over the stack's own in build containers, so that builds trust what
    /// the host trusts (needed behind a TLS-intercepting proxy). Build-time only: images keep Debian's
    /// bundle. Defaults to the host's `/etc/ssl/certs/ca-certificates.crt` when it exists.
    pub build_ca_bundle: Option<PathBuf>,
    /// What apps' classic buildpack URLs may name (`file://` only when the operator allows it).
    pub buildpack_sources: SourcePolicy,
    /// The cgroup parent and limits of each build's sandbox.
    pub sandbox: SandboxConfig,
}

impl BuilderConfig {
    pub fn new(store: ImageStore, stack: StackConfig, cache_dir: PathBuf, init_program: PathBuf) -> Self {
        let host_bundle = PathBuf::from("/etc/ssl/certs/ca-certificates.crt");
        Self {
            store,
            stack,
            cache_dir,
            init_program,
            step_timeout: build_sandbox::MAX_BUILD_TIMEOUT,
            build_ca_bundle: host_bundle.is_file().then_some(host_bundle),
            buildpack_sources: SourcePolicy::default(),
            sandbox: SandboxConfig::default(),
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct BuildRequest {
    pub app: AppName,
    /// The checked-out tree to build (a `.git` inside it is left out of the image).
    pub source_dir: PathBuf,
    /// The tag of the image in the store.
    pub tag: String,
    /// The time limit of the whole build (the app's setting); `None` is
    /// [`build_sandbox::DEFAULT_BUILD_TIMEOUT`].
    pub timeout: Option<Duration>,
    /// The app's account's host id range: build steps run as root of a user namespace mapped onto it (what
    /// they write keeps container uids on disk). `None`: as host root.
    pub id_range: Option<IdRange>,
    /// The app's config vars: `BUILDPACK_URL` picks a classic buildpack, and classic buildpacks see them all
    /// as files in their `ENV_DIR`. The built-in buildpacks do not use them (nor put them in the image).
    pub config_vars: BTreeMap<String, String>,
}

impl std::fmt::Debug for BuildRequest {
    /// Config var names only: values may be secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildRequest")
            .field("app", &self.app)
            .field("source_dir", &self.source_dir)
            .field("tag", &self.tag)
            .field("timeout", &self.timeout)
            .field("id_range", &self.id_range)
            .field("config_vars", &self.config_vars.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOutput {
    pub image: ImageRef,
    pub processes: BTreeMap<ProcessType, String>,
    pub buildpack: String,
    /// Stack, dependencies (Python with requirements, Node.js), app.
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
    /// lines (the user sees them in `git push`). The build runs in a sandbox of its own (cgroup limits and
    /// the time limit, see `build_sandbox`), removed when it ends.
    pub async fn build(
        &self,
        req: BuildRequest,
        log: mpsc::Sender<String>,
    ) -> Result<BuildOutput, BuildError> {
        let span = tracing::info_span!("build", app = %req.app, tag = %req.tag);
        let timeout = req.timeout.unwrap_or(DEFAULT_BUILD_TIMEOUT);
        let sandbox = BuildSandbox::create(&self.config.sandbox, req.app.as_str(), timeout)
            .await
            .map_err(BuildError::Sandbox)?;
        let result =
            tracing::Instrument::instrument(sandbox.within(self.build_in(req, &sandbox, &log)), span).await;
        sandbox.finish(result, &log).await
    }

    async fn build_in(
        &self,
        req: BuildRequest,
        sandbox: &BuildSandbox,
        log: &mpsc::Sender<String>,
    ) -> Result<BuildOutput, BuildError> {
        let log = log.clone();
        let cfg = &*self.config;
        let say = |line: String| {
            let log = log.clone();
            async move {
                let _ = log.send(line).await;
            }
        };

        // Buildpacks the app names (its `BUILDPACK_URL` config var, else `.buildpacks`) replace detection, as
        // on Heroku. (A Dockerfile build is chosen by the caller before this; see `detect`.)
        let src = &req.source_dir;
        let config_vars = req.config_vars.clone();
        if let Some(buildpacks) = classic::requested_buildpacks(src, &config_vars, cfg.buildpack_sources)? {
            return self
                .build_classic(&req, buildpacks, config_vars, sandbox, &log)
                .await;
        }

        // Detect.
        let procfile = read_source_file(src, "Procfile")?
            .map(|t| parse_procfile(&String::from_utf8_lossy(&t)))
            .transpose()?;
        let facts = SourceFacts {
            has_requirements_txt: is_file(src, "requirements.txt"),
            has_pyproject_toml: is_file(src, "pyproject.toml"),
            has_package_json: is_file(src, "package.json"),
            has_index_html: is_file(src, "index.html"),
            has_public_index_html: is_file(src, "public/index.html"),
            procfile: procfile.clone(),
        };
        let buildpack = detect(&facts).ok_or(BuildError::NoBuildpack)?;
        say(buildpack.detected_line().to_owned()).await;
        // The files a buildpack reads are checked before the stack is prepared, so a typo fails fast.
        let package = match buildpack {
            Buildpack::Node => {
                let bytes = read_source_file(src, "package.json")?.unwrap_or_default();
                Some(node::parse_package_json(&bytes).map_err(BuildError::BadPackageJson)?)
            }
            _ => None,
        };
        let pyproject_deps = match buildpack {
            Buildpack::Python if !facts.has_requirements_txt && facts.has_pyproject_toml => {
                let text = read_source_file(src, "pyproject.toml")?.unwrap_or_default();
                Some(
                    pyproject::dependencies(&String::from_utf8_lossy(&text))
                        .map_err(BuildError::BadPyproject)?,
                )
            }
            _ => None,
        };

        // What the app layer leaves out: `.git`, and `.slugignore`'s matches (before any build step, as
        // Heroku does).
        let mut app_exclude = vec![PathBuf::from(".git")];
        if let Some(text) = read_source_file(src, ".slugignore")? {
            let (patterns, warnings) = slugignore::parse(&String::from_utf8_lossy(&text));
            for warning in warnings {
                say(format!("       warning: {warning}")).await;
            }
            let root = src.clone();
            let ignored = blocking(move || Ok(slugignore::excluded_paths(&root, &patterns))).await?;
            say(format!(
                "-----> .slugignore leaves out {} path{}",
                ignored.len(),
                if ignored.len() == 1 { "" } else { "s" }
            ))
            .await;
            app_exclude.extend(ignored);
        }

        let stack = self.stack(&log).await?;
        say(format!(
            "-----> Using the {} stack ({})",
            stack.name,
            short(&stack.layer.digest)
        ))
        .await;
        let mut layers = vec![stack.layer.clone()];
        let mut history = vec![format!("berth stack {} (debootstrap minbase)", stack.name)];

        // The buildpack's own steps. `ctx` holds the build's scratch directory until the app layer is written.
        let ctx = Ctx::new(cfg, &req, &stack, &log, sandbox, app_exclude)?;
        let output = match buildpack {
            Buildpack::Python => python_build::build(&ctx, pyproject_deps).await?,
            Buildpack::Node => node_build::build(&ctx, &package.unwrap_or_default()).await?,
            Buildpack::Static => LanguageOutput {
                default_web: Some(format!(
                    "python3 -m http.server --directory {} $PORT",
                    static_root(&facts)
                )),
                ..LanguageOutput::default()
            },
            Buildpack::Procfile => LanguageOutput::default(),
        };
        let dependencies_reused = output.deps.as_ref().is_some_and(|d| d.reused);
        if let Some(deps) = &output.deps {
            layers.push(deps.layer.clone());
            history.push(deps.created_by.clone());
        }

        // Processes: the Procfile's, and the buildpack's default web process when the Procfile has none.
        let mut processes = procfile.unwrap_or_default();
        match (&output.default_web, processes.contains_key(&ProcessType::web())) {
            (Some(web), false) => {
                say(format!("-----> Default web process: {web}")).await;
                processes.insert(ProcessType::web(), web.clone());
            }
            (None, false) => {
                say("       No web process: add a Procfile such as `web: python3 app.py`".to_owned()).await;
            }
            (_, true) => {}
        }

        // The app.
        say("-----> Writing the app layer".to_owned()).await;
        let app_layer = {
            let store = cfg.store.clone();
            let (dir, exclude) = match &output.app_dir {
                // A built copy already lacks what is excluded; the Node.js one has an empty mount point.
                Some(dir) => (dir.clone(), vec![PathBuf::from("node_modules")]),
                None => {
                    let mut exclude = ctx.app_exclude.clone();
                    if buildpack == Buildpack::Node {
                        exclude.push("node_modules".into());
                    }
                    (src.clone(), exclude)
                }
            };
            blocking(move || {
                let mut options = LayerOptions::new("app", LayerMode::Reproducible);
                options.exclude = exclude;
                store
                    .write_layer(&dir, &options)
                    .map_err(|source| BuildError::WriteLayer { what: "app", source })
            })
            .await?
        };
        drop(ctx);
        layers.push(app_layer);
        history.push("berth app source".to_owned());

        // The image.
        let config = image_config(&processes, buildpack, &output, history);
        let manifest_digest = put_image(&cfg.store, &req.tag, &layers, config).await?;
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

    /// Builds with the classic buildpacks the app named: the compiled `/app` is the app layer; processes come
    /// from their `bin/release` (a Procfile wins) and source `.profile.d/*.sh` first; the config vars their
    /// `bin/release` sets become the image's environment (the app's own config vars override them).
    async fn build_classic(
        &self,
        req: &BuildRequest,
        buildpacks: Vec<classic::BuildpackSource>,
        config_vars: BTreeMap<String, String>,
        sandbox: &BuildSandbox,
        log: &mpsc::Sender<String>,
    ) -> Result<BuildOutput, BuildError> {
        let cfg = &*self.config;
        let src = &req.source_dir;
        let procfile = read_source_file(src, "Procfile")?
            .map(|t| parse_procfile(&String::from_utf8_lossy(&t)))
            .transpose()?;
        let count = buildpacks.len();
        let _ = log
            .send(format!(
                "-----> Using {count} classic buildpack{} named by the app",
                if count == 1 { "" } else { "s" }
            ))
            .await;
        let stack = self.stack(log).await?;
        let ctx = Ctx::new(cfg, req, &stack, log, sandbox, vec![PathBuf::from(".git")])?;
        let stack_rootfs = ctx.stack_rootfs().await?.to_owned();
        let cache = Cache {
            root: cfg.cache_dir.clone(),
        };
        let output = classic::run(
            ClassicRun {
                buildpacks,
                source_dir: src.clone(),
                cache_dir: cache.app_dir(&req.app).join("classic"),
                config_vars,
                stack_rootfs,
                stack_name: stack.name.clone(),
                source_version: None,
                init_program: cfg.init_program.clone(),
                scratch_parent: cache.tmp_dir(),
                timeout: cfg.step_timeout,
                ca_bundle: cfg.build_ca_bundle.clone(),
                git_program: PathBuf::from("git"),
                policy: cfg.buildpack_sources,
                user_namespace: req.id_range.map(Into::into),
            },
            sandbox,
            log,
        )
        .await?;
        let mut processes = output.processes.clone();
        processes.extend(procfile.unwrap_or_default());
        let processes: BTreeMap<ProcessType, String> = processes
            .into_iter()
            .map(|(kind, command)| (kind, classic::with_profile_d(&command)))
            .collect();
        let names: Vec<String> = output.buildpacks.iter().map(|b| b.name.clone()).collect();
        let release_env = output.config_vars.clone();

        let _ = log.send("-----> Writing the app layer".to_owned()).await;
        let store = cfg.store.clone();
        let app_layer = blocking(move || {
            let layer = output
                .write_app_layer(&store)
                .map_err(|source| BuildError::WriteLayer { what: "app", source });
            drop(output);
            layer
        })
        .await?;
        drop(ctx);
        let layers = vec![stack.layer.clone(), app_layer];
        let history = vec![
            format!("berth stack {} (debootstrap minbase)", stack.name),
            format!("berth classic buildpacks: {}", names.join(", ")),
        ];
        let mut config = image_config(
            &processes,
            Buildpack::Procfile,
            &LanguageOutput::default(),
            history,
        );
        config.env.extend(release_env);
        config.labels.insert(
            BUILDPACK_LABEL.to_owned(),
            format!("classic: {}", names.join(", ")),
        );
        let manifest_digest = put_image(&cfg.store, &req.tag, &layers, config).await?;
        let _ = log
            .send(format!(
                "-----> Built image {} ({})",
                req.tag,
                short(&manifest_digest)
            ))
            .await;
        Ok(BuildOutput {
            image: ImageRef { manifest_digest },
            processes,
            buildpack: "classic".to_owned(),
            layers,
            dependencies_reused: false,
        })
    }

    /// The stack, built the first time. Its progress callback is synchronous; an unbounded queue hands lines
    /// to `log` in order.
    async fn stack(&self, log: &mpsc::Sender<String>) -> Result<StackLayer, BuildError> {
        let cfg = &*self.config;
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
        stack.map_err(BuildError::Stack)
    }
}

/// What a buildpack's own steps add to the image.
#[derive(Default)]
pub struct LanguageOutput {
    pub deps: Option<Dependencies>,
    /// A built copy of the app (after a build script or collectstatic), written as the app layer instead of
    /// the source.
    pub app_dir: Option<PathBuf>,
    /// The web process when the Procfile has none.
    pub default_web: Option<String>,
    pub env: Vec<(&'static str, &'static str)>,
    /// Prepended to `PATH`.
    pub path: Vec<&'static str>,
}

fn image_config(
    processes: &BTreeMap<ProcessType, String>,
    buildpack: Buildpack,
    output: &LanguageOutput,
    history: Vec<String>,
) -> ImageConfig {
    let mut path: Vec<&str> = output.path.clone();
    path.push(pip::BIN_DIR);
    path.push(crate::step::BUILD_PATH);
    let path = path.join(":");
    let env: BTreeMap<String, String> = pip::RUNTIME_ENV
        .iter()
        .chain(&output.env)
        .chain(&[("PATH", path.as_str()), ("LANG", "C.UTF-8"), ("HOME", "/app")])
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
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

/// Writes the image's config and manifest and tags it; returns the manifest's digest.
async fn put_image(
    store: &ImageStore,
    tag: &str,
    layers: &[LayerInfo],
    config: ImageConfig,
) -> Result<String, BuildError> {
    let (store, tag, layers) = (store.clone(), tag.to_owned(), layers.to_vec());
    blocking(move || {
        store
            .put_image(&tag, &layers, &config)
            .map_err(|source| match source {
                ImageStoreError::ImageOverLimit { .. } => {
                    BuildError::Limit(build_sandbox::LimitExceeded::ImageSize(source.to_string()))
                }
                source => BuildError::PutImage { tag, source },
            })
    })
    .await
}

fn is_file(source_dir: &Path, rel: &str) -> bool {
    std::fs::symlink_metadata(source_dir.join(rel)).is_ok_and(|m| m.is_file())
}

/// Reads `name` at the top of the source tree: `None` when absent; refused when it is not a regular file
/// (a symlink could point at the host's files) or too big.
pub(crate) fn read_source_file(source_dir: &Path, name: &'static str) -> Result<Option<Vec<u8>>, BuildError> {
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

pub(crate) async fn blocking<T: Send + 'static>(
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
        let config = image_config(&processes, Buildpack::Python, &LanguageOutput::default(), vec![]);
        assert_eq!(config.cmd, ["/bin/sh", "-c", "python3 app.py"]);
        assert_eq!(config.working_dir, "/app");
        assert_eq!(config.env["PYTHONPATH"], "/layers/python/site-packages");
        assert!(config.env["PATH"].starts_with("/layers/python/site-packages/bin:"));
        assert_eq!(
            config.labels[PROCESSES_LABEL],
            r#"{"web":"python3 app.py","worker":"python3 worker.py"}"#
        );
        let no_web = image_config(
            &BTreeMap::new(),
            Buildpack::Python,
            &LanguageOutput::default(),
            vec![],
        );
        assert!(no_web.cmd.is_empty());

        let node = LanguageOutput {
            env: vec![("NODE_ENV", "production")],
            path: vec!["/app/node_modules/.bin"],
            ..LanguageOutput::default()
        };
        let config = image_config(&processes, Buildpack::Node, &node, vec![]);
        assert_eq!(config.env["NODE_ENV"], "production");
        assert!(config.env["PATH"].starts_with("/app/node_modules/.bin:/layers/python/site-packages/bin:"));
        assert_eq!(config.labels[BUILDPACK_LABEL], "nodejs");
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
