//! A deploy: build the pushed tree, create the release, let the reconcile loop roll it out, and wait until
//! the new release serves (or say clearly why not). Git receive calls this through `git_receive::Deployer`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeMap;
use std::path::Path;

use buildpacks::{BuildRequest, Builder};
use dockerfile::{DockerfileBuilder, DockerfileRequest};
use git_receive::{DeployRequest, Deployer};
use store::{EventKind, InstanceRowState, NewRelease, Release, ReleaseKind, Store, StoreError};
use tokio::sync::{mpsc, watch};
use vocabulary::{AppId, IdRange, ProcessType, ReleaseVersion};

use crate::lifecycle::LifecycleError;
use crate::reconcile::error_chain;
use crate::{ControllerHandle, Event};

#[derive(Debug, Clone)]
pub struct DeployConfig {
    /// Apps are served at `NAME.DOMAIN`; shown at the end of a push.
    pub domain: String,
    /// The router's public port, shown in the app's URL when it is not 80.
    pub router_port: u16,
    /// Memory per instance for a process type's first formation entry.
    pub default_memory_bytes: u64,
    /// How long a push waits for the new release's instances to run.
    pub rollout_timeout: Duration,
    /// Where a push's progress and build output also go, as `berth[build]` lines of the app's log.
    pub app_logs: Option<app_logs::AppLogs>,
}

/// Runs deploys. Cheap to clone.
#[derive(Clone)]
pub struct Deployments {
    inner: Arc<Inner>,
}

struct Inner {
    builder: Builder,
    /// Builds trees that have a `Dockerfile` (and no `.buildpacks`).
    dockerfiles: DockerfileBuilder,
    rollout: Rollout,
}

impl Deployments {
    /// `passes` is the controller's pass counter ([`crate::Controller::passes`]).
    pub fn new(
        config: DeployConfig,
        store: Store,
        builder: Builder,
        dockerfiles: DockerfileBuilder,
        controller: ControllerHandle,
        passes: watch::Receiver<u64>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                builder,
                dockerfiles,
                rollout: Rollout {
                    config,
                    store,
                    controller,
                    passes,
                    releasing: Arc::default(),
                    one_offs: None,
                    quotas: crate::quota::Quotas::default(),
                },
            }),
        }
    }

    /// Runs release phases (a Procfile's `release` command) in one-offs, and lets `berth run` start them
    /// (through [`Deployments::lifecycle`]). Without, a release phase fails the deploy. Call before cloning.
    pub fn with_one_offs(mut self, one_offs: crate::OneOffs) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("with_one_offs before the deployments are shared")
            .rollout
            .one_offs = Some(one_offs);
        self
    }

    /// Enforces `quotas` (the platform's defaults) on builds and on the first deploy's `web=1`; without,
    /// [`crate::quota::QuotaLimits::default`]. Call before cloning.
    pub fn with_quotas(mut self, quotas: crate::quota::Quotas) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("with_quotas before the deployments are shared")
            .rollout
            .quotas = quotas;
        self
    }

    /// Config changes, rollbacks, stop/start and restarts, rolled out like pushes.
    pub fn lifecycle(&self) -> crate::lifecycle::Lifecycle {
        crate::lifecycle::Lifecycle::from_rollout(self.inner.rollout.clone())
    }

    /// Deploys of existing images (`berth deploy --image`), rolled out like pushes.
    pub fn image_deploys(
        &self,
        config: crate::image_deploy::ImageDeployConfig,
        images: image_store::ImageStore,
    ) -> crate::image_deploy::ImageDeploys {
        crate::image_deploy::ImageDeploys::new(config, images, self.inner.rollout.clone())
    }
}

impl Deployer for Deployments {
    fn deploy(
        &self,
        req: DeployRequest,
        log: mpsc::Sender<String>,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send>> {
        let inner = self.inner.clone();
        let Some(logs) = inner.rollout.config.app_logs.clone() else {
            return Box::pin(async move { inner.deploy(req, log).await });
        };
        Box::pin(async move {
            let app = req.app.id;
            let (tee, mut lines) = mpsc::channel::<String>(256);
            let forward = tokio::spawn(async move {
                while let Some(line) = lines.recv().await {
                    let entry = app_logs::line(app_logs::LogSource::Berth, "build", line.as_bytes());
                    logs.log(app, entry).await;
                    // A push that went away still gets its build logged.
                    let _ = log.send(line).await;
                }
            });
            let result = inner.deploy(req, tee).await;
            // Every progress line reaches the push before its summary does. A sender kept by a build task
            // that outlives the deploy would hold this open: it gets a moment, not forever.
            let _ = tokio::time::timeout(Duration::from_secs(10), forward).await;
            result
        })
    }
}

/// What a build made, whichever way it was built (or the image an image deploy pulled).
pub(crate) struct Built {
    pub(crate) image_digest: String,
    pub(crate) processes: BTreeMap<ProcessType, String>,
}

/// A tree with a `Dockerfile` at its top is built from it, unless it names buildpacks (`.buildpacks`).
fn builds_with_dockerfile(source_dir: &Path) -> bool {
    let is_file =
        |name: &str| std::fs::symlink_metadata(source_dir.join(name)).is_ok_and(|m| m.file_type().is_file());
    is_file("Dockerfile") && !source_dir.join(".buildpacks").exists()
}

impl Inner {
    /// Builds the tree's `Dockerfile`. The processes are the Procfile's when the tree has one, else `web` runs
    /// the image's command (`ENTRYPOINT` + `CMD`).
    async fn build_dockerfile(
        &self,
        app: vocabulary::AppName,
        id_range: Option<IdRange>,
        source_dir: &Path,
        tag: String,
        timeout: Option<Duration>,
        log: &mpsc::Sender<String>,
    ) -> Result<Built, String> {
        say(log, "-----> Dockerfile detected".to_owned()).await;
        let mut request = DockerfileRequest::new(app, source_dir.to_owned(), tag);
        request.timeout = timeout;
        request.id_range = id_range;
        let out = self
            .dockerfiles
            .build(request, log.clone())
            .await
            .map_err(|e| format!("build failed: {}", error_chain(&e)))?;
        let procfile = match std::fs::read_to_string(source_dir.join("Procfile")) {
            Ok(text) => Some(
                buildpacks::parse_procfile(&text)
                    .map_err(|e| format!("build failed: {}", error_chain(&e)))?,
            ),
            Err(_) => None,
        };
        let processes = match procfile {
            Some(processes) => processes,
            None => out
                .shell_command()
                .map(|command| BTreeMap::from([(ProcessType::web(), command)]))
                .unwrap_or_default(),
        };
        if processes.is_empty() {
            say(
                log,
                "       The image has no CMD or ENTRYPOINT and there is no Procfile: nothing to run"
                    .to_owned(),
            )
            .await;
        }
        Ok(Built {
            image_digest: out.manifest_digest,
            processes,
        })
    }

    /// Records that the push failed before making a release; returns `reason` for the pusher.
    async fn failed(&self, req: &DeployRequest, description: &str, reason: String) -> String {
        record(
            &self.rollout.store,
            req.app.id,
            EventKind::DeployFailed,
            description,
            req.account.name.as_str(),
        )
        .await;
        reason
    }

    async fn deploy(&self, req: DeployRequest, log: mpsc::Sender<String>) -> Result<String, String> {
        let app = &req.app;
        let short_commit: String = req.commit.chars().take(7).collect();
        // Builds count against the app's owner, whoever pushed.
        let _build_slot = match self
            .rollout
            .quotas
            .start_build(&self.rollout.store, app.owner)
            .await
        {
            Ok(slot) => slot,
            Err(crate::quota::QuotaError::Exceeded(exceeded)) => return Err(exceeded.to_string()),
            Err(crate::quota::QuotaError::Store(error)) => return Err(internal(error)),
        };
        say(
            &log,
            format!("-----> Deploying {} (commit {short_commit})", app.name),
        )
        .await;

        // Health checks are read before the build, so that a bad app.json fails the push at once.
        let health_checks = match crate::app_json::read(&req.source_dir) {
            Ok(checks) => checks,
            Err(reason) => {
                let description = format!("Deploy of {short_commit} failed: {reason}");
                return Err(self.failed(&req, &description, reason).await);
            }
        };
        for (process_type, check) in &health_checks {
            say(
                &log,
                format!(
                    "-----> app.json: {process_type} instances must answer GET {} with 2xx ({} attempts)",
                    check.path, check.attempts
                ),
            )
            .await;
        }

        let tag = format!("{}-{short_commit}", app.name);
        let timeout = self
            .rollout
            .store
            .build_timeout_secs(app.id)
            .await
            .map_err(internal)?
            .map(|secs| Duration::from_secs(u64::from(secs)));
        // Builds run in the user namespace of the app's account (its owner, not whoever pushed).
        let id_range = self.rollout.store.id_range(app.owner).await.map_err(internal)?;
        // The app's current config: classic buildpacks see it (and `BUILDPACK_URL` picks one); a Dockerfile
        // build does not (like Heroku, config vars never reach `RUN`), unless BUILDPACK_URL forces buildpacks.
        let config_vars = self.rollout.current_config(app.id).await.map_err(internal)?;
        let forced = config_vars.contains_key(buildpacks::classic::BUILDPACK_URL_VAR);
        let build = if !forced && builds_with_dockerfile(&req.source_dir) {
            self.build_dockerfile(app.name.clone(), id_range, &req.source_dir, tag, timeout, &log)
                .await
        } else {
            let build = self
                .builder
                .build(
                    BuildRequest {
                        app: app.name.clone(),
                        source_dir: req.source_dir.clone(),
                        tag,
                        timeout,
                        id_range,
                        config_vars,
                    },
                    log.clone(),
                )
                .await
                .map_err(|e| format!("build failed: {}", error_chain(&e)));
            build.map(|build| Built {
                image_digest: build.image.manifest_digest,
                processes: build.processes,
            })
        };
        let build = match build {
            Ok(build) => build,
            Err(reason) => {
                let description = format!("Build of {short_commit} failed: {reason}");
                return Err(self.failed(&req, &description, reason).await);
            }
        };

        self.rollout
            .release_with_checks(
                app,
                &req.account,
                build,
                health_checks,
                (ReleaseKind::Build, format!("Deploy {short_commit}")),
                &log,
            )
            .await
    }
}

/// What every kind of deploy does once it has an image: create the release, scale web to 1 on the first
/// deploy, tell the controller, and wait until the release serves. Shared by git pushes, image deploys, config
/// changes, rollbacks and restarts.
#[derive(Clone)]
pub(crate) struct Rollout {
    pub(crate) config: DeployConfig,
    pub(crate) store: Store,
    pub(crate) controller: ControllerHandle,
    pub(crate) passes: watch::Receiver<u64>,
    /// Held while a release is made from the latest one (its config read, the new one written), so that two
    /// changes at once (a push and a `config set`, two `config set`s) cannot each miss the other's.
    pub(crate) releasing: Arc<tokio::sync::Mutex<()>>,
    /// Release phases run here (see [`Deployments::with_one_offs`]).
    pub(crate) one_offs: Option<crate::OneOffs>,
    /// Per-account limits and running builds (see [`Deployments::with_quotas`]).
    pub(crate) quotas: crate::quota::Quotas,
}

/// What a release that was rolled out came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolledOut {
    /// The new release; `None` when it could not be made.
    pub release: Option<ReleaseVersion>,
    /// The summary for the person who asked, or why the release does not serve (yet).
    pub outcome: Result<String, String>,
}

impl Rollout {
    /// The config vars the app has now: its latest release's, or those set before its first.
    pub(crate) async fn current_config(&self, app: AppId) -> Result<BTreeMap<String, String>, StoreError> {
        match self.store.latest_release(app).await? {
            Some(release) => Ok(release.config),
            None => self.store.pending_config(app).await,
        }
    }

    /// Creates the release of `build` for `app` (keeping the previous release's config) and rolls it out;
    /// returns the summary for the person deploying.
    pub(crate) async fn release(
        &self,
        app: &store::App,
        account: &store::Account,
        build: Built,
        what: (ReleaseKind, String),
        log: &mpsc::Sender<String>,
    ) -> Result<String, String> {
        self.release_with_checks(app, account, build, BTreeMap::new(), what, log)
            .await
    }

    /// [`Rollout::release`] of a build whose tree declared `health_checks` (app.json).
    pub(crate) async fn release_with_checks(
        &self,
        app: &store::App,
        account: &store::Account,
        build: Built,
        health_checks: BTreeMap<ProcessType, agent_contract::HealthCheck>,
        (kind, description): (ReleaseKind, String),
        log: &mpsc::Sender<String>,
    ) -> Result<String, String> {
        let made = {
            let mut releasing = self.releasing.lock().await;
            let mut previous = self.store.latest_release(app.id).await.map_err(internal)?;
            if crate::release_phase::has_release_phase(&build.processes) {
                // Before the release exists (see `release_phase`), with the config it will have; without the
                // lock (held by every app's releases) for as long as the command runs.
                let config = self.current_config(app.id).await.map_err(internal)?;
                let version = previous.as_ref().map_or(ReleaseVersion(1), |r| r.version.next());
                drop(releasing);
                let pending = crate::release_phase::Pending {
                    version,
                    image_digest: &build.image_digest,
                    processes: &build.processes,
                    config: &config,
                    previous: previous.as_ref(),
                };
                self.release_phase(app, account.name.as_str(), pending, log)
                    .await?;
                releasing = self.releasing.lock().await;
                let now = self.store.latest_release(app.id).await.map_err(internal)?;
                let now_config = self.current_config(app.id).await.map_err(internal)?;
                if now.as_ref().map(|r| r.id) != previous.as_ref().map(|r| r.id) || now_config != config {
                    let reason = crate::release_phase::changed_during(version);
                    say(log, format!("-----> {reason}")).await;
                    return Err(reason);
                }
                previous = now;
            }
            let _releasing = releasing;
            self.store
                .create_release_with_checks(
                    NewRelease {
                        app: app.id,
                        image_digest: build.image_digest.clone(),
                        processes: build.processes.clone(),
                        config: previous.map(|r| r.config).unwrap_or_default(),
                        description,
                        created_by: account.id,
                    },
                    kind,
                    health_checks,
                )
                .await
                .map_err(internal)?
        };
        self.roll_out(app, made, log).await
    }

    /// Makes a release from the app's latest one (`make` gets it and returns the new release's fields, or
    /// refuses with a message for the person asking), then rolls it out like a deploy.
    pub(crate) async fn release_from_latest(
        &self,
        app: &store::App,
        kind: ReleaseKind,
        make: impl FnOnce(Release) -> NewRelease,
    ) -> Result<RolledOut, LifecycleError> {
        self.release_from_latest_with_checks(app, kind, |latest| {
            let checks = latest.health_checks.clone();
            (make(latest), checks)
        })
        .await
    }

    /// [`Rollout::release_from_latest`] where `make` also says which health checks the new release keeps
    /// (a rollback keeps its target's).
    pub(crate) async fn release_from_latest_with_checks(
        &self,
        app: &store::App,
        kind: ReleaseKind,
        make: impl FnOnce(Release) -> (NewRelease, BTreeMap<ProcessType, agent_contract::HealthCheck>),
    ) -> Result<RolledOut, LifecycleError> {
        let (log, mut lines) = mpsc::channel(16);
        // Nobody streams these lines (the API answers once); drain them so sending never waits.
        tokio::spawn(async move { while lines.recv().await.is_some() {} });
        let made = {
            let mut releasing = self.releasing.lock().await;
            let latest = self
                .store
                .latest_release(app.id)
                .await?
                .ok_or_else(|| LifecycleError::no_release(app))?;
            let (new, checks) = make(latest.clone());
            if crate::release_phase::has_release_phase(&new.processes) {
                // Without the lock while the command runs (as for a push).
                drop(releasing);
                let actor = match self.store.account(new.created_by).await {
                    Ok(Some(account)) => account.name.to_string(),
                    _ => store::Event::BERTH.to_owned(),
                };
                let pending = crate::release_phase::Pending {
                    version: latest.version.next(),
                    image_digest: &new.image_digest,
                    processes: &new.processes,
                    config: &new.config,
                    previous: Some(&latest),
                };
                if let Err(reason) = self.release_phase(app, &actor, pending, &log).await {
                    return Ok(RolledOut {
                        release: None,
                        outcome: Err(reason),
                    });
                }
                releasing = self.releasing.lock().await;
                let now = self.store.latest_release(app.id).await?;
                if now.map(|r| r.id) != Some(latest.id) {
                    return Ok(RolledOut {
                        release: None,
                        outcome: Err(crate::release_phase::changed_during(latest.version.next())),
                    });
                }
            }
            let _releasing = releasing;
            self.store.create_release_with_checks(new, kind, checks).await?
        };
        let version = made.version;
        let outcome = self.roll_out(app, made, &log).await;
        Ok(RolledOut {
            release: Some(version),
            outcome,
        })
    }

    /// Scales web to 1 on the app's first release, tells the controller, and waits until `release` serves;
    /// when it does not, rolls back to the release before it ([`Rollout::roll_back_failed`]).
    pub(crate) async fn roll_out(
        &self,
        app: &store::App,
        release: Release,
        log: &mpsc::Sender<String>,
    ) -> Result<String, String> {
        self.roll_out_then(app, release, log, OnFailure::RollBack).await
    }

    /// [`Rollout::roll_out`], rolling back on failure only when `on_failure` says so (a rollback that fails
    /// stops there).
    pub(crate) async fn roll_out_then(
        &self,
        app: &store::App,
        release: Release,
        log: &mpsc::Sender<String>,
        on_failure: OnFailure,
    ) -> Result<String, String> {
        say(log, format!("-----> Released {}", release.version)).await;
        // Events name who made the release (a push, a config change, a rollback).
        let actor = match self.store.account(release.created_by).await {
            Ok(Some(account)) => account.name.to_string(),
            _ => store::Event::BERTH.to_owned(),
        };
        let actor = actor.as_str();
        let description = format!("Deploying {} ({})", release.version, release.description);
        // A config change or a rollback is its own kind of event (its description names what changed: config
        // var names, never values); anything else is a release being deployed.
        let kind = match release.kind {
            ReleaseKind::Config => EventKind::ConfigChanged,
            ReleaseKind::Rollback => EventKind::Rollback,
            ReleaseKind::Build | ReleaseKind::Rebase | ReleaseKind::Image => EventKind::ReleaseCreated,
        };
        record(&self.store, app.id, kind, &description, actor).await;

        // Like Heroku: the first deploy of an app with a web process scales web to 1.
        let web = ProcessType::web();
        let mut formation = self.store.formation(app.id).await.map_err(internal)?;
        if formation.is_empty() && release.processes.contains_key(&web) {
            let memory = self.config.default_memory_bytes;
            let fits = self
                .quotas
                .check_change(&self.store, app.owner, |usage| store::QuotaUsage {
                    instances: usage.instances + 1,
                    memory_bytes: usage.memory_bytes + memory,
                    ..usage
                })
                .await;
            match fits {
                Ok(()) => {}
                Err(crate::quota::QuotaError::Exceeded(exceeded)) => {
                    self.controller.notify(Event::ReleaseCreated(app.id));
                    return Ok(format!(
                        "{} released; web is not scaled up: {exceeded}",
                        release.version
                    ));
                }
                Err(crate::quota::QuotaError::Store(error)) => return Err(internal(error)),
            }
            self.store
                .set_formation(app.id, &web, 1, self.config.default_memory_bytes)
                .await
                .map_err(internal)?;
            formation = self.store.formation(app.id).await.map_err(internal)?;
        }
        self.controller.notify(Event::ReleaseCreated(app.id));

        if self.store.app_stopped(app.id).await.map_err(internal)? {
            return Ok(format!(
                "{} released; the app is stopped: run `berth apps start {}` to run it",
                release.version, app.name
            ));
        }
        let wanted: u32 = formation
            .iter()
            .filter(|(t, _)| release.processes.contains_key(*t))
            .map(|(_, f)| f.quantity)
            .sum();
        if wanted == 0 {
            return Ok(format!(
                "{} released; nothing is scaled up: run `berth scale web=1 -a {}`",
                release.version, app.name
            ));
        }
        say(
            log,
            format!("-----> Starting {wanted} instance(s) of {}", release.version),
        )
        .await;
        if let Err(reason) = self.wait_for_rollout(&release, wanted).await {
            let description = format!("{} failed: {reason}", release.version);
            record(&self.store, app.id, EventKind::DeployFailed, &description, actor).await;
            return Err(match on_failure {
                OnFailure::RollBack => Box::pin(self.roll_back_failed(app, &release, &reason, log)).await,
                OnFailure::Stop => description,
            });
        }
        let description = format!("{} deployed", release.version);
        record(&self.store, app.id, EventKind::Deployed, &description, actor).await;
        Ok(format!("{} deployed to {}", release.version, self.app_url(app)))
    }

    /// `http://NAME.DOMAIN[:PORT]`
    pub(crate) fn app_url(&self, app: &store::App) -> String {
        let port = if self.config.router_port == 80 {
            String::new()
        } else {
            format!(":{}", self.config.router_port)
        };
        format!("http://{}.{}{port}", app.name, self.config.domain)
    }

    /// Waits until `wanted` instances of `release` run and every other instance of the app is on its way out
    /// (out of the route table), so that the answer means the release serves every request. A crash of a new
    /// instance ends the wait early: the previous release's instances keep serving (the scheduler stops
    /// them only once the new ones run).
    pub(crate) async fn wait_for_rollout(&self, release: &Release, wanted: u32) -> Result<(), String> {
        let timeout = self.deploy_timeout(release.app).await;
        self.wait_until_within(
            |instances| {
                let new: Vec<_> = instances
                    .iter()
                    .filter(|i| i.release == release.id && !i.stop_requested && !i.replace_requested)
                    .collect();
                let running = new
                    .iter()
                    .filter(|i| i.state == InstanceRowState::Running)
                    .count() as u32;
                let others_leaving = instances
                    .iter()
                    .all(|i| i.stop_requested || (i.release == release.id && !i.replace_requested));
                if running >= wanted && others_leaving {
                    return Some(Ok(()));
                }
                if let Some(crashed) = new.iter().find(|i| i.state == InstanceRowState::Crashed) {
                    return Some(Err(crate::auto_rollback::crash_reason(crashed)));
                }
                None
            },
            release.app,
            timeout,
        )
        .await
        .map_err(|()| {
            format!(
                "its instances were not up within the deploy timeout of {} s",
                timeout.as_secs()
            )
        })?
    }

    /// Re-reads the app's instances after every controller pass until `done` says something, or the rollout
    /// timeout passes (`Err(())`).
    pub(crate) async fn wait_until<T>(
        &self,
        done: impl FnMut(&[store::Instance]) -> Option<T>,
        app: AppId,
    ) -> Result<T, ()> {
        self.wait_until_within(done, app, self.config.rollout_timeout)
            .await
    }

    /// [`Rollout::wait_until`] with its own timeout.
    pub(crate) async fn wait_until_within<T>(
        &self,
        mut done: impl FnMut(&[store::Instance]) -> Option<T>,
        app: AppId,
        timeout: Duration,
    ) -> Result<T, ()> {
        let mut passes = self.passes.clone();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let instances = match self.store.instances_of_app(app).await {
                Ok(instances) => instances,
                Err(error) => {
                    tracing::warn!(app = %app, error = %error_chain(&error), "reading instances while waiting");
                    Vec::new()
                }
            };
            if let Some(answer) = done(&instances) {
                // What was read may be the writes of a pass that has not published its route table yet: then
                // the count, read after them, is odd, and that pass's end makes sure routers have what the
                // answer claims (bounded by the same deadline). An even count: it is out already.
                let seen = *passes.borrow_and_update();
                if seen % 2 == 1 {
                    let _ = tokio::time::timeout_at(deadline, passes.wait_for(|n| *n > seen)).await;
                }
                return Ok(answer);
            }
            // Out of time, or the controller is gone (the server is stopping): nothing will change any more.
            if !matches!(
                tokio::time::timeout_at(deadline, passes.changed()).await,
                Ok(Ok(()))
            ) {
                return Err(());
            }
        }
    }
}

/// What a rollout that fails does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnFailure {
    /// Rolls back to the release before it.
    RollBack,
    /// Says why and stops (the rollout of a rollback).
    Stop,
}

/// Records an event; a failure is logged: the deploy goes on either way.
pub(crate) async fn record(
    store: &Store,
    app: vocabulary::AppId,
    kind: EventKind,
    description: &str,
    actor: &str,
) {
    if let Err(error) = store.record_event(app, kind, description, actor).await {
        tracing::error!(%app, kind = kind.as_str(), error = %error_chain(&error), "recording an event");
    }
}

async fn say(log: &mpsc::Sender<String>, line: String) {
    let _ = log.send(line).await;
}

pub(crate) fn internal(error: store::StoreError) -> String {
    tracing::error!(error = %error_chain(&error), "deploy failed on the store");
    "internal error while recording the release; the previous release keeps serving".to_owned()
}
