//! Leader election among control processes sharing one database: on PostgreSQL, a session advisory lock held
//! on a connection of the leader's own; on SQLite, the one process that opens the file always leads.
//!
//! No consensus of our own: PostgreSQL releases a session's advisory locks when the session ends, so a leader
//! that dies (or whose connection does) frees the lock for the next one. The holder must run
//! [`Leadership::check`] often and stop leading as soon as it fails.

use std::time::Duration;

use sqlx::AnyConnection;
use sqlx::{ConnectOptions, Connection};

use crate::{Backend, Store, StoreError};

/// The advisory lock key of the control plane's leader: "berth" in ASCII, so that it is recognisable in
/// `pg_locks` and unlikely to meet another application's key in a shared database.
pub const LEADER_LOCK_KEY: i64 = 0x62_65_72_74_68;

/// How long a check may take before leadership is counted as lost (a dead network can hang a query).
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Proof that this process leads; dropping it gives leadership up (its connection closes).
pub struct Leadership {
    /// The connection whose session holds the lock; `None` on SQLite.
    connection: Option<AnyConnection>,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("advisory_lock", &self.connection.is_some())
            .finish()
    }
}

impl Store {
    /// Tries to become the leader; `None` when another process leads. On PostgreSQL this opens a connection of
    /// its own (outside the pool) and takes `pg_try_advisory_lock(LEADER_LOCK_KEY)` on it; on SQLite it always
    /// succeeds.
    pub async fn try_lead(&self) -> Result<Option<Leadership>, StoreError> {
        if self.backend == Backend::Sqlite {
            return Ok(Some(Leadership { connection: None }));
        }
        let mut connection = self.options.connect().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(LEADER_LOCK_KEY)
            .fetch_one(&mut connection)
            .await?;
        if locked {
            Ok(Some(Leadership {
                connection: Some(connection),
            }))
        } else {
            connection.close().await?;
            Ok(None)
        }
    }
}

impl Leadership {
    /// Succeeds while this process still leads: a cheap query on the lock's connection (its session holds the
    /// lock for as long as it lives). An error means leadership is lost for good; drop this and try to lead
    /// again later.
    pub async fn check(&mut self) -> Result<(), StoreError> {
        let Some(connection) = self.connection.as_mut() else {
            return Ok(());
        };
        match tokio::time::timeout(CHECK_TIMEOUT, connection.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::LeadershipLost(e)),
            Err(_) => Err(StoreError::LeadershipLost(sqlx::Error::PoolTimedOut)),
        }
    }

    /// Gives leadership up at once (another process can take it on its next try).
    pub async fn release(mut self) -> Result<(), StoreError> {
        if let Some(connection) = self.connection.take() {
            connection.close().await?;
        }
        Ok(())
    }
}
