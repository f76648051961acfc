//! The audit log: one row per change (API request that is not a read, git push, admin action): when, who,
//! with which token scope, what (method and route template), on what, and the outcome. Never request bodies.

use sqlx::Row;

use crate::rows::{self, now, time_text};
use crate::{Store, StoreError};

/// One change to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEntry {
    /// The account name.
    pub account: String,
    /// `full` or `read`.
    pub token_scope: String,
    /// `POST /v1/apps/{name}/scale`, `git push`, ...
    pub action: String,
    /// `app NAME`, `account NAME`, or none.
    pub target: Option<String>,
    /// The HTTP status answered.
    pub status: u16,
}

/// A recorded change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: chrono::DateTime<chrono::Utc>,
    pub account: String,
    pub token_scope: String,
    pub action: String,
    pub target: Option<String>,
    pub status: u16,
}

/// The most entries one query returns.
pub const MAX_AUDIT_ENTRIES: u32 = 1000;

impl Store {
    pub async fn record_audit(&self, entry: &NewAuditEntry) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (id, at, account, token_scope, action, target, status) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(time_text(now()))
        .bind(&entry.account)
        .bind(&entry.token_scope)
        .bind(&entry.action)
        .bind(&entry.target)
        .bind(i64::from(entry.status))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The newest `limit` entries (at most [`MAX_AUDIT_ENTRIES`]), newest first, of one account or all.
    pub async fn audit_log(&self, account: Option<&str>, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let limit = i64::from(limit.min(MAX_AUDIT_ENTRIES));
        let rows = sqlx::query(
            "SELECT at, account, token_scope, action, target, status FROM audit_log \
             WHERE ($1 IS NULL OR account = $1) ORDER BY at DESC, id DESC LIMIT $2",
        )
        .bind(account)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditEntry {
                    at: rows::time(row, "at")?,
                    account: row.try_get("account")?,
                    token_scope: row.try_get("token_scope")?,
                    action: row.try_get("action")?,
                    target: row.try_get("target")?,
                    status: rows::unsigned(row, "status")?,
                })
            })
            .collect()
    }
}
