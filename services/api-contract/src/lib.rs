//! The public HTTP API's request and response bodies, shared by the server (`api`) and the client verbs of the
//! `berth` binary, so both ends agree on field names by construction.
//!
//! Pure data: no HTTP, no validation. Request types carry names as plain strings on purpose: the server
//! validates them itself so that a bad name gets the vocabulary's clear message instead of a JSON decoding
//! error. Response types use the vocabulary's validated types. Everything here is `Serialize` because it
//! crosses a process boundary.

pub mod access;
pub mod admin_nodes;
pub mod attach;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vocabulary::{AccountName, AppName, CertificateId, DomainName, InstanceId, ProcessType, ReleaseVersion};

/// Every error response's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A message for people, shown as it is.
    pub error: String,
}

/// `GET /v1/account`: who the token belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInfo {
    pub name: AccountName,
    pub is_admin: bool,
    pub created_at: DateTime<Utc>,
}

/// `POST /v1/accounts` (admin only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountCreate {
    pub name: String,
}

/// The answer to `POST /v1/accounts`: the new account's API token, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountCreated {
    pub name: AccountName,
    pub token: String,
}

/// The answer to `POST /v1/router-tokens` (admin only): a token that can only read the route stream, shown
/// this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterTokenCreated {
    pub token: String,
}

/// `POST /v1/apps`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppCreate {
    pub name: String,
    /// Node labels every instance's node must have (`{"region": "eu"}`); none: anywhere.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub constraints: BTreeMap<String, String>,
}

/// An app as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppInfo {
    pub name: AppName,
    /// Where the router serves the app: `http://NAME.DOMAIN[:PORT]`.
    pub url: String,
    /// The latest release, if the app was ever deployed.
    pub release: Option<ReleaseVersion>,
    pub created_at: DateTime<Utc>,
    /// Routers answer plain HTTP with a redirect to HTTPS.
    #[serde(default)]
    pub redirect_https: bool,
    /// Seconds a backend may take to send its response head; `None` is the router's default (30).
    #[serde(default)]
    pub first_byte_timeout: Option<u32>,
    /// Seconds a whole build may take; `None` is the platform's default (900).
    #[serde(default)]
    pub build_timeout: Option<u32>,
    /// Seconds a stopping instance gets between SIGTERM and SIGKILL; `None` is the platform's default (30).
    #[serde(default)]
    pub stop_grace: Option<u32>,
    /// Stopped with `berth apps stop`: the formation is kept but nothing runs.
    #[serde(default)]
    pub stopped: bool,
    /// What the caller is to the app: `owner` or `collaborator` (absent from servers before access control).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Seconds a web instance has to listen on PORT and answer before it is stopped (R10); `None` is the platform's
    /// default (60).
    #[serde(default)]
    pub boot_timeout: Option<u32>,
    /// Seconds a deploy waits for the new release's instances before it rolls back; `None` is the platform's
    /// default (120).
    #[serde(default)]
    pub deploy_timeout: Option<u32>,
    /// The app's own health check path for web instances (wins over app.json's); `None`: app.json's, if any.
    #[serde(default)]
    pub health_check: Option<String>,
    /// `all-at-once` (the default) or `rolling`.
    #[serde(default = "default_strategy")]
    pub deploy_strategy: String,
    /// Node labels every instance's node must have; empty: anywhere.
    #[serde(default)]
    pub constraints: BTreeMap<String, String>,
}

fn default_strategy() -> String {
    "all-at-once".into()
}

/// `PATCH /v1/apps/{name}`: the router settings to change; fields left out keep their value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_https: Option<bool>,
    /// Seconds, 1 to 300; an explicit `null` (`Some(None)`) goes back to the routers' default, a field left
    /// out (`None`) keeps the current value.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub first_byte_timeout: Option<Option<i64>>,
    /// Seconds a whole build may take, [`BUILD_TIMEOUT_SECS`]; `null` and absence as for
    /// `first_byte_timeout`.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub build_timeout: Option<Option<i64>>,
    /// Seconds a stopping instance gets between SIGTERM and SIGKILL, [`STOP_GRACE_SECS`]; `null` and absence
    /// as for `first_byte_timeout`. Applies to running instances too.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub stop_grace: Option<Option<i64>>,
    /// Seconds a web instance has to listen on PORT, [`BOOT_TIMEOUT_SECS`]; `null` and absence as for
    /// `first_byte_timeout`. Applies to instances started from then on.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub boot_timeout: Option<Option<i64>>,
    /// Seconds a deploy waits for its instances before rolling back, [`DEPLOY_TIMEOUT_SECS`]; `null` and
    /// absence as for `first_byte_timeout`.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub deploy_timeout: Option<Option<i64>>,
    /// A path such as `/health` that web instances must answer with 2xx before they count as up; `null`
    /// clears the app's own check (app.json's applies again).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub health_check: Option<Option<String>>,
    /// `rolling` or `all-at-once`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy_strategy: Option<String>,
    /// Replaces the app's placement constraints (node labels); an empty map removes them. Instances already
    /// placed elsewhere keep running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<BTreeMap<String, String>>,
}

/// Deserializes a field that is present (so `null` is `Some(None)`); with `#[serde(default)]` an absent field
/// stays `None`. Plain `Option<Option<T>>` would read `null` as `None`, the same as absent.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// The range of `AppUpdate::first_byte_timeout`, in seconds.
pub const FIRST_BYTE_TIMEOUT_SECS: std::ops::RangeInclusive<i64> = 1..=300;

/// The range of `AppUpdate::build_timeout`, in seconds: a minute to two hours.
pub const BUILD_TIMEOUT_SECS: std::ops::RangeInclusive<i64> = 60..=7200;

/// The range of `AppUpdate::stop_grace`, in seconds: a second to ten minutes.
pub const STOP_GRACE_SECS: std::ops::RangeInclusive<i64> = 1..=600;

/// The range of `AppUpdate::boot_timeout`, in seconds: a second to ten minutes.
pub const BOOT_TIMEOUT_SECS: std::ops::RangeInclusive<i64> = 1..=600;

/// The range of `AppUpdate::deploy_timeout`, in seconds: a second to an hour.
pub const DEPLOY_TIMEOUT_SECS: std::ops::RangeInclusive<i64> = 1..=3600;

/// `PATCH /v1/apps/{name}/formation`: process type → wanted quantity, e.g. `{"web": 2, "worker": 1}`.
/// Types not named keep their quantity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ScaleRequest(pub BTreeMap<String, i64>);

/// One process type's line in a formation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormationInfo {
    #[serde(rename = "type")]
    pub process_type: ProcessType,
    pub quantity: u32,
    /// Memory limit of each instance.
    pub memory_bytes: u64,
}

/// Where an instance is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceStateInfo {
    Starting,
    Running,
    Crashed,
    /// Being stopped (scaled down or replaced by a newer release).
    Stopping,
    /// Wanted, but no node can take it yet; `InstanceInfo::pending_reason` says why.
    Pending,
}

impl InstanceStateInfo {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Crashed => "crashed",
            Self::Stopping => "stopping",
            Self::Pending => "pending",
        }
    }
}

/// One running (or wanted) instance of an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceInfo {
    pub id: InstanceId,
    /// `web.1`
    pub name: String,
    #[serde(rename = "type")]
    pub process_type: ProcessType,
    pub state: InstanceStateInfo,
    pub release: ReleaseVersion,
    /// The host name the instance sees, once it started.
    pub hostname: Option<String>,
    /// Where the router reaches it, once it has an address.
    pub address: Option<SocketAddr>,
    pub restarts: u32,
    pub created_at: DateTime<Utc>,
    /// The name of the node it runs on.
    #[serde(default)]
    pub node: Option<String>,
    /// Its memory limit.
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    /// Why and when it last ended, if it ever did.
    #[serde(default)]
    pub last_exit: Option<InstanceExitInfo>,
    /// Why a pending instance waits ("no node matches region=eu"). A pending instance has no ID yet (the nil
    /// UUID), no node and no address; its `created_at` is when it started waiting for this reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_reason: Option<String>,
}

/// An instance's most recent exit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceExitInfo {
    /// `exited with code 3`, `killed by SIGKILL`, `out of memory`, `failed to start: ...`
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// What made a release.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseKindInfo {
    /// A git push, built.
    #[default]
    Build,
    /// Config vars changed.
    Config,
    /// An earlier release again.
    Rollback,
    /// Moved onto a newer stack.
    Rebase,
    /// An existing image deployed.
    Image,
}

impl ReleaseKindInfo {
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

/// One release of an app. Config values are not shown (they may be secrets), only their names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseInfo {
    pub version: ReleaseVersion,
    /// What made it (older servers did not say: a build).
    #[serde(default)]
    pub kind: ReleaseKindInfo,
    pub description: String,
    /// `sha256:...` of the image manifest.
    pub image_digest: String,
    /// Process type → command.
    pub processes: BTreeMap<ProcessType, String>,
    pub config_keys: Vec<String>,
    /// The account that made it, if it still exists.
    pub created_by: Option<AccountName>,
    pub created_at: DateTime<Utc>,
}

/// `GET /v1/apps/{name}/releases/{version}` (the app's owner): one release with its config values.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseDetail {
    #[serde(flatten)]
    pub info: ReleaseInfo,
    pub config: BTreeMap<String, String>,
}

impl std::fmt::Debug for ReleaseDetail {
    /// Config names only: values may be secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReleaseDetail")
            .field("info", &self.info)
            .field("config", &self.config.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// An app's config vars (`GET /v1/apps/{name}/config`, the app's owner): name → value.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConfigVars(pub BTreeMap<String, String>);

impl std::fmt::Debug for ConfigVars {
    /// Names only: values may be secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// `PATCH /v1/apps/{name}/config`: name → new value, or `null` to unset. Names not listed keep their value.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConfigUpdate(pub BTreeMap<String, Option<String>>);

impl std::fmt::Debug for ConfigUpdate {
    /// Names only: values may be secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// Limits on config vars: a name's length, a value's size, how many an app has and their total size.
pub const CONFIG_NAME_MAX_CHARS: usize = 256;
pub const CONFIG_VALUE_MAX_BYTES: usize = 32 * 1024;
pub const CONFIG_MAX_VARS: usize = 500;
pub const CONFIG_TOTAL_MAX_BYTES: usize = 64 * 1024;

/// Whether a deploy-like change (config change, rollback, start, restart) serves yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutInfo {
    /// The release the change made, if it made one.
    pub release: Option<ReleaseVersion>,
    /// True once the change serves (or nothing needed to start).
    pub deployed: bool,
    /// What happened, for people: "v5 deployed to http://...", or why it does not serve yet.
    pub message: String,
}

/// The answer to `PATCH /v1/apps/{name}/config` (`Debug` shows names only, through [`ConfigVars`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigUpdated {
    pub config: ConfigVars,
    /// `None` when the app had no release yet: the config waits for its first deploy.
    pub rollout: Option<RolloutInfo>,
}

/// `POST /v1/apps/{name}/rollback`: the release to roll back to; `null` or absent is the one before the
/// latest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackRequest {
    #[serde(default)]
    pub version: Option<ReleaseVersion>,
}

/// The answer to `POST /v1/apps/{name}/rollback`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackInfo {
    /// The release whose image, processes and config the new release has.
    pub to: ReleaseVersion,
    pub rollout: RolloutInfo,
}

/// `POST /v1/apps/{name}/restart`: which instances to replace with fresh ones: `web.1`, `web`, or all when
/// absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartRequest {
    #[serde(default)]
    pub instance: Option<String>,
}

/// The answer to `POST /v1/apps/{name}/stop`, `/start` and `/restart`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleInfo {
    /// True once done (instances stopped, started or replaced).
    pub done: bool,
    pub message: String,
}

/// The answer to `POST /v1/apps/{name}/rebase`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebaseInfo {
    /// `sha256:...` of the stack layer the current release's image had.
    pub old_stack: String,
    /// `sha256:...` of the current stack's layer.
    pub new_stack: String,
    /// The new release, or `None` when the image already was on the current stack.
    pub release: Option<ReleaseVersion>,
}

/// `POST /v1/apps/{name}/domains`: a custom domain such as `shop.example.com` or `*.example.com`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainCreate {
    pub name: String,
}

/// One of an app's custom domains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainInfo {
    pub name: DomainName,
    pub created_at: DateTime<Utc>,
}

/// `POST /v1/apps/{name}/certificates`: a PEM chain (leaf first) and its PEM private key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateCreate {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for CertificateCreate {
    /// Never prints the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateCreate").finish_non_exhaustive()
    }
}

/// One of an app's certificates. The private key is never sent back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateInfo {
    pub id: CertificateId,
    /// The DNS names it serves.
    pub hosts: Vec<String>,
    pub not_after: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// One line of the route watch stream, `GET /v1/routes/watch?since=V` (newline-delimited JSON, one object per
/// line). Externally tagged, so a line is either `{"table":{...}}` or `{"heartbeat":{"version":V}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteStreamLine {
    /// The whole current table, sent whenever its version differs from the last one sent on this stream.
    Table(route_table::RouteTable),
    /// Sent every [`ROUTE_HEARTBEAT_SECS`] while nothing changes, naming the version the client should have,
    /// so a client can tell a quiet stream from a dead connection.
    Heartbeat { version: u64 },
}

/// How often the route watch stream sends a heartbeat line while nothing changes.
pub const ROUTE_HEARTBEAT_SECS: u64 = 15;

/// `POST /v1/apps/{name}/deploys`: deploy an existing image from a registry instead of a git push. The
/// answer (200) is plain text streamed line by line as the deploy goes (`-----> Pulling REF`, ...); its last
/// line is the summary, or [`DEPLOY_ERROR_PREFIX`] and the reason when the deploy failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageDeployCreate {
    /// `REGISTRY/REPO:TAG` or `REGISTRY/REPO@sha256:HEX`.
    pub image: String,
    /// Require HTTPS with a valid certificate at the registry (false for a plain-HTTP registry).
    #[serde(default = "default_tls_verify")]
    pub tls_verify: bool,
}

fn default_tls_verify() -> bool {
    true
}

/// How the last line of a failed deploy's stream starts.
pub const DEPLOY_ERROR_PREFIX: &str = "error: ";

/// Where a log line comes from: the app's own output, the router's access lines, or the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogSource {
    App,
    Router,
    Berth,
}

impl LogSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::App => "app",
            Self::Router => "router",
            Self::Berth => "berth",
        }
    }

    /// `app`, `router` or `berth`, as `--source` and `?source=` take it.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::App, Self::Router, Self::Berth]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// One line of an app's log, as `GET /v1/apps/{name}/logs` streams them (newline-delimited JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub at: DateTime<Utc>,
    pub source: LogSource,
    /// `web.1`, `deploy`, `build`, `logs`; empty for router lines.
    pub process: String,
    pub text: String,
}

impl std::fmt::Display for LogLine {
    /// `TIMESTAMP SOURCE[PROCESS]: TEXT`, as `berth logs` prints it (`router: TEXT` without a process).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = self.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        match self.process.as_str() {
            "" => write!(f, "{at} {}: {}", self.source.as_str(), self.text),
            process => write!(f, "{at} {}[{process}]: {}", self.source.as_str(), self.text),
        }
    }
}

/// A line of the logs stream that is not a log line: sent every [`LOG_KEEPALIVE_SECS`] while following, so
/// proxies and clients can tell a quiet app from a dead connection. Clients skip it.
pub const LOG_KEEPALIVE_LINE: &str = "{}";

/// How often a followed logs stream sends [`LOG_KEEPALIVE_LINE`] while nothing is logged.
pub const LOG_KEEPALIVE_SECS: u64 = 15;

/// The web dashboard's session cookie (HttpOnly, SameSite=Strict). The API accepts it instead of a bearer
/// token; then every request other than GET and HEAD must carry [`CSRF_HEADER`].
pub const SESSION_COOKIE: &str = "berth_session";

/// The header that must echo the dashboard session's CSRF token on state-changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// `PUT /v1/account/password`: the caller's dashboard password (`berth accounts password`). Never logged.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordSet {
    pub password: String,
}

impl std::fmt::Debug for PasswordSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordSet { .. }")
    }
}

/// One entry of `GET /v1/apps/{name}/events`, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventInfo {
    /// `app_created`, `release_created`, `deployed`, `deploy_failed`, `scaled`, `crashed`, ...
    pub kind: String,
    pub description: String,
    /// The account that did it, or `berth` for the platform itself.
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// `POST /v1/apps/{name}/runs`: run a command in a one-off instance of the app's current release. Attached
/// (the request asks `Upgrade: berth-attach/1`, see [`attach`]) or `detach`ed (answered with [`RunStarted`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRequest {
    /// The command's words; the server quotes them for the shell and runs them with `/bin/sh -c`.
    pub command: Vec<String>,
    #[serde(default)]
    pub detach: bool,
    /// Memory in MiB (the platform's default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
    /// Run on a pseudo-terminal of this size (attached runs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal: Option<TerminalSize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalSize {
    pub rows: u16,
    pub cols: u16,
}

/// `GET /v1/apps/{name}/runs`: a one-off running now (`berth run`s and release phases), shown by `berth ps`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// `run.3`, `release.2`
    pub name: String,
    pub command: String,
    pub release: ReleaseVersion,
    pub started_at: DateTime<Utc>,
}

/// The answer to a detached run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStarted {
    /// `run.3`: its lines are `app[run.3]` in `berth logs`.
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_request_is_a_plain_object() {
        let req: ScaleRequest = serde_json::from_str(r#"{"web": 2, "worker": 0}"#).unwrap();
        assert_eq!(
            req.0,
            BTreeMap::from([("web".to_owned(), 2), ("worker".to_owned(), 0)])
        );
        assert_eq!(serde_json::to_string(&req).unwrap(), r#"{"web":2,"worker":0}"#);
    }

    #[test]
    fn log_lines_print_like_heroku() {
        let at = DateTime::parse_from_rfc3339("2026-11-30T01:02:03.5Z")
            .unwrap()
            .with_timezone(&Utc);
        let line = |source, process: &str| LogLine {
            at,
            source,
            process: process.into(),
            text: "hello".into(),
        };
        let cases = [
            (
                line(LogSource::App, "web.1"),
                "2026-11-30T01:02:03.500000Z app[web.1]: hello",
            ),
            (
                line(LogSource::Router, ""),
                "2026-11-30T01:02:03.500000Z router: hello",
            ),
            (
                line(LogSource::Berth, "deploy"),
                "2026-11-30T01:02:03.500000Z berth[deploy]: hello",
            ),
        ];
        for (line, want) in cases {
            assert_eq!(line.to_string(), want);
            let json = serde_json::to_string(&line).unwrap();
            assert_eq!(serde_json::from_str::<LogLine>(&json).unwrap(), line);
        }
        assert_eq!(LogSource::parse("router"), Some(LogSource::Router));
        assert_eq!(LogSource::parse("App"), None);
    }

    #[test]
    fn route_stream_lines_are_tagged_objects() {
        let heartbeat = RouteStreamLine::Heartbeat { version: 7 };
        assert_eq!(
            serde_json::to_string(&heartbeat).unwrap(),
            r#"{"heartbeat":{"version":7}}"#
        );
        let table = RouteStreamLine::Table(route_table::RouteTable {
            version: 3,
            ..Default::default()
        });
        let text = serde_json::to_string(&table).unwrap();
        assert!(text.starts_with(r#"{"table":{"version":3,"#), "{text}");
        assert_eq!(serde_json::from_str::<RouteStreamLine>(&text).unwrap(), table);
    }

    #[test]
    fn an_app_update_tells_a_null_timeout_from_an_absent_one() {
        let cases = [
            (r#"{}"#, None),
            (r#"{"first_byte_timeout": null}"#, Some(None)),
            (r#"{"first_byte_timeout": 90}"#, Some(Some(90))),
        ];
        for (json, want) in cases {
            let update: AppUpdate = serde_json::from_str(json).unwrap();
            assert_eq!(update.first_byte_timeout, want, "{json}");
            // What the CLI sends reads back the same.
            let sent = serde_json::to_string(&update).unwrap();
            assert_eq!(
                serde_json::from_str::<AppUpdate>(&sent).unwrap(),
                update,
                "{sent}"
            );
        }
        let reset = AppUpdate {
            first_byte_timeout: Some(None),
            ..AppUpdate::default()
        };
        assert_eq!(
            serde_json::to_string(&reset).unwrap(),
            r#"{"first_byte_timeout":null}"#
        );
        assert_eq!(serde_json::to_string(&AppUpdate::default()).unwrap(), "{}");
        assert!(serde_json::from_str::<AppUpdate>(r#"{"first_byte_timeout": "90"}"#).is_err());
    }

    #[test]
    fn config_updates_tell_unset_from_set() {
        let update: ConfigUpdate = serde_json::from_str(r#"{"A": "1\nx", "B": null}"#).unwrap();
        assert_eq!(
            update.0,
            BTreeMap::from([("A".to_owned(), Some("1\nx".to_owned())), ("B".to_owned(), None)])
        );
        assert_eq!(format!("{update:?}"), r#"["A", "B"]"#);
        let vars = ConfigVars(BTreeMap::from([("TOKEN".to_owned(), "hunter2".to_owned())]));
        assert!(!format!("{vars:?}").contains("hunter2"));
        let rollback: RollbackRequest = serde_json::from_str("{}").unwrap();
        assert_eq!(rollback.version, None);
        let rollback: RollbackRequest = serde_json::from_str(r#"{"version": 2}"#).unwrap();
        assert_eq!(rollback.version, Some(ReleaseVersion(2)));
        // Releases listed by an older server have no kind: builds.
        let info: ReleaseInfo = serde_json::from_str(
            r#"{"version":1,"description":"Deploy x","image_digest":"sha256:a","processes":{},
                "config_keys":[],"created_by":null,"created_at":"2026-11-30T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(info.kind, ReleaseKindInfo::Build);
    }

    #[test]
    fn instance_state_is_snake_case() {
        assert_eq!(
            serde_json::to_string(&InstanceStateInfo::Running).unwrap(),
            r#""running""#
        );
        assert_eq!(InstanceStateInfo::Crashed.as_str(), "crashed");
    }
}
