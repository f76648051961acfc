//! The contract between the control plane and a node agent: the instances the control plane wants on a node
//! (`InstanceSpec`) and what the agent reports about them (`InstanceStatus`).
//!
//! Pure data that crosses a process boundary (today an in-process channel in `berth server`, later HTTP between
//! machines), so everything here is `Serialize`. No logic, no IO. The control plane and the agent depend on it;
//! the agent never depends on the control plane's crates.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vocabulary::{
    AccountId, AppId, AppName, IdRange, InstanceId, NodeId, ProcessType, ReleaseId, ReleaseVersion,
};

/// A reference to an image in the node's image store (an OCI image layout), by manifest digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ImageRef {
    /// `sha256:<hex>` of the image manifest.
    pub manifest_digest: String,
}

/// Resource limits applied through cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub memory_bytes: u64,
    /// CPU quota in thousandths of a core (1000 = one full core).
    pub cpu_millicores: u32,
    pub pids_max: u32,
    /// Relative share of block IO under contention (1 to 1000; the kernel's default is 100), where the node
    /// offers io weights. `None`: the kernel's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_weight: Option<u16>,
    /// Bytes the instance may write to its writable layer (the agent's tmpfs under the overlay's upper
    /// directory; its pages also count against `memory_bytes`).
    #[serde(default = "default_disk_bytes")]
    pub disk_bytes: u64,
}

/// 1 GiB: the writable-layer bound of specs that do not say.
pub const DEFAULT_DISK_BYTES: u64 = 1 << 30;

fn default_disk_bytes() -> u64 {
    DEFAULT_DISK_BYTES
}

impl Default for Limits {
    /// Heroku's standard-1X size, roughly.
    fn default() -> Self {
        Self {
            memory_bytes: 512 * 1024 * 1024,
            cpu_millicores: 1000,
            pids_max: 256,
            io_weight: None,
            disk_bytes: DEFAULT_DISK_BYTES,
        }
    }
}

/// One instance the control plane wants running on a node. Immutable: a change of release or config is a new
/// instance with a new ID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceSpec {
    pub id: InstanceId,
    pub app_id: AppId,
    pub app: AppName,
    pub account: AccountId,
    pub release: ReleaseId,
    pub release_version: ReleaseVersion,
    pub process_type: ProcessType,
    /// 1-based position within its process type: `web.1`, `web.2`.
    pub index: u32,
    pub image: ImageRef,
    /// The Procfile command, run with `/bin/sh -c`; when it is exactly the image's `ENTRYPOINT` + `CMD` as
    /// `image_store::shell_command` writes them (no Procfile entry), the agent runs that argv itself. Either
    /// way as the image's `USER`.
    pub command: String,
    /// Config vars plus platform vars (`PORT`, `DYNO`), added on top of the image's own environment.
    pub env: BTreeMap<String, String>,
    /// The port the app must listen on inside its network namespace (also in `env` as `PORT`).
    pub port: u16,
    pub limits: Limits,
    /// The account's host id range: the app runs as root of a user namespace mapped onto it. `None` (older
    /// control planes): as host root.
    #[serde(default)]
    pub id_range: Option<IdRange>,
    /// Seconds between SIGTERM and SIGKILL when the instance is stopped (the app's setting); `None`: the
    /// agent's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_grace_secs: Option<u32>,
    /// Seconds a `web` instance has to accept connections on `port` before it is killed (Heroku's R10);
    /// `None`: [`DEFAULT_BOOT_TIMEOUT_SECS`]. Other process types never bind a port and count as up once
    /// started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_timeout_secs: Option<u32>,
    /// An HTTP check the instance must pass, once its port accepts connections, before it counts as up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
}

/// The boot timeout of specs that do not say, in seconds (Heroku's 60).
pub const DEFAULT_BOOT_TIMEOUT_SECS: u32 = 60;

/// An HTTP check of a starting instance (Dokku's `startup` check): `GET path` answered 2xx within `timeout_secs`,
/// tried up to `attempts` times with `wait_secs` between tries. Redirects are not followed (a 3xx fails).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// Starts with `/`.
    pub path: String,
    pub timeout_secs: u32,
    pub attempts: u32,
    pub wait_secs: u32,
}

impl HealthCheck {
    pub const DEFAULT_TIMEOUT_SECS: u32 = 5;
    pub const DEFAULT_ATTEMPTS: u32 = 3;
    pub const DEFAULT_WAIT_SECS: u32 = 2;

    /// A check of `path` with the default timeout, attempts and wait.
    pub fn of_path(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            timeout_secs: Self::DEFAULT_TIMEOUT_SECS,
            attempts: Self::DEFAULT_ATTEMPTS,
            wait_secs: Self::DEFAULT_WAIT_SECS,
        }
    }
}

impl InstanceSpec {
    /// `web.1`, the name users see.
    pub fn dyno_name(&self) -> String {
        format!("{}.{}", self.process_type, self.index)
    }
}

/// Where an instance is in its life, as the agent sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum InstanceState {
    /// Being set up, or started but not yet accepting connections on its port.
    Starting,
    /// Accepting connections on its port.
    Running,
    /// Exited on its own (or never started) and waiting out its restart backoff. `exit_code` is the
    /// container's (`128 + N` for a signal, as a shell reports it); `reason` says why it ended (absent from
    /// older agents).
    Crashed {
        exit_code: Option<i32>,
        restarts: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<ExitReason>,
    },
    /// Asked to stop; being torn down.
    Stopping,
}

/// Why an instance's process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExitReason {
    /// It exited on its own with this code.
    Exited { code: i32 },
    /// A signal killed it (`SIGKILL`, `SIGSEGV`, ...).
    Signaled { signal: String },
    /// The kernel's OOM killer killed a process of it at its memory limit (its cgroup's OOM-kill count rose).
    OutOfMemory,
    /// It never ran: setting up the container or starting the command failed.
    FailedToStart { error: String },
    /// A `web` instance did not accept connections on its port within its boot timeout and was stopped
    /// (Heroku's R10).
    BootTimeout { secs: u32 },
    /// Its HTTP health check failed every attempt and it was stopped; `error` is the last attempt's.
    HealthCheckFailed { path: String, error: String },
}

impl std::fmt::Display for ExitReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exited { code } => write!(f, "exited with code {code}"),
            Self::Signaled { signal } => write!(f, "killed by {signal}"),
            Self::OutOfMemory => f.write_str("out of memory"),
            Self::FailedToStart { error } => write!(f, "failed to start: {error}"),
            Self::BootTimeout { secs } => write!(f, "did not listen on its port within {secs} s (R10)"),
            Self::HealthCheckFailed { path, error } => {
                write!(f, "health check GET {path} failed: {error}")
            }
        }
    }
}

/// An instance's most recent exit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastExit {
    pub reason: ExitReason,
    pub at: DateTime<Utc>,
}

/// What the agent reports about one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceStatus {
    pub id: InstanceId,
    pub state: InstanceState,
    /// Where the router reaches the instance's port, once it has an address.
    pub address: Option<SocketAddr>,
    /// The host name the instance sees.
    pub hostname: String,
    /// Its most recent exit, kept while it restarts and runs again (absent from older agents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit: Option<LastExit>,
    /// Processes of the instance the OOM killer has killed since it was placed, including those it survived
    /// (a worker killed while its master runs on, like Heroku's R14/R15).
    #[serde(default)]
    pub oom_kills: u64,
}

/// A node's full report: every instance it currently has. Instances it no longer lists are gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeReport {
    pub node: NodeId,
    pub instances: Vec<InstanceStatus>,
}

/// What a node offers, sent when it registers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRegistration {
    pub node: NodeId,
    pub name: String,
    pub memory_capacity_bytes: u64,
}

/// One line an instance wrote, or a line about it, forwarded by the agent to the platform's app logs
/// (`AgentConfig::output`). The receiver stamps the time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceOutput {
    pub app: AppId,
    /// The instance's name as users see it (`web.1`).
    pub process: String,
    pub line: OutputLine,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputLine {
    /// A line of its stdout or stderr, without the newline (lossy UTF-8).
    Text(String),
    /// This many lines were dropped because the channel was full (the app wrote faster than logs are kept).
    Dropped(u64),
    /// What happened to it, from the agent (`Process exited with status 1`).
    Platform(String),
}

/// A one-off run: one instance of a release running a command once (`berth run`, a release phase), isolated
/// like any instance, never restarted, removed when it exits. `spec.process_type` and `spec.index` name it in
/// logs (`run.3`, `release.1`); it is not part of any formation and the agent does not report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OneOffRequest {
    /// `spec.command` is the command, run with `/bin/sh -c`.
    pub spec: InstanceSpec,
    /// Run it on a pseudo-terminal of this size (its output then comes as `Stdout` only), else on pipes.
    #[serde(default)]
    pub terminal: Option<WindowSize>,
}

/// A terminal's size in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSize {
    pub rows: u16,
    pub cols: u16,
}

/// What the caller of a one-off sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OneOffInput {
    Stdin(Vec<u8>),
    /// End of standard input (on a terminal, nothing: the user types Ctrl-D).
    StdinClosed,
    Resize(WindowSize),
    /// Kill it now (as when the caller goes away: dropping the input sender kills it too).
    Kill,
}

/// What a one-off sends its caller; `Exited` comes last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OneOffOutput {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Exited(OneOffExit),
}

/// How a one-off ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OneOffExit {
    /// The exit code to pass on, shell style: the command's own, `128 + N` when signal N killed it, 125 when
    /// it never started.
    pub code: i32,
    pub reason: ExitReason,
}

impl OneOffExit {
    pub fn of(reason: ExitReason) -> Self {
        let code = match &reason {
            ExitReason::Exited { code } => *code,
            ExitReason::Signaled { signal } => 128 + signal_number(signal).unwrap_or(9),
            ExitReason::OutOfMemory => 128 + 9,
            ExitReason::FailedToStart { .. } => 125,
            // The agent stopped it (one-offs bind no port and have no check, so neither happens to them).
            ExitReason::BootTimeout { .. } | ExitReason::HealthCheckFailed { .. } => 128 + 15,
        };
        Self { code, reason }
    }
}

fn signal_number(name: &str) -> Option<i32> {
    const NAMES: [(&str, i32); 8] = [
        ("SIGHUP", 1),
        ("SIGINT", 2),
        ("SIGQUIT", 3),
        ("SIGABRT", 6),
        ("SIGKILL", 9),
        ("SIGSEGV", 11),
        ("SIGPIPE", 13),
        ("SIGTERM", 15),
    ];
    NAMES.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// A started one-off, in-process: the caller's ends of its channels. Over a wire, each message is one frame.
#[derive(Debug)]
pub struct OneOffSession {
    pub input: tokio::sync::mpsc::Sender<OneOffInput>,
    pub output: tokio::sync::mpsc::Receiver<OneOffOutput>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What older agents and control planes send still reads, with the new fields at their defaults.
    #[test]
    fn older_shapes_still_parse() {
        let state: InstanceState =
            serde_json::from_str(r#"{"state":"crashed","exit_code":3,"restarts":2}"#).unwrap();
        assert_eq!(
            state,
            InstanceState::Crashed {
                exit_code: Some(3),
                restarts: 2,
                reason: None
            }
        );
        let status: InstanceStatus = serde_json::from_str(
            r#"{"id":"7f8c1c52-4d8e-4a51-9d7a-3c1f7a1b2c3d","state":{"state":"running"},"address":null,"hostname":"h"}"#,
        )
        .unwrap();
        assert_eq!((status.last_exit, status.oom_kills), (None, 0));
        let limits: Limits =
            serde_json::from_str(r#"{"memory_bytes":1,"cpu_millicores":2,"pids_max":3}"#).unwrap();
        assert_eq!((limits.io_weight, limits.disk_bytes), (None, DEFAULT_DISK_BYTES));
    }

    #[test]
    fn exit_reasons_read_as_tagged_objects() {
        let cases = [
            (ExitReason::Exited { code: 3 }, r#"{"kind":"exited","code":3}"#),
            (
                ExitReason::Signaled {
                    signal: "SIGKILL".into(),
                },
                r#"{"kind":"signaled","signal":"SIGKILL"}"#,
            ),
            (ExitReason::OutOfMemory, r#"{"kind":"out_of_memory"}"#),
            (
                ExitReason::FailedToStart { error: "x".into() },
                r#"{"kind":"failed_to_start","error":"x"}"#,
            ),
            (
                ExitReason::BootTimeout { secs: 60 },
                r#"{"kind":"boot_timeout","secs":60}"#,
            ),
            (
                ExitReason::HealthCheckFailed {
                    path: "/health".into(),
                    error: "500 Internal Server Error".into(),
                },
                r#"{"kind":"health_check_failed","path":"/health","error":"500 Internal Server Error"}"#,
            ),
        ];
        for (reason, json) in cases {
            assert_eq!(serde_json::to_string(&reason).unwrap(), json);
            assert_eq!(serde_json::from_str::<ExitReason>(json).unwrap(), reason);
        }
    }
}
