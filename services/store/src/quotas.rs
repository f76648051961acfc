//! Per-account quota overrides and what an account uses now. Which limit applies and whether a change fits
//! is decided by the controller's pure `quota` module, not here.

use sqlx::Row;
use vocabulary::AccountId;

use crate::rows::to_i64;
use crate::{Store, StoreError};

/// An account's own limits; `None` keeps the platform's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaOverrides {
    pub apps: Option<u64>,
    pub instances: Option<u64>,
    pub memory_bytes: Option<u64>,
    pub builds: Option<u64>,
}

/// What an account uses now: apps it owns, instances its formations ask for, and their memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaUsage {
    pub apps: u64,
    pub instances: u64,
    pub memory_bytes: u64,
}

fn unsigned_opt(row: &sqlx::any::AnyRow, column: &str) -> Result<Option<u64>, StoreError> {
    let value: Option<i64> = row.try_get(column)?;
    value
        .map(|v| {
            u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("column {column} = {v} is negative")))
        })
        .transpose()
}

fn to_i64_opt(value: Option<u64>, what: &'static str) -> Result<Option<i64>, StoreError> {
    value.map(|v| to_i64(v, what)).transpose()
}

fn non_negative(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} = {value} is negative")))
}

impl Store {
    /// The account's overrides (all `None` when it has none).
    pub async fn quota_overrides(&self, account: AccountId) -> Result<QuotaOverrides, StoreError> {
        let row = sqlx::query(
            "SELECT max_apps, max_instances, max_memory_bytes, max_builds FROM account_quotas \
             WHERE account_id = $1",
        )
        .bind(account.to_string())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(QuotaOverrides::default());
        };
        Ok(QuotaOverrides {
            apps: unsigned_opt(&row, "max_apps")?,
            instances: unsigned_opt(&row, "max_instances")?,
            memory_bytes: unsigned_opt(&row, "max_memory_bytes")?,
            builds: unsigned_opt(&row, "max_builds")?,
        })
    }

    /// Replaces the account's overrides.
    pub async fn set_quota_overrides(
        &self,
        account: AccountId,
        overrides: QuotaOverrides,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO account_quotas (account_id, max_apps, max_instances, max_memory_bytes, max_builds) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_id) DO UPDATE SET \
             max_apps = excluded.max_apps, max_instances = excluded.max_instances, \
             max_memory_bytes = excluded.max_memory_bytes, max_builds = excluded.max_builds",
        )
        .bind(account.to_string())
        .bind(to_i64_opt(overrides.apps, "app quota")?)
        .bind(to_i64_opt(overrides.instances, "instance quota")?)
        .bind(to_i64_opt(overrides.memory_bytes, "memory quota")?)
        .bind(to_i64_opt(overrides.builds, "build quota")?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// What the account uses: the apps it owns and the instances (and memory) their formations ask for,
    /// stopped apps included (starting them again must not exceed the quota).
    pub async fn quota_usage(&self, account: AccountId) -> Result<QuotaUsage, StoreError> {
        let apps: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM apps WHERE account_id = $1")
            .bind(account.to_string())
            .fetch_one(&self.pool)
            .await?;
        // CAST: PostgreSQL's SUM of BIGINT is NUMERIC.
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(f.quantity), 0) AS BIGINT) AS instances, \
             CAST(COALESCE(SUM(f.quantity * f.memory_bytes), 0) AS BIGINT) AS memory \
             FROM formations f JOIN apps a ON a.id = f.app_id WHERE a.account_id = $1",
        )
        .bind(account.to_string())
        .fetch_one(&self.pool)
        .await?;
        Ok(QuotaUsage {
            apps: non_negative(apps, "app count")?,
            instances: non_negative(row.try_get("instances")?, "instance count")?,
            memory_bytes: non_negative(row.try_get("memory")?, "memory")?,
        })
    }
}
