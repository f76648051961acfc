//! Accounts and access: collaborators, API tokens and their scopes, quotas, and the operators' admin API
//! (accounts, all apps, the audit log).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vocabulary::{AccountName, AppName};

/// `GET /v1/apps/{name}/collaborators`: the owner and who else may deploy the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessList {
    pub owner: AccountName,
    pub collaborators: Vec<CollaboratorInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollaboratorInfo {
    pub account: AccountName,
    pub added_by: String,
    pub added_at: DateTime<Utc>,
}

/// `POST /v1/apps/{name}/collaborators`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollaboratorAdd {
    pub account: String,
}

/// `POST /v1/tokens`: `scope` is `full` (the default) or `read` (GET requests only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCreate {
    #[serde(default)]
    pub scope: Option<String>,
}

/// A token as listed: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenListing {
    /// The first hex digits of the token's SHA-256; `berth tokens revoke ID` takes it (or a unique prefix).
    pub id: String,
    pub scope: String,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub last_used_at: Option<DateTime<Utc>>,
}

/// The answer to `POST /v1/tokens`: the token, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCreated {
    pub id: String,
    pub scope: String,
    pub token: String,
}

/// An account's limits (what `PUT /v1/admin/accounts/{name}/quotas` takes: a missing or `null` field keeps
/// the platform's default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quotas {
    #[serde(default)]
    pub apps: Option<u64>,
    #[serde(default)]
    pub instances: Option<u64>,
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    #[serde(default)]
    pub builds: Option<u64>,
}

/// What an account uses now, against its limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaUse {
    pub apps: u64,
    pub instances: u64,
    pub memory_bytes: u64,
    pub builds: u64,
}

/// An account as operators see it (`GET /v1/admin/accounts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminAccount {
    pub name: AccountName,
    pub is_admin: bool,
    pub suspended: bool,
    pub created_at: DateTime<Utc>,
    pub usage: QuotaUse,
    /// The limits in force (defaults with the account's overrides).
    pub limits: QuotaUse,
    /// The account's own overrides.
    pub overrides: Quotas,
}

/// An app as operators see it (`GET /v1/admin/apps`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminApp {
    pub name: AppName,
    pub owner: AccountName,
    pub stopped: bool,
    pub created_at: DateTime<Utc>,
}

/// One recorded change (`GET /v1/admin/audit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntryInfo {
    pub at: DateTime<Utc>,
    pub account: String,
    pub token_scope: String,
    pub action: String,
    #[serde(default)]
    pub target: Option<String>,
    pub status: u16,
}

/// The answer to a suspend or stop: what was done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminDone {
    pub message: String,
}
