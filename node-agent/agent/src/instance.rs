//! One instance's supervisor: sets up its layers, directories, cgroup and network, runs the container, probes
//! its port, keeps its output, restarts it with backoff when it exits, and tears everything down on stop.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_contract::{ExitReason, InstanceSpec, InstanceState, InstanceStatus, LastExit, OutputLine};
use container::{BindMount, ContainerSpec, Network, Output};
use nix::sys::signal::Signal;
use tokio::io::AsyncRead;
use tokio::sync::watch;

use crate::{disk, layers, output, AgentError, Event, Shared};
use cgroups::Cgroup;
use netns::{Attachment, EtcFiles};

const PROBE_INTERVAL: Duration = Duration::from_millis(100);
/// How long one readiness request may wait for an answer before it is sent again (a connection that landed on
/// a process about to exit is not waited on forever).
const READINESS_PATIENCE: Duration = Duration::from_secs(10);
/// How often a running instance's OOM-kill count is read.
const OOM_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// An instance up this long has its backoff reset.
const STABLE_AFTER: Duration = Duration::from_secs(60);

/// 1 s, 2 s, 4 s, ... capped at 30 s.
pub fn backoff(step: u32) -> Duration {
    Duration::from_secs(1u64 << step.min(5)).min(Duration::from_secs(30))
}

/// What an instance holds on the host, acquired step by step and released by [`Resources::release`].
#[derive(Default)]
struct Resources {
    layers: Option<(Vec<PathBuf>, image_store::ImageConfig, image_store::ImageExtras)>,
    dir: Option<PathBuf>,
    cgroup: Option<Cgroup>,
    net: Option<Attachment>,
    /// The instance's `/etc/resolv.conf` and `/etc/hosts`, bound read-only.
    etc: Option<EtcFiles>,
}

/// The instance's argv: the image's `ENTRYPOINT` + `CMD` as they are (exec form, no shell needed in the
/// image) when the release's command is exactly that command (a Dockerfile or image deploy without a
/// Procfile entry, see [`image_store::shell_command`]), else `/bin/sh -c COMMAND`.
fn argv(command: &str, entrypoint: &[String], cmd: &[String]) -> Vec<String> {
    let image: Vec<String> = entrypoint.iter().chain(cmd).cloned().collect();
    if image_store::shell_command(&image).as_deref() == Some(command) {
        image
    } else {
        vec!["/bin/sh".into(), "-c".into(), command.into()]
    }
}

/// A health check under way: the last attempt's error once every attempt failed.
type Checking = std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

enum RunEnd {
    Stopped,
    Exited {
        code: Option<i32>,
        reason: ExitReason,
        ran_for: Duration,
    },
}

/// How a container's run ended, as the agent saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Ending {
    /// The init's exit code (the app's, `128 + N` for a signal inside, 125 for a failed setup).
    pub(crate) code: Option<i32>,
    /// The signal that killed the init itself.
    pub(crate) signal: Option<i32>,
    /// Whether the cgroup's OOM-kill count rose during the run.
    pub(crate) oom_killed: bool,
    /// The init's `container setup failed: ...` message, if it printed one.
    pub(crate) setup_error: Option<String>,
}

fn signal_name(number: i32) -> String {
    Signal::try_from(number)
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|_| format!("signal {number}"))
}

/// Why a run ended. An OOM kill wins over the signal or code it caused (the init reports a killed app as
/// `128 + 9`, and an app can die of a killed child in many ways).
pub(crate) fn exit_reason(end: &Ending) -> ExitReason {
    if end.oom_killed {
        return ExitReason::OutOfMemory;
    }
    if let Some(signal) = end.signal {
        return ExitReason::Signaled {
            signal: signal_name(signal),
        };
    }
    match end.code {
        Some(container::SETUP_FAILED_EXIT_CODE) => ExitReason::FailedToStart {
            error: end
                .setup_error
                .clone()
                .unwrap_or_else(|| "container setup failed".into()),
        },
        // What the init reports for an app killed by signal N (a shell's convention).
        Some(code @ 129..=192) => ExitReason::Signaled {
            signal: signal_name(code - 128),
        },
        Some(code) => ExitReason::Exited { code },
        None => ExitReason::Signaled {
            signal: "an unknown signal".into(),
        },
    }
}

/// An error and its sources, `a: b: c`, for a report (the agent's errors carry no secrets).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The message of the last `container setup failed: ...` line of an instance's output.
fn setup_error_in(log: &str) -> Option<String> {
    const PREFIX: &str = "container setup failed: ";
    log.lines()
        .rev()
        .find_map(|l| l.find(PREFIX).map(|at| l[at + PREFIX.len()..].trim().to_owned()))
}

pub(crate) struct Supervisor {
    shared: Arc<Shared>,
    pub(crate) spec: InstanceSpec,
    pub(crate) short: String,
    res: Resources,
    last_exit: Option<LastExit>,
    grace: watch::Receiver<Option<u32>>,
}

/// What the agent loop can tell a running supervisor.
pub struct Control {
    /// Becomes true when the instance is to stop.
    pub stop: watch::Receiver<bool>,
    /// The current stop grace in seconds (`None`: the agent's default).
    pub grace: watch::Receiver<Option<u32>>,
}

pub async fn supervise(shared: Arc<Shared>, spec: InstanceSpec, control: Control) {
    let Control { mut stop, grace } = control;
    let short = spec.id.short();
    let mut sup = Supervisor {
        shared,
        spec,
        short,
        res: Resources::default(),
        last_exit: None,
        grace,
    };
    sup.report(InstanceState::Starting);
    let (mut restarts, mut step) = (0u32, 0u32);
    loop {
        let (code, reason, ran_for) = match sup.run_once(&mut stop).await {
            Ok(RunEnd::Stopped) => break,
            Ok(RunEnd::Exited {
                code,
                reason,
                ran_for,
            }) => (code, reason, ran_for),
            Err(e) => {
                let error = error_chain(&e);
                tracing::warn!(app = %sup.spec.app, instance = %sup.short, error, "instance failed to start");
                (None, ExitReason::FailedToStart { error }, Duration::ZERO)
            }
        };
        if *stop.borrow() {
            break;
        }
        if ran_for >= STABLE_AFTER {
            step = 0;
        }
        let delay = backoff(step);
        step += 1;
        restarts += 1;
        tracing::info!(app = %sup.spec.app, instance = %sup.short, exit_code = ?code, reason = %reason, restarts, delay_ms = delay.as_millis() as u64, "instance crashed");
        sup.platform_line(crash_line(&reason, sup.spec.limits.memory_bytes, delay));
        sup.last_exit = Some(LastExit {
            reason: reason.clone(),
            at: chrono::Utc::now(),
        });
        sup.report(InstanceState::Crashed {
            exit_code: code,
            restarts,
            reason: Some(reason),
        });
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => break,
        }
    }
    sup.report(InstanceState::Stopping);
    sup.platform_line("Stopping".into());
    sup.release().await;
    let _ = sup.shared.events.send(Event::Gone(sup.spec.id));
}

impl Supervisor {
    /// A supervisor for a one-off run: never restarted, its grace the spec's.
    pub(crate) fn one_off(shared: Arc<Shared>, spec: InstanceSpec) -> Self {
        let (_, grace) = watch::channel(spec.stop_grace_secs);
        Self {
            short: spec.id.short(),
            shared,
            spec,
            res: Resources::default(),
            last_exit: None,
            grace,
        }
    }

    pub(crate) fn init_program(&self) -> PathBuf {
        self.shared.cfg.init_program.clone()
    }

    /// The instance's cgroup's OOM-kill count, and a way to kill everything in it.
    pub(crate) fn cgroup(&self) -> Option<&Cgroup> {
        self.res.cgroup.as_ref()
    }

    pub(crate) fn forwarder(&self) -> output::Forwarder {
        output::Forwarder::new(
            self.shared.cfg.output.clone(),
            self.spec.app_id,
            self.spec.dyno_name(),
        )
    }

    /// A line about this instance in the app's log (`berth[web.1]: ...`).
    pub(crate) fn platform_line(&self, text: String) {
        self.forwarder().send(OutputLine::Platform(text));
    }

    fn report(&self, state: InstanceState) {
        let address = self
            .res
            .net
            .as_ref()
            .map(|n| SocketAddr::new(n.address.into(), self.spec.port));
        let status = InstanceStatus {
            id: self.spec.id,
            state,
            address,
            hostname: self.short.clone(),
            last_exit: self.last_exit.clone(),
            oom_kills: self.res.cgroup.as_ref().map_or(0, |c| c.oom_kills()),
        };
        let _ = self.shared.events.send(Event::Status(status));
    }

    pub(crate) async fn prepare(&mut self) -> Result<(), AgentError> {
        let cfg = &self.shared.cfg;
        if self.res.layers.is_none() {
            let _one_at_a_time = self.shared.unpack_lock.lock().await;
            let store = cfg.image_store.clone();
            let digest = self.spec.image.manifest_digest.clone();
            let layers_dir = cfg.data_dir.join("layers");
            let prepared = tokio::task::spawn_blocking(move || {
                let image = store.read_image(&digest).map_err(|source| AgentError::Image {
                    digest: digest.clone(),
                    source,
                })?;
                let extras = store
                    .read_image_extras(&digest)
                    .map_err(|source| AgentError::Image {
                        digest: digest.clone(),
                        source,
                    })?;
                let dirs = layers::ensure(&store, &layers_dir, &image.layers)?;
                Ok::<_, AgentError>((dirs, image.config, extras))
            })
            .await
            .map_err(|e| AgentError::Task(e.to_string()))??;
            self.res.layers = Some(prepared);
        }
        let dir = cfg.data_dir.join("instances").join(&self.short);
        self.res.dir = Some(dir.clone());
        // A fresh writable layer on every start, like a new dyno, on a fresh size-limited tmpfs.
        let disk_dir = dir.join("disk");
        let bytes = self.spec.limits.disk_bytes;
        tokio::task::spawn_blocking(move || disk::mount_fresh(&disk_dir, bytes))
            .await
            .map_err(|e| AgentError::Task(e.to_string()))??;
        for sub in ["disk/upper", "disk/work", "rootfs"] {
            let path = dir.join(sub);
            tokio::fs::create_dir_all(&path)
                .await
                .map_err(|source| AgentError::Io { path, source })?;
        }
        if self.res.cgroup.is_none() {
            let limits = &self.spec.limits;
            self.res.cgroup = Some(Cgroup::create(
                &account_cgroup(&cfg.cgroup_parent, self.spec.account),
                &self.short,
                &cgroups::Limits {
                    memory_bytes: limits.memory_bytes,
                    cpu_millicores: limits.cpu_millicores,
                    pids_max: limits.pids_max,
                    io_weight: limits.io_weight,
                },
            )?);
            let account = account_cgroup(&cfg.cgroup_parent, self.spec.account);
            let cap = account_cpu_cap(available_cpus(), limits.cpu_millicores);
            if let Err(e) = cgroups::cap_cpu(&account, cap) {
                tracing::warn!(app = %self.spec.app, instance = %self.short, error = %e, "capping the account's CPU");
            }
        }
        if self.res.net.is_none() {
            let netns = format!("{}{}", cfg.netns_prefix, self.short);
            let veth = format!("bv{}", &self.spec.id.as_uuid().simple().to_string()[..10]);
            self.res.net = Some(self.shared.network.attach(&netns, &veth).await?);
        }
        let net = self.res.net.as_ref().expect("attached");
        self.res.etc = Some(net.write_etc_files(&dir, &self.short)?);
        Ok(())
    }

    pub(crate) fn container_spec(&self) -> ContainerSpec {
        let (layers, config, extras) = self.res.layers.as_ref().expect("prepared");
        let dir = self.res.dir.as_ref().expect("prepared");
        let mut env: BTreeMap<String, String> = config.env.clone();
        env.extend(self.spec.env.clone());
        env.entry("PORT".into())
            .or_insert_with(|| self.spec.port.to_string());
        let cwd = if config.working_dir.is_empty() {
            "/".into()
        } else {
            PathBuf::from(&config.working_dir)
        };
        ContainerSpec {
            hostname: self.short.clone(),
            layers: layers.clone(),
            upper_dir: dir.join("disk/upper"),
            work_dir: dir.join("disk/work"),
            rootfs: dir.join("rootfs"),
            binds: self.etc_binds(),
            network: Network::Join(self.res.net.as_ref().expect("prepared").netns_path()),
            cwd,
            env,
            argv: argv(&self.spec.command, &extras.entrypoint, &config.cmd),
            cgroup_dirs: self.res.cgroup.as_ref().expect("prepared").dirs(),
            security: container::Security {
                user: (!extras.user.is_empty()).then(|| extras.user.clone()),
                ..Default::default()
            },
            user_namespace: self.spec.id_range.map(Into::into),
        }
    }

    fn etc_binds(&self) -> Vec<BindMount> {
        let etc = self.res.etc.as_ref().expect("prepared");
        [(&etc.resolv_conf, "/etc/resolv.conf"), (&etc.hosts, "/etc/hosts")]
            .into_iter()
            .map(|(source, target)| BindMount {
                source: source.clone(),
                target: target.into(),
                read_only: true,
            })
            .collect()
    }

    async fn run_once(&mut self, stop: &mut watch::Receiver<bool>) -> Result<RunEnd, AgentError> {
        self.prepare().await?;
        let spec = self.container_spec();
        let log_path = self.res.dir.as_ref().expect("prepared").join("output.log");
        let oom_kills_before = self.res.cgroup.as_ref().map_or(0, |c| c.oom_kills());
        self.platform_line(format!("Starting process with command `{}`", self.spec.command));
        let mut c = container::spawn(&self.shared.cfg.init_program, &spec, Output::Piped).await?;
        let started = Instant::now();
        self.report(InstanceState::Starting);
        let mut pumps = Vec::new();
        for (stream, reader) in [
            (
                "stdout",
                c.child
                    .stdout
                    .take()
                    .map(|r| Box::new(r) as Box<dyn AsyncRead + Send + Unpin>),
            ),
            (
                "stderr",
                c.child
                    .stderr
                    .take()
                    .map(|r| Box::new(r) as Box<dyn AsyncRead + Send + Unpin>),
            ),
        ] {
            if let Some(reader) = reader {
                pumps.push(tokio::spawn(output::pump(
                    reader,
                    log_path.clone(),
                    stream,
                    self.forwarder(),
                )));
            }
        }
        let target = SocketAddr::new(
            self.res.net.as_ref().expect("prepared").address.into(),
            self.spec.port,
        );
        // Only `web` instances bind a port (Heroku): any other process type is up once started.
        let mut listening = !self.spec.process_type.is_web();
        let mut running = false;
        if listening {
            running = true;
            self.platform_line("Up".into());
            self.report(InstanceState::Running);
        }
        let boot_secs = self
            .spec
            .boot_timeout_secs
            .unwrap_or(agent_contract::DEFAULT_BOOT_TIMEOUT_SECS);
        let boot = tokio::time::sleep(Duration::from_secs(boot_secs.into()));
        tokio::pin!(boot);
        let mut checking: Option<Checking> = None;
        let declared_check = self.spec.health_check.is_some();
        // Why the agent ended the run itself (R10, a failed health check), if it did.
        let mut failure: Option<ExitReason> = None;
        let mut probe = tokio::time::interval(PROBE_INTERVAL);
        let mut oom_check = tokio::time::interval(OOM_CHECK_INTERVAL);
        let mut oom_kills = oom_kills_before;
        let end = loop {
            tokio::select! {
                _ = oom_check.tick() => {
                    // An OOM kill the instance survives (a worker, not its main process) is reported at once;
                    // one that ends it is reported with its exit.
                    let now = self.res.cgroup.as_ref().map_or(0, |c| c.oom_kills());
                    if now > oom_kills {
                        oom_kills = now;
                        tracing::warn!(app = %self.spec.app, instance = %self.short, oom_kills = now, "out of memory: the OOM killer killed a process of the instance");
                        self.report(if running { InstanceState::Running } else { InstanceState::Starting });
                    }
                }
                status = c.wait() => {
                    break Some((status?, started.elapsed()));
                }
                _ = probe.tick(), if !listening => {
                    let connect = tokio::net::TcpStream::connect(target);
                    if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(500), connect).await {
                        listening = true;
                        tracing::info!(app = %self.spec.app, instance = %self.short, %target, "instance accepts connections");
                        match self.spec.health_check.clone() {
                            Some(check) => {
                                self.platform_line(format!(
                                    "Accepting connections on port {}; checking GET {}", self.spec.port, check.path
                                ));
                                checking = Some(Box::pin(self.health_check(check, target)));
                            }
                            // Up once a process of it takes a request (see `health::answers`).
                            None => checking = Some(Box::pin(self.readiness(target))),
                        }
                    }
                }
                // A declared health check has its own attempts; otherwise the boot timeout bounds both listening
                // and answering.
                _ = &mut boot, if !(running || (listening && declared_check)) => {
                    tracing::warn!(app = %self.spec.app, instance = %self.short, boot_secs, listening, "boot timeout (R10)");
                    let dyno = self.spec.dyno_name();
                    let port = self.spec.port;
                    let what = if listening {
                        format!("accepted connections on PORT {port} but did not answer a request")
                    } else {
                        format!("did not listen on PORT {port}")
                    };
                    self.platform_line(format!("Error R10 (Boot timeout): {dyno} {what} within {boot_secs} s, stopping it"));
                    failure = Some(ExitReason::BootTimeout { secs: boot_secs });
                    self.stop_container(&mut c).await;
                    break Some((c.wait().await?, started.elapsed()));
                }
                result = async { checking.as_mut().expect("checking").await }, if checking.is_some() => {
                    checking = None;
                    match result {
                        Ok(()) => {
                            running = true;
                            if declared_check {
                                tracing::info!(app = %self.spec.app, instance = %self.short, "health check passed");
                                self.platform_line("Up: health check passed".into());
                            } else {
                                tracing::info!(app = %self.spec.app, instance = %self.short, %target, "instance answers");
                                self.platform_line(format!("Up: answering on port {}", self.spec.port));
                            }
                            self.report(InstanceState::Running);
                        }
                        Err(error) => {
                            let path = self.spec.health_check.as_ref().map(|h| h.path.clone()).unwrap_or_default();
                            tracing::warn!(app = %self.spec.app, instance = %self.short, path, error, "health check failed");
                            self.platform_line(format!("Health check GET {path} failed, stopping it"));
                            failure = Some(ExitReason::HealthCheckFailed { path, error });
                            self.stop_container(&mut c).await;
                            break Some((c.wait().await?, started.elapsed()));
                        }
                    }
                }
                _ = stop.changed() => {
                    self.stop_container(&mut c).await;
                    break None;
                }
            }
        };
        drop(checking);
        // The init killed everything in its PID namespace when it exited; this covers a killed init.
        if let Some(cgroup) = &self.res.cgroup {
            cgroup.kill_all();
        }
        for p in pumps {
            let _ = p.await;
        }
        let Some((status, ran_for)) = end else {
            return Ok(RunEnd::Stopped);
        };
        if let Some(reason) = failure {
            return Ok(RunEnd::Exited {
                code: status.code(),
                reason,
                ran_for,
            });
        }
        let code = status.code();
        let setup_error = if code == Some(container::SETUP_FAILED_EXIT_CODE) {
            let log = tokio::fs::read(&log_path).await.unwrap_or_default();
            setup_error_in(&String::from_utf8_lossy(&log))
        } else {
            None
        };
        let ending = Ending {
            code,
            signal: std::os::unix::process::ExitStatusExt::signal(&status),
            oom_killed: self.res.cgroup.as_ref().map_or(0, |c| c.oom_kills()) > oom_kills_before,
            setup_error,
        };
        Ok(RunEnd::Exited {
            code,
            reason: exit_reason(&ending),
            ran_for,
        })
    }

    /// The instance's health check: each failed attempt is a line in the app's log.
    fn health_check(
        &self,
        check: agent_contract::HealthCheck,
        target: SocketAddr,
    ) -> impl Future<Output = Result<(), String>> + Send + 'static {
        let mut forwarder = self.forwarder();
        let host = self.spec.app.to_string();
        async move {
            let attempts = check.attempts.max(1);
            crate::health::run(&check, target, &host, |attempt, error| {
                forwarder.send(OutputLine::Platform(format!(
                    "health check GET {} failed: {error} (attempt {attempt} of {attempts})",
                    check.path
                )));
            })
            .await
        }
    }

    /// Waits until the instance takes a request (any answer); never fails: the boot timeout bounds it.
    fn readiness(&self, target: SocketAddr) -> impl Future<Output = Result<(), String>> + Send + 'static {
        let host = self.spec.app.to_string();
        async move {
            crate::health::answers(target, &host, READINESS_PATIENCE, PROBE_INTERVAL).await;
            Ok(())
        }
    }

    /// SIGTERM, then SIGKILL after the grace period (the spec's, else the agent's).
    async fn stop_container(&self, c: &mut container::Container) {
        let grace = self
            .grace
            .borrow()
            .map_or(self.shared.cfg.stop_grace, |s| Duration::from_secs(s.into()));
        self.platform_line("Stopping all processes with SIGTERM".into());
        let _ = c.signal(Signal::SIGTERM);
        let status = match tokio::time::timeout(grace, c.wait()).await {
            Ok(status) => status,
            Err(_) => {
                tracing::info!(app = %self.spec.app, instance = %self.short, grace_secs = grace.as_secs(), "grace period over, killing");
                self.platform_line(exit_timeout_line(grace));
                let _ = c.signal(Signal::SIGKILL);
                if let Some(cgroup) = &self.res.cgroup {
                    cgroup.kill_all();
                }
                c.wait().await
            }
        };
        if let Ok(status) = status {
            self.platform_line(stopped_line(status));
        }
    }

    pub(crate) async fn release(&mut self) {
        let fields = (self.spec.app.to_string(), self.short.clone());
        if let Some(cgroup) = self.res.cgroup.take() {
            if let Err(e) = cgroup.remove().await {
                tracing::error!(app = %fields.0, instance = %fields.1, error = %e, "removing cgroup");
            }
            // The account's cgroup goes with its last instance on this node.
            cgroups::remove_if_empty(&account_cgroup(&self.shared.cfg.cgroup_parent, self.spec.account));
        }
        if let Some(n) = self.res.net.take() {
            if let Err(e) = n.remove().await {
                tracing::error!(app = %fields.0, instance = %fields.1, error = %e, "removing network");
            }
        }
        if let Some(dir) = self.res.dir.take() {
            // Never delete through a mount: if the disk cannot be unmounted, leave the directory.
            if let Err(e) = disk::unmount(&dir.join("disk")) {
                tracing::error!(app = %fields.0, instance = %fields.1, error = %e, "unmounting the instance's disk");
                return;
            }
            if let Err(e) = tokio::fs::remove_dir_all(&dir).await {
                tracing::error!(app = %fields.0, instance = %fields.1, error = %e, "removing instance directory");
            }
        }
    }
}

/// The cgroup that holds one account's instances on this node, below the agent's parent. Accounts are siblings
/// with equal CPU weight, so a tenant with many busy instances gets no more CPU under contention than a tenant
/// with one (each instance is also capped by its own quota); an instance's cgroup is `ACCOUNT_CGROUP/SHORT_ID`.
pub(crate) fn account_cgroup(parent: &str, account: vocabulary::AccountId) -> String {
    format!("{parent}/account-{}", account.as_uuid().simple())
}

/// The CPUs this process may run on (the node's, unless the agent is confined).
fn available_cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

/// What all of one account's instances on a node may use together, in millicores: every CPU but one, so that
/// however busy a tenant's instances are, a core's worth of time is left for the router, the agent and the
/// other tenants (whose share of the rest the equal account weights keep fair); never below one core, nor
/// below a single instance's own quota (on cgroup v1 a parent's cap may not be lower than a child's).
fn account_cpu_cap(cpus: u32, instance_millicores: u32) -> u32 {
    (cpus.saturating_sub(1) * 1000).max(1000).max(instance_millicores)
}

/// The line an instance's crash writes to its app's log, Heroku style: what ended it and when it restarts. A
/// failure to start names no host paths (its error does); `berth ps` shows the reason.
/// Heroku's R12: the app ignored SIGTERM for the whole grace period.
fn exit_timeout_line(grace: Duration) -> String {
    format!(
        "Error R12 (Exit timeout): the process did not exit within {} s of SIGTERM, stopping it with SIGKILL",
        grace.as_secs()
    )
}

/// How a stopped instance's process ended (the init passes on the app's exit status).
fn stopped_line(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("Process exited with status {code}"),
        (None, Some(signal)) => match Signal::try_from(signal) {
            Ok(signal) => format!("Process killed by {signal}"),
            Err(_) => format!("Process killed by signal {signal}"),
        },
        (None, None) => "Process ended".to_owned(),
    }
}

fn crash_line(reason: &ExitReason, memory_bytes: u64, delay: Duration) -> String {
    let restart = format!("restarting in {} s", delay.as_secs());
    match reason {
        ExitReason::Exited { code } => format!("Process exited with status {code}, {restart}"),
        ExitReason::Signaled { signal } => format!("Process killed by {signal}, {restart}"),
        ExitReason::OutOfMemory => format!(
            "Error R14 (Memory quota exceeded): process killed at its memory limit of {} MiB, {restart}",
            memory_bytes >> 20
        ),
        ExitReason::FailedToStart { .. } => format!("Process failed to start, {restart}"),
        ExitReason::BootTimeout { .. } => format!("Process stopped at its boot timeout, {restart}"),
        ExitReason::HealthCheckFailed { .. } => {
            format!("Process stopped after failing its health check, {restart}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_may_use_every_cpu_but_one() {
        let cases = [
            (1, 1000, 1000),
            (2, 1000, 1000),
            (4, 1000, 3000),
            (32, 500, 31_000),
            (2, 2000, 2000),
        ];
        for (cpus, instance, want) in cases {
            assert_eq!(
                account_cpu_cap(cpus, instance),
                want,
                "{cpus} CPUs, instance {instance}m"
            );
        }
    }

    #[test]
    fn crash_lines_say_why_in_heroku_words() {
        let delay = Duration::from_secs(4);
        let cases = [
            (ExitReason::Exited { code: 3 }, "Process exited with status 3, restarting in 4 s"),
            (
                ExitReason::OutOfMemory,
                "Error R14 (Memory quota exceeded): process killed at its memory limit of 256 MiB, restarting in 4 s",
            ),
            (ExitReason::Signaled { signal: "SIGKILL".into() }, "Process killed by SIGKILL, restarting in 4 s"),
            (
                ExitReason::FailedToStart { error: "/data/layers/x: missing".into() },
                "Process failed to start, restarting in 4 s",
            ),
        ];
        for (reason, want) in cases {
            assert_eq!(crash_line(&reason, 256 << 20, delay), want);
        }
    }

    #[test]
    fn stop_lines_say_how_the_process_ended() {
        use std::os::unix::process::ExitStatusExt;
        let cases = [
            (0, "Process exited with status 0"),
            (143 << 8, "Process exited with status 143"),
            (9, "Process killed by SIGKILL"),
            (15, "Process killed by SIGTERM"),
        ];
        for (raw, want) in cases {
            assert_eq!(
                stopped_line(std::process::ExitStatus::from_raw(raw)),
                want,
                "{raw}"
            );
        }
        assert_eq!(
            exit_timeout_line(Duration::from_secs(2)),
            "Error R12 (Exit timeout): the process did not exit within 2 s of SIGTERM, stopping it with SIGKILL"
        );
    }

    #[test]
    fn exit_reasons() {
        let end = |code: Option<i32>, signal: Option<i32>, oom_killed: bool| Ending {
            code,
            signal,
            oom_killed,
            setup_error: None,
        };
        let cases: &[(Ending, &str)] = &[
            (end(Some(3), None, false), "exited with code 3"),
            (end(Some(0), None, false), "exited with code 0"),
            (end(Some(127), None, false), "exited with code 127"),
            (end(Some(128 + 9), None, false), "killed by SIGKILL"),
            (end(Some(128 + 15), None, false), "killed by SIGTERM"),
            (end(Some(128 + 11), None, false), "killed by SIGSEGV"),
            (end(None, Some(9), false), "killed by SIGKILL"),
            // The OOM kill is the cause, whatever the code or signal it led to.
            (end(Some(128 + 9), None, true), "out of memory"),
            (end(Some(1), None, true), "out of memory"),
            (end(None, Some(9), true), "out of memory"),
            (
                end(Some(125), None, false),
                "failed to start: container setup failed",
            ),
            (
                Ending {
                    setup_error: Some("changing to working directory /x".into()),
                    ..end(Some(125), None, false)
                },
                "failed to start: changing to working directory /x",
            ),
        ];
        for (ending, want) in cases {
            assert_eq!(exit_reason(ending).to_string(), *want, "{ending:?}");
        }
        assert_eq!(
            setup_error_in("hello\ncontainer setup failed: mounting /proc: EPERM\n").as_deref(),
            Some("mounting /proc: EPERM")
        );
        assert_eq!(setup_error_in("hello\n"), None);
    }

    #[test]
    fn backoff_doubles_up_to_30s() {
        let got: Vec<u64> = (0..8).map(|s| super::backoff(s).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 30, 30, 30]);
    }

    #[test]
    fn the_image_command_runs_as_is() {
        let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        let sh = |c: &str| s(&["/bin/sh", "-c", c]);
        type Case = (
            &'static str,
            &'static [&'static str],
            &'static [&'static str],
            Vec<String>,
        );
        let cases: &[Case] = &[
            // An exec-form ENTRYPOINT + CMD: as they are.
            (
                "exec httpd -f -p 80",
                &["httpd", "-f"],
                &["-p", "80"],
                s(&["httpd", "-f", "-p", "80"]),
            ),
            (
                "exec python3 'a b.py'",
                &[],
                &["python3", "a b.py"],
                s(&["python3", "a b.py"]),
            ),
            // A shell form is the same either way.
            (
                "python3 app.py $PORT",
                &[],
                &["/bin/sh", "-c", "python3 app.py $PORT"],
                sh("python3 app.py $PORT"),
            ),
            // A Procfile command (another process type, or the buildpacks' images) runs in a shell.
            ("exec worker", &["httpd"], &[], sh("exec worker")),
            ("gunicorn app:app", &[], &[], sh("gunicorn app:app")),
        ];
        for (command, entrypoint, cmd, want) in cases {
            assert_eq!(&argv(command, &s(entrypoint), &s(cmd)), want, "{command}");
        }
    }
}
