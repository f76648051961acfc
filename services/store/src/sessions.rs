//! The web dashboard's sign-in sessions. A session id is 32 random bytes, handed to the browser once (as a
//! cookie) and stored as its SHA-256 only; each session carries its own random CSRF token. Expiry is checked
//! here, on every lookup, in Rust (no database date functions, so the same SQL runs on SQLite and
//! PostgreSQL); an expired session found on lookup is deleted.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use vocabulary::AccountId;

use crate::rows::{self, now, time_text};
use crate::{Account, Store, StoreError};

/// A new session, as made by [`Store::create_session`]: the only time its id exists in clear.
#[derive(Clone, PartialEq, Eq)]
pub struct NewSession {
    /// Goes into the browser's cookie; never logged.
    pub id: String,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A live session found by its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub account: Account,
    /// What every state-changing request made with this session must echo (`X-CSRF-Token`).
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

fn random_hex() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

fn id_hash(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

fn session_from_row(row: &AnyRow) -> Result<Session, StoreError> {
    use sqlx::Row;
    Ok(Session {
        account: crate::accounts::account_from_row(row)?,
        csrf_token: row.try_get("csrf_token")?,
        expires_at: rows::time(row, "expires_at")?,
    })
}

impl Store {
    /// Starts a session for `account` that lasts `lifetime`.
    pub async fn create_session(
        &self,
        account: AccountId,
        lifetime: chrono::Duration,
    ) -> Result<NewSession, StoreError> {
        let created_at = now();
        let session = NewSession {
            id: random_hex(),
            csrf_token: random_hex(),
            expires_at: created_at + lifetime,
        };
        sqlx::query(
            "INSERT INTO dashboard_sessions (id_sha256, account_id, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id_hash(&session.id))
        .bind(account.to_string())
        .bind(&session.csrf_token)
        .bind(time_text(created_at))
        .bind(time_text(session.expires_at))
        .execute(&self.pool)
        .await?;
        Ok(session)
    }

    /// The live session with this clear-text id, if any. An expired one is deleted and not returned.
    pub async fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query(
            "SELECT a.id, a.name, a.is_admin, a.created_at, s.csrf_token, s.expires_at \
             FROM dashboard_sessions s JOIN accounts a ON a.id = s.account_id WHERE s.id_sha256 = $1",
        )
        .bind(id_hash(id))
        .fetch_optional(&self.pool)
        .await?;
        let Some(session) = row.as_ref().map(session_from_row).transpose()? else {
            return Ok(None);
        };
        if session.expires_at <= Utc::now() {
            self.delete_session(id).await?;
            return Ok(None);
        }
        Ok(Some(session))
    }

    /// Deletes every session that has expired; answers how many. Stored times are RFC 3339 UTC text of one
    /// fixed width (`rows::time_text`), so comparing them as text orders them in time, in any database.
    pub async fn delete_expired_sessions(&self) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM dashboard_sessions WHERE expires_at <= $1")
            .bind(time_text(now()))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Ends the session with this clear-text id (signing out). True when there was one.
    pub async fn delete_session(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM dashboard_sessions WHERE id_sha256 = $1")
            .bind(id_hash(id))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_hex_and_stored_hashed() {
        let a = random_hex();
        assert_eq!(a.len(), 64);
        assert_ne!(a, random_hex());
        assert_ne!(id_hash(&a), a);
        assert!(!format!(
            "{:?}",
            NewSession {
                id: a.clone(),
                csrf_token: "c".into(),
                expires_at: now()
            }
        )
        .contains(&a));
    }
}
