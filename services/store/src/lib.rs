//! Berth's durable state: accounts, tokens (hashed, with scopes), the dashboard's sessions and passwords (hashed), collaborators, quotas, the audit log, apps, custom domains, TLS certificates, releases, formations, nodes,
//! instance placements and apps' events (announced to subscribers as they are recorded), kept in SQLite (the
//! embedded default) or PostgreSQL (several control processes sharing one database) through sqlx's `Any`
//! driver: one set of queries, one migrations folder per backend (`migrations/sqlite`, `migrations/postgres`,
//! kept in step by a test), and leader election ([`Store::try_lead`]) so one control process at a time reconciles.
//!
//! This is the only crate that runs SQL. It validates nothing that the vocabulary types already prove, decides
//! nothing (no scheduling, no permissions beyond "who owns this app"), and knows nothing of HTTP.
//! The control plane's crates (`api`, `controller`, `git-receive`, `berth`) depend on it; the node agent and
//! router never do.
//!
//! Queries are bound at run time (`sqlx::query`), not checked by the `query!` macros, so building needs no
//! database. Each concept's functions live in their own module as `impl Store` blocks. SQL written here must
//! run on both backends: `$1, $2, ...` placeholders, `ON CONFLICT`, `RETURNING`, booleans as INTEGER 0/1 read
//! through `rows::flag`, times as RFC 3339 text; where a transaction relies on one writer at a time, it takes
//! `Store::begin_write` and locks rows with `Store::for_update`.

mod access;
mod accounts;
mod apps;
mod audit;
mod certificates;
mod domains;
mod error;
mod events;
mod formation;
mod instances;
mod inventory;
mod leader;
mod models;
mod nodes;
mod passwords;
mod quotas;
mod releases;
mod rows;
mod sessions;
pub mod testing;

pub use access::{AppRole, Collaborator, TokenAccess, TokenInfo, TokenScope, TOKEN_ID_LEN};
pub use audit::{AuditEntry, NewAuditEntry, MAX_AUDIT_ENTRIES};
pub use error::StoreError;
pub use events::MAX_EVENTS;
pub use inventory::{NodeRecord, NodeRegistration, NodeRemoval, NodeState, PendingInstance};
pub use leader::Leadership;
pub use models::*;
pub use passwords::{PASSWORD_MAX_BYTES, PASSWORD_MIN_CHARS};
pub use quotas::{QuotaOverrides, QuotaUsage};
pub use sessions::{NewSession, Session};

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{AnyPool, ConnectOptions, Connection, Executor};

/// How long a statement waits for another connection's write lock before failing with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Which database a [`Store`] runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// One file, one control process (the default).
    Sqlite,
    /// Shared by several control processes; one of them leads ([`Store::try_lead`]).
    Postgres,
}

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// How to open a connection of our own (the leader's lock, the events listener); holds the password.
    options: std::sync::Arc<AnyConnectOptions>,
    /// Announces each recorded event ([`Store::subscribe_events`]).
    events: tokio::sync::broadcast::Sender<Event>,
    /// Tells this store's own event notifications from other processes' (PostgreSQL).
    origin: u64,
}

impl Store {
    /// Opens (creating if missing) `path` and runs pending migrations from `migrations/sqlite`.
    pub async fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        let open_error = |source| StoreError::Open {
            database: path.display().to_string(),
            source,
        };
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(open_error)?
            .filename(path)
            .create_if_missing(true)
            // WAL lets the API read while the controller writes; it is kept in the file, so setting it once
            // through a first connection holds for the pool's connections too.
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        options
            .connect()
            .await
            .map_err(open_error)?
            .close()
            .await
            .map_err(open_error)?;
        let url = options.to_url_lossy();
        let any = AnyConnectOptions::from_url(&url).map_err(open_error)?;
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // Per connection: NORMAL sync is durable across process crashes in WAL mode (only a power
                    // loss can drop the last commits); foreign keys are on by default in sqlx, said again here.
                    conn.execute(
                        format!(
                            "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {}",
                            BUSY_TIMEOUT.as_millis()
                        )
                        .as_str(),
                    )
                    .await?;
                    Ok(())
                })
            })
            .connect_with(any.clone())
            .await
            .map_err(open_error)?;
        sqlx::migrate!("../../migrations/sqlite").run(&pool).await?;
        tracing::debug!(path = %path.display(), "database open");
        Ok(Self::new(pool, Backend::Sqlite, any))
    }

    /// Opens the database at `url`: `sqlite:PATH` (or `sqlite://PATH`), or `postgres://...` (also
    /// `postgresql://`), and runs that backend's pending migrations. Errors never show the URL, which may hold
    /// a password.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let path = path.split('?').next().unwrap_or(path);
            return Self::open_sqlite(Path::new(path)).await;
        }
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(StoreError::UnknownBackend);
        }
        let open_error = |source| StoreError::Open {
            database: "postgres".to_owned(),
            source,
        };
        sqlx::any::install_default_drivers();
        let any = AnyConnectOptions::from_str(url).map_err(open_error)?;
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            // A connection that died with the server (a restart) is found out here and replaced, instead of
            // failing the caller's query.
            .test_before_acquire(true)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(any.clone())
            .await
            .map_err(open_error)?;
        sqlx::migrate!("../../migrations/postgres").run(&pool).await?;
        tracing::debug!("database open (postgres)");
        let store = Self::new(pool, Backend::Postgres, any);
        store.listen_for_events().await.map_err(|e| match e {
            StoreError::Database(source) => open_error(source),
            other => other,
        })?;
        Ok(store)
    }

    fn new(pool: AnyPool, backend: Backend, options: AnyConnectOptions) -> Self {
        Self {
            pool,
            backend,
            options: std::sync::Arc::new(options),
            events: events::announcer(),
            origin: rand::random(),
        }
    }

    /// Which database this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes every connection; later calls fail. Waits for running queries to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A transaction that reads and then writes rows another control process may write at the same time. On
    /// SQLite it takes the write lock before its first read (`BEGIN IMMEDIATE`); on PostgreSQL its reads must
    /// lock what they depend on with [`Store::for_update`].
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// What ends a `SELECT` inside [`Store::begin_write`] so that the rows it reads stay as read until commit
    /// (nothing on SQLite, whose write lock is already held).
    pub(crate) fn for_update(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }
}
