//! The contract between the control plane and a node agent: the instances the control plane wants on a node
//! (`InstanceSpec`) and what the agent reports about them (`InstanceStatus`).
//!
//! Pure data that crosses a process boundary (today an in-process channel in `berth server`, later HTTP between
//! machines), so everything here is `Serialize`. No logic, no IO. The control plane and the agent depend on it;
//! the agent never depends on the control plane's crates.

use std::collections::BTreeMap;
use std::net::SocketAddr;

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
}

impl Default for Limits {
    /// Heroku's standard-1X size, roughly.
    fn default() -> Self {
        Self {
            memory_bytes: 512 * 1024 * 1024,
            cpu_millicores: 1000,
            pids_max: 256,
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
    /// Exited on its own and waiting out its restart backoff.
    Crashed { exit_code: Option<i32>, restarts: u32 },
    /// Asked to stop; being torn down.
    Stopping,
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
