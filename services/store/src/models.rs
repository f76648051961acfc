//! Rows as typed values. These do not cross process boundaries, so they are not `Serialize`; the API maps them
//! to its own contract types.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use chrono::{DateTime, Utc};
use vocabulary::{
    AccountId, AccountName, AppId, AppName, CertificateId, DomainName, InstanceId, NodeId, ProcessType,
    ReleaseId, ReleaseVersion,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub name: AccountName,
    pub is_admin: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub id: AppId,
    pub name: AppName,
    pub owner: AccountId,
    pub created_at: DateTime<Utc>,
}

/// How routers treat one app's requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouterSettings {
    /// Answer plain-HTTP requests with a redirect to HTTPS.
    pub redirect_https: bool,
    /// How long a backend may take to send its response head; `None` is the router's default.
    pub first_byte_timeout_secs: Option<u32>,
}

/// A custom domain an app is served at, besides `NAME.DOMAIN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    pub name: DomainName,
    pub app: AppId,
    pub created_at: DateTime<Utc>,
}

/// A certificate to keep, already checked by the API.
#[derive(Clone, PartialEq, Eq)]
pub struct NewCertificate {
    pub app: AppId,
    pub hosts: Vec<String>,
    pub cert_pem: String,
    pub key_pem: String,
    pub not_after: DateTime<Utc>,
}

/// A kept certificate with its private key (never logged: `Debug` leaves the key out).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredCertificate {
    pub id: CertificateId,
    pub app: AppId,
    pub hosts: Vec<String>,
    pub cert_pem: String,
    pub key_pem: String,
    pub not_after: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for NewCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewCertificate")
            .field("app", &self.app)
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for StoredCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCertificate")
            .field("id", &self.id)
            .field("app", &self.app)
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct NewRelease {
    pub app: AppId,
    /// `sha256:...` of the image manifest in the image store.
    pub image_digest: String,
    pub processes: BTreeMap<ProcessType, String>,
    pub config: BTreeMap<String, String>,
    /// "Deploy 1a2b3c4", "Rollback to v2", ...
    pub description: String,
    pub created_by: AccountId,
}

/// What made a release. Stored beside the free-text description so that listing releases never parses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReleaseKind {
    /// A git push built by buildpacks or a Dockerfile.
    Build,
    /// Config vars were set or unset: same image and processes.
    Config,
    /// An earlier release's image, processes and config again.
    Rollback,
    /// The same image moved onto a newer stack.
    Rebase,
    /// An existing image deployed from a registry.
    Image,
}

impl ReleaseKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Build => "build",
            Self::Config => "config",
            Self::Rollback => "rollback",
            Self::Rebase => "rebase",
            Self::Image => "image",
        }
    }
}

impl std::str::FromStr for ReleaseKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "build" => Ok(Self::Build),
            "config" => Ok(Self::Config),
            "rollback" => Ok(Self::Rollback),
            "rebase" => Ok(Self::Rebase),
            "image" => Ok(Self::Image),
            other => Err(format!("unknown release kind {other:?}")),
        }
    }
}

impl std::fmt::Display for ReleaseKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct Release {
    pub id: ReleaseId,
    pub app: AppId,
    pub version: ReleaseVersion,
    pub kind: ReleaseKind,
    pub image_digest: String,
    pub processes: BTreeMap<ProcessType, String>,
    pub config: BTreeMap<String, String>,
    pub description: String,
    pub created_by: AccountId,
    pub created_at: DateTime<Utc>,
    /// The health checks its tree's `app.json` declared, by process type (set with
    /// [`crate::Store::set_release_health_checks`]).
    pub health_checks: BTreeMap<ProcessType, agent_contract::HealthCheck>,
}

/// Config values may be secrets: `Debug` shows their names only.
struct ConfigNames<'a>(&'a BTreeMap<String, String>);

impl std::fmt::Debug for ConfigNames<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl std::fmt::Debug for NewRelease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewRelease")
            .field("app", &self.app)
            .field("image_digest", &self.image_digest)
            .field("processes", &self.processes)
            .field("config", &ConfigNames(&self.config))
            .field("description", &self.description)
            .field("created_by", &self.created_by)
            .finish()
    }
}

impl std::fmt::Debug for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Release")
            .field("id", &self.id)
            .field("app", &self.app)
            .field("version", &self.version)
            .field("kind", &self.kind)
            .field("image_digest", &self.image_digest)
            .field("processes", &self.processes)
            .field("config", &ConfigNames(&self.config))
            .field("description", &self.description)
            .field("created_by", &self.created_by)
            .field("created_at", &self.created_at)
            .field("health_checks", &self.health_checks)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormationEntry {
    pub quantity: u32,
    pub memory_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub id: NodeId,
    pub name: String,
    pub memory_capacity_bytes: u64,
}

/// The stored form of an instance's state (`agent_contract::InstanceState` without its details).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceRowState {
    Starting,
    Running,
    Crashed,
    Stopping,
}

impl InstanceRowState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Crashed => "crashed",
            Self::Stopping => "stopping",
        }
    }

    /// The stored form of what an agent reported.
    pub fn of(state: &agent_contract::InstanceState) -> Self {
        use agent_contract::InstanceState as S;
        match state {
            S::Starting => Self::Starting,
            S::Running => Self::Running,
            S::Crashed { .. } => Self::Crashed,
            S::Stopping => Self::Stopping,
        }
    }
}

impl std::str::FromStr for InstanceRowState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "starting" => Ok(Self::Starting),
            "running" => Ok(Self::Running),
            "crashed" => Ok(Self::Crashed),
            "stopping" => Ok(Self::Stopping),
            other => Err(format!("unknown instance state {other:?}")),
        }
    }
}

impl std::fmt::Display for InstanceRowState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: InstanceId,
    pub app: AppId,
    pub release: ReleaseId,
    pub process_type: ProcessType,
    pub index: u32,
    pub node: NodeId,
    pub memory_bytes: u64,
    pub state: InstanceRowState,
    pub stop_requested: bool,
    /// `berth ps restart` asked for a fresh instance in its place (the scheduler treats it as outdated).
    pub replace_requested: bool,
    pub address: Option<SocketAddr>,
    pub hostname: Option<String>,
    pub restarts: u32,
    /// Its most recent exit, as its agent last reported it.
    pub last_exit: Option<InstanceExit>,
    pub created_at: DateTime<Utc>,
}

/// Why and when an instance last ended (`agent_contract::LastExit`, its reason as text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceExit {
    /// `exited with code 3`, `killed by SIGKILL`, `out of memory`, `failed to start: ...`
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// What kind of thing happened to an app ([`Event`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    AppCreated,
    /// A release was made and is being rolled out ("Deploying v5").
    ReleaseCreated,
    /// A release serves ("v5 deployed").
    Deployed,
    /// A build or a rollout failed; the previous release keeps serving.
    DeployFailed,
    Scaled,
    /// An instance exited on its own (with its exit code in the description).
    Crashed,
    ConfigChanged,
    Rollback,
}

impl EventKind {
    pub const ALL: [Self; 8] = [
        Self::AppCreated,
        Self::ReleaseCreated,
        Self::Deployed,
        Self::DeployFailed,
        Self::Scaled,
        Self::Crashed,
        Self::ConfigChanged,
        Self::Rollback,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AppCreated => "app_created",
            Self::ReleaseCreated => "release_created",
            Self::Deployed => "deployed",
            Self::DeployFailed => "deploy_failed",
            Self::Scaled => "scaled",
            Self::Crashed => "crashed",
            Self::ConfigChanged => "config_changed",
            Self::Rollback => "rollback",
        }
    }

    /// The process an event's log line names: `berth[deploy]`, `berth[api]`, `berth[ps]`.
    pub fn log_process(self) -> &'static str {
        match self {
            Self::ReleaseCreated | Self::Deployed | Self::DeployFailed | Self::Rollback => "deploy",
            Self::AppCreated | Self::Scaled | Self::ConfigChanged => "api",
            Self::Crashed => "ps",
        }
    }
}

impl std::str::FromStr for EventKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown event kind {s:?}"))
    }
}

/// Something that happened to an app, by whom and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub app: AppId,
    pub kind: EventKind,
    pub description: String,
    /// An account's name, or [`Event::BERTH`].
    pub actor: String,
    pub at: DateTime<Utc>,
}

impl Event {
    /// The actor of what the platform did by itself (a crash, a failed rollout).
    pub const BERTH: &'static str = "berth";
}
