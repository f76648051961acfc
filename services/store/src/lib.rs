//! Berth's durable state: accounts, tokens (hashed), apps, releases, formations, nodes and instance placements,
//! kept in SQLite through sqlx (PostgreSQL later, behind the same functions).
//!
//! This is the only crate that runs SQL. It validates nothing that the vocabulary types already prove, decides
//! nothing (no scheduling, no permissions beyond "who owns this app"), and knows nothing of HTTP.
//! The control plane's crates (`api`, `controller`, `git-receive`, `berth`) depend on it; the node agent and
//! router never do.

mod error;
mod models;

pub use error::StoreError;
pub use models::*;

use std::collections::BTreeMap;
use std::path::Path;

use agent_contract::InstanceStatus;
use sqlx::sqlite::SqlitePool;
use vocabulary::{AccountId, AccountName, AppId, AppName, InstanceId, NodeId, ProcessType, ReleaseVersion};

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if missing) `path` and runs pending migrations from `migrations/sqlite`.
    pub async fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        let _ = path;
        todo!()
    }

    // ---- accounts and tokens ----

    /// Creates an account and a first API token for it. Returns the account and the token in clear text (the
    /// only time it exists outside the caller). Fails with `StoreError::Conflict` if the name is taken.
    pub async fn create_account(&self, name: &AccountName, is_admin: bool) -> Result<(Account, String), StoreError> {
        let _ = (name, is_admin);
        todo!()
    }

    /// The account a clear-text token belongs to (looked up by its SHA-256), if any.
    pub async fn account_for_token(&self, token: &str) -> Result<Option<Account>, StoreError> {
        let _ = token;
        todo!()
    }

    /// True when at least one admin account exists (first start makes one).
    pub async fn has_admin(&self) -> Result<bool, StoreError> {
        todo!()
    }

    // ---- apps ----

    /// Fails with `StoreError::Conflict` if the name is taken by anyone.
    pub async fn create_app(&self, owner: AccountId, name: &AppName) -> Result<App, StoreError> {
        let _ = (owner, name);
        todo!()
    }

    /// The app by name, only if `owner` owns it (so other tenants cannot tell it exists).
    pub async fn app_owned_by(&self, owner: AccountId, name: &AppName) -> Result<Option<App>, StoreError> {
        let _ = (owner, name);
        todo!()
    }

    pub async fn app(&self, id: AppId) -> Result<Option<App>, StoreError> {
        let _ = id;
        todo!()
    }

    pub async fn apps_of(&self, owner: AccountId) -> Result<Vec<App>, StoreError> {
        let _ = owner;
        todo!()
    }

    pub async fn all_apps(&self) -> Result<Vec<App>, StoreError> {
        todo!()
    }

    /// Deletes the app and, by cascade, its releases, formation and instance rows.
    pub async fn delete_app(&self, id: AppId) -> Result<(), StoreError> {
        let _ = id;
        todo!()
    }

    // ---- releases ----

    /// Creates the next release (version = latest + 1, v1 for the first) in one transaction.
    pub async fn create_release(&self, new: NewRelease) -> Result<Release, StoreError> {
        let _ = new;
        todo!()
    }

    pub async fn latest_release(&self, app: AppId) -> Result<Option<Release>, StoreError> {
        let _ = app;
        todo!()
    }

    pub async fn release(&self, id: vocabulary::ReleaseId) -> Result<Option<Release>, StoreError> {
        let _ = id;
        todo!()
    }

    /// Newest first.
    pub async fn releases(&self, app: AppId) -> Result<Vec<Release>, StoreError> {
        let _ = app;
        todo!()
    }

    pub async fn release_by_version(&self, app: AppId, version: ReleaseVersion) -> Result<Option<Release>, StoreError> {
        let _ = (app, version);
        todo!()
    }

    // ---- formation ----

    /// process type → quantity and memory per instance.
    pub async fn formation(&self, app: AppId) -> Result<BTreeMap<ProcessType, FormationEntry>, StoreError> {
        let _ = app;
        todo!()
    }

    /// Sets (inserts or updates) one process type's quantity; memory defaults to `default_memory_bytes` for a
    /// new row.
    pub async fn set_formation(
        &self,
        app: AppId,
        process_type: &ProcessType,
        quantity: u32,
        default_memory_bytes: u64,
    ) -> Result<(), StoreError> {
        let _ = (app, process_type, quantity, default_memory_bytes);
        todo!()
    }

    // ---- nodes ----

    /// Inserts or updates a node.
    pub async fn upsert_node(&self, node: &Node) -> Result<(), StoreError> {
        let _ = node;
        todo!()
    }

    pub async fn nodes(&self) -> Result<Vec<Node>, StoreError> {
        todo!()
    }

    // ---- instances (placements) ----

    pub async fn insert_instance(&self, instance: &Instance) -> Result<(), StoreError> {
        let _ = instance;
        todo!()
    }

    /// All instance rows, of every app (the scheduler plans over the whole platform).
    pub async fn all_instances(&self) -> Result<Vec<Instance>, StoreError> {
        todo!()
    }

    pub async fn instances_of_app(&self, app: AppId) -> Result<Vec<Instance>, StoreError> {
        let _ = app;
        todo!()
    }

    pub async fn instances_on_node(&self, node: NodeId) -> Result<Vec<Instance>, StoreError> {
        let _ = node;
        todo!()
    }

    /// Marks instances to be stopped (they stay listed until their node stops reporting them).
    pub async fn request_stop(&self, ids: &[InstanceId]) -> Result<(), StoreError> {
        let _ = ids;
        todo!()
    }

    /// Applies a node's full report: updates state, address, hostname and restarts of the instances it lists;
    /// deletes rows with `stop_requested` that it no longer lists. Returns true if anything changed.
    pub async fn apply_node_report(&self, node: NodeId, instances: &[InstanceStatus]) -> Result<bool, StoreError> {
        let _ = (node, instances);
        todo!()
    }
}
