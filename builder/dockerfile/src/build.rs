//! The executor: runs a parsed Dockerfile step by step into an image in the store, reusing cached steps.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use build_sandbox::{BuildSandbox, SandboxConfig, DEFAULT_BUILD_TIMEOUT};
use image_store::{
    HistoryEntry, ImageConfig, ImageExtras, ImageStore, ImageStoreError, ImportOptions, LayerInfo, LayerMode,
    LayerOptions,
};
use sha2::{Digest, Sha256};
use stack::StackConfig;
use tokio::sync::mpsc;
use vocabulary::{AppName, IdRange};

use crate::cache::{step_key, Cache};
use crate::context::{self, CopyError, Ignore};
use crate::error::{cache_err, DockerfileError};
use crate::registry::{self, ImageRef};
use crate::run::{self, RunStep};
use crate::state::{
    absolute, apply_metadata, declare_arg, expand_word, image_file, lookup_id, run_env, shell_command, State,
};
use crate::{parse, Command, Instruction, Kind};

/// `FROM` this (optionally `:latest`) starts from Berth's stack.
pub const STACK_IMAGE: &str = "berth/bookworm";

/// The `PATH` of an image whose base does not set one, as Docker does.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Dockerfiles bigger than this are refused.
const MAX_DOCKERFILE: u64 = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct DockerfileConfig {
    pub store: ImageStore,
    pub stack: StackConfig,
    /// See [`crate::cache`](crate) for its layout; not shared with the buildpacks' cache.
    pub cache_dir: PathBuf,
    /// The program that acts as container init when run with `container::INIT_ARG` (normally the `berth`
    /// binary).
    pub init_program: PathBuf,
    /// How long one `RUN` step may take; by default as long as the longest build, so that the build's own
    /// time limit (the app's `build_timeout`) decides.
    pub run_timeout: Duration,
    /// A CA bundle from the host bound over the image's own in `RUN` steps (build time only). Defaults to the
    /// host's `/etc/ssl/certs/ca-certificates.crt` when it exists.
    pub build_ca_bundle: Option<PathBuf>,
    /// The cgroup parent and limits of each build's sandbox.
    pub sandbox: SandboxConfig,
    /// The skopeo program that pulls `FROM REGISTRY/REPO:TAG` bases (normally `skopeo`, found on `PATH`).
    pub skopeo: PathBuf,
    /// How long pulling a base may take.
    pub pull_timeout: Duration,
    /// The most bytes of layers a pulled base may hold.
    pub max_base_bytes: u64,
    /// Pull from registries on this host's loopback (`127.0.0.1:PORT/...`, `localhost:PORT/...`) without TLS
    /// (plain HTTP or an unverified certificate). Off by default: every other registry needs valid HTTPS.
    pub insecure_loopback_registries: bool,
}

impl DockerfileConfig {
    pub fn new(store: ImageStore, stack: StackConfig, cache_dir: PathBuf, init_program: PathBuf) -> Self {
        let host_bundle = PathBuf::from("/etc/ssl/certs/ca-certificates.crt");
        Self {
            store,
            stack,
            cache_dir,
            init_program,
            run_timeout: build_sandbox::MAX_BUILD_TIMEOUT,
            build_ca_bundle: host_bundle.is_file().then_some(host_bundle),
            sandbox: SandboxConfig::default(),
            skopeo: PathBuf::from("skopeo"),
            pull_timeout: Duration::from_secs(600),
            max_base_bytes: 4 * 1024 * 1024 * 1024,
            insecure_loopback_registries: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerfileRequest {
    /// Scopes the step cache: apps never share cached steps.
    pub app: AppName,
    /// The build context (the pushed tree).
    pub context_dir: PathBuf,
    /// Relative to the context; normally `Dockerfile`.
    pub dockerfile: PathBuf,
    /// The tag of the image in the store.
    pub tag: String,
    /// `--build-arg` values; only `ARG`s the Dockerfile declares use them.
    pub build_args: BTreeMap<String, String>,
    /// The time limit of the whole build (the app's setting); `None` is
    /// [`build_sandbox::DEFAULT_BUILD_TIMEOUT`].
    pub timeout: Option<Duration>,
    /// The app's account's host id range: `RUN` steps run as root of a user namespace mapped onto it (what
    /// they write keeps container uids on disk). `None`: as host root.
    pub id_range: Option<IdRange>,
}

impl DockerfileRequest {
    pub fn new(app: AppName, context_dir: PathBuf, tag: String) -> Self {
        Self {
            app,
            context_dir,
            dockerfile: PathBuf::from("Dockerfile"),
            tag,
            build_args: BTreeMap::new(),
            timeout: None,
            id_range: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerfileOutput {
    pub manifest_digest: String,
    /// Base image layers first.
    pub layers: Vec<LayerInfo>,
    pub config: ImageConfig,
    pub extras: ImageExtras,
    /// `RUN`, `COPY` and `ADD` steps, and how many of them came from the cache.
    pub layer_steps: usize,
    pub cached_steps: usize,
}

impl DockerfileOutput {
    /// What the image runs: `ENTRYPOINT` followed by `CMD`, as a container runtime would.
    pub fn command(&self) -> Vec<String> {
        self.extras
            .entrypoint
            .iter()
            .chain(&self.config.cmd)
            .cloned()
            .collect()
    }

    /// [`DockerfileOutput::command`] as one `/bin/sh -c` command line (what a Procfile entry holds), or
    /// `None` when the image has no command. A shell-form command is kept as written; an exec form is
    /// quoted and `exec`ed, so that the process gets the container's signals.
    pub fn shell_command(&self) -> Option<String> {
        shell_command(&self.command())
    }
}

/// Builds images from Dockerfiles. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DockerfileBuilder {
    config: Arc<DockerfileConfig>,
}

impl DockerfileBuilder {
    pub fn new(config: DockerfileConfig) -> Self {
        Self {
            config: Arc::new(config),
        }
    }

    pub fn config(&self) -> &DockerfileConfig {
        &self.config
    }

    /// Builds `req.context_dir` by its Dockerfile into an image tagged `req.tag`, announcing each step on
    /// `log` (`-----> Step 2/7 : RUN ...`, `Using cache`, the commands' output indented).
    pub async fn build(
        &self,
        req: DockerfileRequest,
        log: mpsc::Sender<String>,
    ) -> Result<DockerfileOutput, DockerfileError> {
        let span = tracing::info_span!("dockerfile_build", app = %req.app, tag = %req.tag);
        let timeout = req.timeout.unwrap_or(DEFAULT_BUILD_TIMEOUT);
        let sandbox = BuildSandbox::create(&self.config.sandbox, req.app.as_str(), timeout)
            .await
            .map_err(DockerfileError::Sandbox)?;
        let build = sandbox.within(self.build_in_span(req, &sandbox, log.clone()));
        let result = tracing::Instrument::instrument(build, span).await;
        sandbox.finish(result, &log).await
    }

    async fn build_in_span(
        &self,
        req: DockerfileRequest,
        sandbox: &BuildSandbox,
        log: mpsc::Sender<String>,
    ) -> Result<DockerfileOutput, DockerfileError> {
        let cfg = &*self.config;
        let say = |line: String| {
            let log = log.clone();
            async move {
                let _ = log.send(line).await;
            }
        };
        let text = read_dockerfile(&req.context_dir, &req.dockerfile)?;
        let dockerfile = parse(&text)?;
        let escape = dockerfile.escape;
        let cache = Cache {
            root: cfg.cache_dir.clone(),
        };
        let ignore = Ignore::read(&req.context_dir).map_err(|e| match e {
            CopyError::Io(path, source) => DockerfileError::ReadDockerignore { path, source },
            CopyError::Refused(message) => DockerfileError::ReadDockerignore {
                path: req.context_dir.join(".dockerignore"),
                source: std::io::Error::other(message),
            },
        })?;
        let total = dockerfile.instructions.len();

        // Global ARGs are usable in FROM only.
        let mut global = BTreeMap::new();
        for instruction in &dockerfile.global_args {
            declare_arg(instruction, escape, &req.build_args, &mut global)?;
        }
        let from = &dockerfile.instructions[0];
        let Kind::From { image } = &from.kind else {
            unreachable!("the parser puts FROM first");
        };
        let lookup = |name: &str| global.get(name).cloned().flatten();
        let image = expand_word(from.line, image, escape, &lookup)?;
        say(format!("-----> Step 1/{total} : {}", from.text)).await;
        let mut state = self.base(&image, from.line, &log).await?;
        state.global_args = global;

        let mut layer_steps = 0;
        let mut cached_steps = 0;
        for (i, instruction) in dockerfile.instructions.iter().enumerate().skip(1) {
            say(format!("-----> Step {}/{total} : {}", i + 1, instruction.text)).await;
            let line = instruction.line;
            let vars = |name: &str| state.lookup(name);
            let word = |w: &str| expand_word(line, w, escape, &vars);
            let mut history_text = instruction.text.clone();
            match &instruction.kind {
                Kind::From { .. } => unreachable!("the parser refuses a second FROM"),
                Kind::Run(command) => {
                    layer_steps += 1;
                    let env = run_env(&state);
                    let key = step_key(&state.chain, &format!("RUN {command:?} {env:?}"), "");
                    if let Some(layer) = cache.step(&req.app, &key, &cfg.store) {
                        say("       Using cache".to_owned()).await;
                        cached_steps += 1;
                        state.layers.push(layer);
                    } else {
                        let layer = self
                            .run_step(
                                &cache,
                                &state,
                                instruction,
                                command,
                                env,
                                sandbox,
                                req.id_range,
                                &log,
                            )
                            .await?;
                        cache.record_step(&req.app, &key, &layer)?;
                        state.layers.push(layer);
                    }
                    state.chain = key;
                    history_text = match command {
                        Command::Shell(text) => format!("RUN /bin/sh -c {text}"),
                        Command::Exec(argv) => format!("RUN {argv:?}"),
                    };
                }
                Kind::Copy {
                    sources,
                    dest,
                    add,
                    chown,
                } => {
                    layer_steps += 1;
                    let sources = sources.iter().map(|s| word(s)).collect::<Result<Vec<_>, _>>()?;
                    let dest = absolute(&state.config.working_dir, &word(dest)?);
                    let owner = match chown {
                        Some(chown) => Some(self.owner(&cache, &state, line, &word(chown)?).await?),
                        None => None,
                    };
                    let copy = CopySpec {
                        line,
                        sources: sources.clone(),
                        dest: dest.clone(),
                        add: *add,
                        owner,
                    };
                    let (key, layer, cached) = self.copy_step(&cache, &req, &state, copy, &ignore).await?;
                    if cached {
                        say("       Using cache".to_owned()).await;
                        cached_steps += 1;
                    }
                    state.layers.push(layer);
                    state.chain = key;
                    let verb = if *add { "ADD" } else { "COPY" };
                    history_text = format!("{verb} {} {dest}", sources.join(" "));
                }
                Kind::Ignored { keyword } => {
                    say(format!("       Ignoring {keyword}: Berth does not use it")).await;
                }
                other => {
                    let text = apply_metadata(&mut state, other, line, escape, &req.build_args)?;
                    state.chain = step_key(&state.chain, &text, "");
                }
            }
            state.extras.history.push(HistoryEntry {
                created_by: history_text,
                empty_layer: !instruction.kind.makes_layer(),
            });
        }

        let manifest_digest = {
            let (store, tag) = (cfg.store.clone(), req.tag.clone());
            let (layers, config, extras) = (state.layers.clone(), state.config.clone(), state.extras.clone());
            blocking(move || {
                store
                    .put_image_with(&tag, &layers, &config, &extras)
                    .map_err(|source| match source {
                        ImageStoreError::ImageOverLimit { .. } => DockerfileError::Limit(
                            build_sandbox::LimitExceeded::ImageSize(source.to_string()),
                        ),
                        source => DockerfileError::PutImage { tag, source },
                    })
            })
            .await?
        };
        say(format!(
            "-----> Built image {} ({}); {cached_steps} of {layer_steps} layer steps from the cache",
            req.tag,
            short(&manifest_digest)
        ))
        .await;
        tracing::info!(app = %req.app, %manifest_digest, layer_steps, cached_steps, "built Dockerfile image");
        Ok(DockerfileOutput {
            manifest_digest,
            layers: state.layers,
            config: state.config,
            extras: state.extras,
            layer_steps,
            cached_steps,
        })
    }

    /// Makes sure the registry image `image` is in the store and returns its tag there: pulled with skopeo
    /// into a temporary layout and imported (every digest checked) the first time, then reused, as Docker
    /// reuses a local copy: the tag is a hash of the reference, and the step cache keys on the manifest digest.
    async fn pull_base(
        &self,
        image: &str,
        line: usize,
        log: &mpsc::Sender<String>,
    ) -> Result<String, DockerfileError> {
        let cfg = &*self.config;
        let reference = ImageRef::parse(image).map_err(|message| DockerfileError::Instruction {
            line,
            message: format!("FROM: {message}"),
        })?;
        let shown = reference.to_string();
        let tag = format!("from-{}", &hex::encode(Sha256::digest(shown.as_bytes()))[..32]);
        let store = cfg.store.clone();
        let wanted = tag.clone();
        let base_err = |image: String| {
            move |source| DockerfileError::BaseImage {
                image: image.clone(),
                source,
            }
        };
        let err = base_err(shown.clone());
        if blocking(move || store.resolve_tag(&wanted).map_err(err))
            .await?
            .is_some()
        {
            let _ = log
                .send(format!("-----> FROM {shown}: using the copy pulled before"))
                .await;
            return Ok(tag);
        }
        let _ = log.send(format!("-----> Pulling {shown}")).await;
        let io = cache_err(&cfg.cache_dir);
        std::fs::create_dir_all(&cfg.cache_dir).map_err(&io)?;
        let dir = tempfile::Builder::new()
            .prefix("pull-")
            .tempdir_in(&cfg.cache_dir)
            .map_err(&io)?;
        let layout = dir.path().join("layout");
        let tls_verify = !(cfg.insecure_loopback_registries && reference.is_loopback());
        registry::pull(
            &cfg.skopeo,
            &reference,
            tls_verify,
            cfg.pull_timeout,
            &layout,
            "pull",
        )
        .await
        .map_err(|source| DockerfileError::Pull {
            line,
            image: shown.clone(),
            source,
        })?;
        let store = cfg.store.clone();
        let options = ImportOptions {
            source_tag: "pull".to_owned(),
            tag: tag.clone(),
            max_bytes: cfg.max_base_bytes,
        };
        let err = base_err(shown.clone());
        let imported = blocking(move || store.import_from_layout(&layout, &options).map_err(err)).await?;
        drop(dir);
        let _ = log
            .send(format!(
                "-----> Pulled {shown}: {} layer(s), {:.1} MB, {}",
                imported.layers,
                imported.bytes as f64 / 1e6,
                short(&imported.manifest_digest)
            ))
            .await;
        Ok(tag)
    }

    /// The state after `FROM image`.
    async fn base(
        &self,
        image: &str,
        line: usize,
        log: &mpsc::Sender<String>,
    ) -> Result<State, DockerfileError> {
        let cfg = &*self.config;
        let name = image.strip_suffix(":latest").unwrap_or(image);
        let mut state = State {
            layers: Vec::new(),
            config: ImageConfig::default(),
            extras: ImageExtras::default(),
            args: BTreeMap::new(),
            global_args: BTreeMap::new(),
            own_cmd: false,
            chain: String::new(),
        };
        if name == STACK_IMAGE {
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
            let stack = stack.map_err(DockerfileError::Stack)?;
            state.chain = step_key("", "FROM", &stack.layer.diff_id);
            state.layers.push(stack.layer);
            state.config.env.insert("PATH".into(), DEFAULT_PATH.into());
            state.extras.history.push(HistoryEntry {
                created_by: format!("berth stack {} (debootstrap minbase)", stack.name),
                empty_layer: false,
            });
            return Ok(state);
        }
        let tag = if name.contains('/') || image.contains('@') {
            self.pull_base(image, line, log).await?
        } else {
            name.to_owned()
        };
        let store = cfg.store.clone();
        let found = blocking(move || {
            let err = |source| DockerfileError::BaseImage {
                image: tag.clone(),
                source,
            };
            let Some(digest) = store.resolve_tag(&tag).map_err(err)? else {
                return Ok(None);
            };
            let image = store.read_image(&digest).map_err(err)?;
            let extras = store.read_image_extras(&digest).map_err(err)?;
            Ok(Some((image, extras)))
        })
        .await?;
        let Some((base, mut extras)) = found else {
            return Err(DockerfileError::NoSuchImage {
                line,
                image: image.to_owned(),
            });
        };
        state.chain = step_key("", "FROM", &base.manifest_digest);
        state.layers = base
            .layers
            .iter()
            .map(|l| LayerInfo {
                digest: l.digest.clone(),
                diff_id: l.diff_id.clone(),
                size: l.size,
            })
            .collect();
        if extras.history.iter().filter(|h| !h.empty_layer).count() != state.layers.len() {
            extras.history = base
                .config
                .history
                .iter()
                .map(|by| HistoryEntry {
                    created_by: by.clone(),
                    empty_layer: false,
                })
                .collect();
        }
        state.config = base.config;
        state.config.history.clear();
        state.config.created = None;
        state
            .config
            .env
            .entry("PATH".into())
            .or_insert_with(|| DEFAULT_PATH.into());
        state.extras = extras;
        Ok(state)
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_step(
        &self,
        cache: &Cache,
        state: &State,
        instruction: &Instruction,
        command: &Command,
        env: BTreeMap<String, String>,
        sandbox: &BuildSandbox,
        id_range: Option<IdRange>,
        log: &mpsc::Sender<String>,
    ) -> Result<LayerInfo, DockerfileError> {
        let cfg = &*self.config;
        let line = instruction.line;
        let layer_dirs = {
            let (cache, store, layers) = (cache.clone(), cfg.store.clone(), state.layers.clone());
            blocking(move || cache.layer_dirs(&store, &layers)).await?
        };
        let scratch = scratch_dir(cache, "run-")?;
        let workdir = if state.config.working_dir.is_empty() {
            "/"
        } else {
            &state.config.working_dir
        };
        let upper = run::run(
            RunStep {
                line,
                init_program: &cfg.init_program,
                layer_dirs,
                scratch: scratch.path(),
                command,
                env,
                workdir,
                user: &state.extras.user,
                timeout: cfg.run_timeout,
                ca_bundle: cfg.build_ca_bundle.as_deref(),
                sandbox,
                user_namespace: id_range.map(Into::into),
            },
            log,
        )
        .await?;
        let (cache, store) = (cache.clone(), cfg.store.clone());
        blocking(move || {
            let mut options = LayerOptions::new("", LayerMode::Rootfs);
            options.overlay_upper = true;
            options.gzip_level = 1;
            let layer = store
                .write_layer(&upper, &options)
                .map_err(|source| DockerfileError::WriteLayer { line, source })?;
            cache.adopt_layer_dir(&upper, &layer)?;
            drop(scratch);
            Ok(layer)
        })
        .await
    }

    /// Resolves `--chown=USER[:GROUP]`: numbers as they are, names from the image's `/etc/passwd` and
    /// `/etc/group` (which needs its layers unpacked). Without a group, the gid is the uid, as in Docker.
    async fn owner(
        &self,
        cache: &Cache,
        state: &State,
        line: usize,
        chown: &str,
    ) -> Result<(u64, u64), DockerfileError> {
        let bad = |message: String| DockerfileError::Instruction { line, message };
        let (user, group) = match chown.split_once(':') {
            Some((u, g)) => (u.to_owned(), Some(g.to_owned())),
            None => (chown.to_owned(), None),
        };
        let numeric = |s: &str| s.parse::<u64>().ok();
        let needs_files = numeric(&user).is_none() || group.as_deref().is_some_and(|g| numeric(g).is_none());
        let dirs = if needs_files {
            let (cache, store, layers) = (cache.clone(), self.config.store.clone(), state.layers.clone());
            blocking(move || cache.layer_dirs(&store, &layers)).await?
        } else {
            Vec::new()
        };
        let id = |name: &str, file: &str| -> Result<u64, DockerfileError> {
            if let Some(n) = numeric(name) {
                return Ok(n);
            }
            let text = image_file(&dirs, file).unwrap_or_default();
            lookup_id(&text, name)
                .ok_or_else(|| bad(format!("--chown={chown}: no {name:?} in the image's /{file}")))
        };
        let uid = id(&user, "etc/passwd")?;
        let gid = match &group {
            Some(group) => id(group, "etc/group")?,
            None => uid,
        };
        Ok((uid, gid))
    }

    /// Stages the copied files, and reuses the cached layer for their checksum or writes a new one. Returns the
    /// step's key, its layer and whether it came from the cache.
    async fn copy_step(
        &self,
        cache: &Cache,
        req: &DockerfileRequest,
        state: &State,
        copy: CopySpec,
        ignore: &Ignore,
    ) -> Result<(String, LayerInfo, bool), DockerfileError> {
        let cfg = &*self.config;
        let (cache, store, app) = (cache.clone(), cfg.store.clone(), req.app.clone());
        let (context_dir, ignore) = (req.context_dir.clone(), ignore.clone());
        let CopySpec {
            line,
            sources,
            dest,
            add,
            owner,
        } = copy;
        let chain = state.chain.clone();
        blocking(move || {
            let scratch = scratch_dir(&cache, "copy-")?;
            let stage = scratch.path().join("stage");
            std::fs::create_dir(&stage).map_err(cache_err(&stage))?;
            context::stage_copy(&context_dir, &sources, &dest, &stage, &ignore, add)
                .map_err(|e| copy_err(line, e))?;
            let files = context::checksum(&stage).map_err(|e| copy_err(line, e))?;
            let verb = if add { "ADD" } else { "COPY" };
            let key = step_key(&chain, &format!("{verb} {sources:?} {dest} {owner:?}"), &files);
            if let Some(layer) = cache.step(&app, &key, &store) {
                return Ok((key, layer, true));
            }
            let mut options = LayerOptions::new("", LayerMode::Reproducible);
            options.gzip_level = 1;
            options.owner = owner;
            let layer = store
                .write_layer(&stage, &options)
                .map_err(|source| DockerfileError::WriteLayer { line, source })?;
            cache.record_step(&app, &key, &layer)?;
            Ok((key, layer, false))
        })
        .await
    }
}

/// A `COPY` or `ADD` step, its words expanded.
struct CopySpec {
    line: usize,
    sources: Vec<String>,
    /// Absolute in the image.
    dest: String,
    /// `ADD`: tar archives are unpacked.
    add: bool,
    /// `--chown`, resolved to (uid, gid).
    owner: Option<(u64, u64)>,
}

fn copy_err(line: usize, e: CopyError) -> DockerfileError {
    match e {
        CopyError::Refused(message) => DockerfileError::Instruction { line, message },
        CopyError::Io(path, source) => DockerfileError::Copy { line, path, source },
    }
}

fn read_dockerfile(context: &Path, relative: &Path) -> Result<String, DockerfileError> {
    let path = context.join(relative);
    let err = |source| DockerfileError::ReadDockerfile {
        path: relative.to_owned(),
        source,
    };
    let meta = std::fs::symlink_metadata(&path).map_err(err)?;
    if !meta.is_file() || meta.len() > MAX_DOCKERFILE {
        return Err(err(std::io::Error::other(format!(
            "it must be a regular file of at most {MAX_DOCKERFILE} bytes"
        ))));
    }
    std::fs::read_to_string(&path).map_err(err)
}

fn scratch_dir(cache: &Cache, prefix: &str) -> Result<tempfile::TempDir, DockerfileError> {
    let parent = cache.tmp_dir();
    std::fs::create_dir_all(&parent).map_err(cache_err(&parent))?;
    // Removed on every return path; the overlay lives in the container's mount namespace, gone with it.
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(&parent)
        .map_err(cache_err(&parent))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DockerfileError> + Send + 'static,
) -> Result<T, DockerfileError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DockerfileError::Task(e.to_string()))?
}

fn short(digest: &str) -> &str {
    &digest[..digest.len().min("sha256:".len() + 12)]
}
