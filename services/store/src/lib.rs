//! Berth's durable state: accounts, tokens (hashed), the dashboard's sessions (hashed), apps, custom domains, TLS certificates, releases, formations, nodes,
//! instance placements and apps' events (announced to subscribers as they are recorded), kept in SQLite through sqlx (PostgreSQL later, behind the same functions).
//!
//! This is the only crate that runs SQL. It validates nothing that the vocabulary types already prove, decides
//! nothing (no scheduling, no permissions beyond "who owns this app"), and knows nothing of HTTP.
//! The control plane's crates (`api`, `controller`, `git-receive`, `berth`) depend on it; the node agent and
//! router never do.
//!
//! Queries are bound at run time (`sqlx::query`), not checked by the `query!` macros, so building needs no
//! database. Each concept's functions live in their own module as `impl Store` blocks.

mod accounts;
mod apps;
mod certificates;
mod domains;
mod error;
mod events;
mod formation;
mod instances;
mod models;
mod nodes;
mod passwords;
mod releases;
mod rows;
mod sessions;

pub use error::StoreError;
pub use events::MAX_EVENTS;
pub use models::*;
pub use passwords::{PASSWORD_MAX_BYTES, PASSWORD_MIN_CHARS};
pub use sessions::{NewSession, Session};

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// How long a statement waits for another connection's write lock before failing with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    /// Announces each recorded event ([`Store::subscribe_events`]).
    events: tokio::sync::broadcast::Sender<Event>,
}

impl Store {
    /// Opens (creating if missing) `path` and runs pending migrations from `migrations/sqlite`.
    pub async fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(|source| StoreError::Open {
                path: path.to_owned(),
                source,
            })?
            .filename(path)
            .create_if_missing(true)
            // WAL lets the API read while the controller writes; NORMAL sync is durable across process
            // crashes in WAL mode, and only a power loss can drop the last commits.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open {
                path: path.to_owned(),
                source,
            })?;
        sqlx::migrate!("../../migrations/sqlite").run(&pool).await?;
        tracing::debug!(path = %path.display(), "database open");
        Ok(Self {
            pool,
            events: events::announcer(),
        })
    }

    /// Closes every connection; later calls fail. Waits for running queries to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
