//! The sandbox one build runs in, shared by the buildpack and Dockerfile builders: a cgroup of its own with
//! memory (no swap), CPU and pids limits that every build container of the build joins, the network its
//! containers use, and a time limit over the whole build.
//!
//! The builder creates one [`BuildSandbox`] per build and removes it at the end, on every path; dropping it
//! (a cancelled build) kills and removes the cgroup too. Steps record [`BuildSandbox::oom_kills`] before they
//! start and ask [`BuildSandbox::out_of_memory`] when they fail, so that an OOM kill is reported as one (read
//! from the cgroup, never guessed from an exit status). [`BuildSandbox::within`] enforces the time limit.
//! The messages ([`LimitExceeded`]) say what happened and what to do next. It runs no process itself.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cgroups::{Cgroup, CgroupError};
use container::Network;
use netns::{Attachment, EtcFiles, NetError, NodeNetwork};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long a build may take unless its app says otherwise.
pub const DEFAULT_BUILD_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The longest time limit an app may set (the API's bound); the builders' per-step caps default to it, so
/// that the build's own limit is what stops a slow build.
pub const MAX_BUILD_TIMEOUT: Duration = Duration::from_secs(2 * 60 * 60);

/// What one build may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildLimits {
    /// Memory without swap for all of the build's processes together.
    pub memory_bytes: u64,
    /// Thousandths of a core.
    pub cpu_millicores: u32,
    /// Processes and threads together.
    pub pids_max: u32,
}

impl Default for BuildLimits {
    /// 2 GiB, two cores' worth of CPU time, 4096 processes.
    fn default() -> Self {
        Self {
            memory_bytes: 2 << 30,
            cpu_millicores: 2000,
            pids_max: 4096,
        }
    }
}

/// The operator's settings for build sandboxes.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Parent of every build's cgroup, created when missing.
    pub cgroup_parent: String,
    pub limits: BuildLimits,
    /// The node network a build's own network namespace joins (NAT egress and DNS; no route to the node's
    /// ports, instances or other builds). `None` runs build steps on the host's network: only for tests of
    /// the builders that run without a node.
    pub network: Option<NodeNetwork>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            cgroup_parent: "berth-builds".to_owned(),
            limits: BuildLimits::default(),
            network: None,
        }
    }
}

/// Setting up or removing a build's sandbox failed.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error("the build's network")]
    Network(#[from] NetError),
    #[error("writing the build's resolv.conf and hosts")]
    EtcFiles(#[source] std::io::Error),
}

/// A build stopped by one of its sandbox's limits; shown to the person pushing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    #[error(
        "out of memory (limit {limit}) while running `{step}`; make the step use less memory (fewer \
         parallel jobs, smaller dependencies) or ask the operator for a higher build memory limit"
    )]
    Memory { step: String, limit: String },
    #[error(
        "the build took longer than its time limit of {limit}; make it faster or raise the limit with \
         `berth apps update {app} --build-timeout 30m` (at most 2 h)"
    )]
    Time { app: String, limit: String },
    /// The image store's `ImageOverLimit` message: the image is larger than
    /// the operator's limit (`berth server --max-image-size`).
    #[error("{0}")]
    ImageSize(String),
}

/// A builder's error type, as far as the sandbox is concerned.
pub trait BuildFailure: From<LimitExceeded> {
    /// The limit that stopped the build, if one did.
    fn limit(&self) -> Option<&LimitExceeded>;
    /// Setting up or removing the sandbox failed.
    fn sandbox(error: SandboxError) -> Self;
}

/// One build's sandbox. See the crate docs.
#[derive(Debug)]
pub struct BuildSandbox {
    app: String,
    cgroup: Option<Cgroup>,
    network: Network,
    /// The build's own network namespace on the node's bridge, when the config has a node network.
    attachment: Option<Attachment>,
    /// The `resolv.conf` and `hosts` bound into build containers that use `attachment`.
    etc: Option<(tempfile::TempDir, EtcFiles)>,
    limits: BuildLimits,
    timeout: Duration,
    deadline: Instant,
}

impl BuildSandbox {
    /// Creates the build's cgroup (`PARENT/build-APP-RANDOM`) with `config.limits` and, when the config has a
    /// node network, the build's own network namespace on it; the time limit runs from now.
    ///
    /// Without root there is no cgroup (and no build container can start either: only the checks that come
    /// before the first step run, as in the builders' unprivileged tests).
    pub async fn create(config: &SandboxConfig, app: &str, timeout: Duration) -> Result<Self, SandboxError> {
        let mut sandbox = Self::create_cgroup(config, app, timeout)?;
        if let Some(network) = &config.network {
            // Stored at once, so that a failure below still removes the namespace (on drop or `remove`).
            let attachment = sandbox.attachment.insert(network.sandbox().await?);
            sandbox.network = Network::Join(attachment.netns_path());
            let dir = tempfile::Builder::new()
                .prefix("berth-build-etc-")
                .tempdir()
                .map_err(SandboxError::EtcFiles)?;
            let files = attachment.write_etc_files(dir.path(), "build")?;
            sandbox.etc = Some((dir, files));
        }
        Ok(sandbox)
    }

    fn create_cgroup(config: &SandboxConfig, app: &str, timeout: Duration) -> Result<Self, CgroupError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("build-{app}-{}", &id[..12]);
        let limits = config.limits;
        let cgroup = if cgroups::available() {
            let cgroup = Cgroup::create(
                &config.cgroup_parent,
                &name,
                &cgroups::Limits {
                    memory_bytes: limits.memory_bytes,
                    cpu_millicores: limits.cpu_millicores,
                    pids_max: limits.pids_max,
                    // The kernel's default share, the same as instances'.
                    io_weight: None,
                },
            )?;
            tracing::debug!(cgroup = cgroup.path(), "build sandbox created");
            Some(cgroup)
        } else {
            tracing::warn!("not root: the build runs without a cgroup");
            None
        };
        Ok(Self {
            app: app.to_owned(),
            cgroup,
            network: Network::Host,
            attachment: None,
            etc: None,
            limits,
            timeout,
            deadline: Instant::now() + timeout,
        })
    }

    /// The `ContainerSpec::cgroup_dirs` of every build container of this build.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        self.cgroup.as_ref().map(Cgroup::dirs).unwrap_or_default()
    }

    /// The `ContainerSpec::network` of every build container of this build.
    pub fn network(&self) -> Network {
        self.network.clone()
    }

    /// The `/etc/resolv.conf` to bind into build containers: the build network's, or the host's when the
    /// build runs on the host's network (`None` if the host has none).
    pub fn resolv_conf(&self) -> Option<&Path> {
        match &self.etc {
            Some((_, files)) => Some(&files.resolv_conf),
            None => Some(Path::new("/etc/resolv.conf")).filter(|p| p.exists()),
        }
    }

    pub fn limits(&self) -> &BuildLimits {
        &self.limits
    }

    /// When the build's time is up.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// How often the OOM killer has struck in the build so far; a step compares it before and after.
    pub fn oom_kills(&self) -> u64 {
        self.cgroup.as_ref().map_or(0, Cgroup::oom_kills)
    }

    /// `Some` when the OOM killer struck since `before` ([`BuildSandbox::oom_kills`] when `step` started).
    pub fn out_of_memory(&self, step: &str, before: u64) -> Option<LimitExceeded> {
        (self.oom_kills() > before).then(|| LimitExceeded::Memory {
            step: step.to_owned(),
            limit: format_bytes(self.limits.memory_bytes),
        })
    }

    /// The time-limit error of this build.
    pub fn timed_out(&self) -> LimitExceeded {
        LimitExceeded::Time {
            app: self.app.clone(),
            limit: format_duration(self.timeout),
        }
    }

    /// Runs `build` until the sandbox's deadline; past it, `build` is dropped, every process of the build is
    /// killed, and the result is [`LimitExceeded::Time`].
    pub async fn within<T, E: From<LimitExceeded>>(
        &self,
        build: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        match tokio::time::timeout_at(self.deadline, build).await {
            Ok(result) => result,
            Err(_) => {
                if let Some(cgroup) = &self.cgroup {
                    cgroup.kill_all();
                }
                Err(self.timed_out().into())
            }
        }
    }

    /// Ends the build with `result`: says on `log` which limit stopped it (`-----> Build failed: ...`) and
    /// removes the sandbox. Failing to remove it fails a build that succeeded (it is logged otherwise).
    pub async fn finish<T, E: BuildFailure>(
        self,
        result: Result<T, E>,
        log: &mpsc::Sender<String>,
    ) -> Result<T, E> {
        if let Some(limit) = result.as_ref().err().and_then(E::limit) {
            let _ = log.send(format!("-----> Build failed: {limit}")).await;
        }
        match (result, self.remove().await) {
            (Ok(_), Err(e)) => Err(E::sandbox(e)),
            (result, Err(e)) => {
                tracing::error!(error = %e, "removing a build's sandbox");
                result
            }
            (result, Ok(())) => result,
        }
    }

    /// Kills what is left of the build and removes its cgroup and network namespace.
    pub async fn remove(mut self) -> Result<(), SandboxError> {
        let cgroup = match self.cgroup.take() {
            Some(cgroup) => cgroup.remove().await,
            None => Ok(()),
        };
        // After the processes are gone, so that nothing holds the namespace.
        let network = match self.attachment.take() {
            Some(attachment) => attachment.remove().await,
            None => Ok(()),
        };
        cgroup?;
        network?;
        Ok(())
    }
}

impl Drop for BuildSandbox {
    /// A build dropped before [`BuildSandbox::remove`] (cancelled) still leaves nothing behind.
    fn drop(&mut self) {
        if let Some(cgroup) = self.cgroup.take() {
            let path = cgroup.path().to_owned();
            if let Err(e) = cgroup.remove_blocking() {
                tracing::error!(cgroup = %path, error = %e, "removing a dropped build's cgroup");
            }
        }
        if let Some(attachment) = self.attachment.take() {
            // Removal is async; the next agent start removes it if the runtime is gone too.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    if let Err(e) = attachment.remove().await {
                        tracing::error!(error = %e, "removing a dropped build's network namespace");
                    }
                });
            }
        }
    }
}

/// `2 GiB`, `256 MiB`, `1.5 GiB`, `512 KiB`, `100 bytes`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size {
            let tenths = bytes * 10 / size;
            return if tenths.is_multiple_of(10) {
                format!("{} {unit}", tenths / 10)
            } else {
                format!("{}.{} {unit}", tenths / 10, tenths % 10)
            };
        }
    }
    format!("{bytes} bytes")
}

/// `15 min`, `2 h`, `1 h 30 min`, `1 min 30 s`.
pub fn format_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut parts = Vec::new();
    if h > 0 {
        parts.push(format!("{h} h"));
    }
    if m > 0 {
        parts.push(format!("{m} min"));
    }
    if s > 0 || parts.is_empty() {
        parts.push(format!("{s} s"));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        let cases = [
            (2 << 30, "2 GiB"),
            (256 << 20, "256 MiB"),
            (3 << 29, "1.5 GiB"),
            (512 << 10, "512 KiB"),
            (100, "100 bytes"),
            (0, "0 bytes"),
        ];
        for (bytes, shown) in cases {
            assert_eq!(format_bytes(bytes), shown, "{bytes}");
        }
    }

    #[test]
    fn durations_read_well() {
        let cases = [
            (15 * 60, "15 min"),
            (7200, "2 h"),
            (5400, "1 h 30 min"),
            (90, "1 min 30 s"),
            (2, "2 s"),
            (0, "0 s"),
        ];
        for (secs, shown) in cases {
            assert_eq!(format_duration(Duration::from_secs(secs)), shown, "{secs}");
        }
    }

    #[test]
    fn messages_say_what_to_do() {
        let oom = LimitExceeded::Memory {
            step: "pip install".to_owned(),
            limit: "2 GiB".to_owned(),
        };
        assert!(oom
            .to_string()
            .starts_with("out of memory (limit 2 GiB) while running `pip install`; "));
        let time = LimitExceeded::Time {
            app: "shop".to_owned(),
            limit: "15 min".to_owned(),
        };
        assert!(time
            .to_string()
            .contains("`berth apps update shop --build-timeout 30m`"));
    }
}
