//! Releases: immutable, numbered v1, v2, ... within their app.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use vocabulary::{AppId, ReleaseId, ReleaseVersion};

use crate::rows::{self, now, time_text};
use crate::{NewRelease, Release, ReleaseKind, Store, StoreError};

const RELEASE_COLUMNS: &str =
    "id, app_id, version, kind, image_digest, processes, config, description, created_by, created_at, \
     health_checks";

fn release_from_row(row: &AnyRow) -> Result<Release, StoreError> {
    Ok(Release {
        id: rows::parsed(row, "id")?,
        app: rows::parsed(row, "app_id")?,
        version: ReleaseVersion(rows::unsigned(row, "version")?),
        kind: rows::parsed(row, "kind")?,
        image_digest: sqlx::Row::try_get(row, "image_digest")?,
        processes: rows::json(row, "processes")?,
        config: rows::json(row, "config")?,
        description: sqlx::Row::try_get(row, "description")?,
        created_by: rows::parsed(row, "created_by")?,
        created_at: rows::time(row, "created_at")?,
        health_checks: match sqlx::Row::try_get::<Option<String>, _>(row, "health_checks")? {
            Some(text) => serde_json::from_str(&text)
                .map_err(|e| StoreError::Corrupt(format!("column health_checks: {e}")))?,
            None => BTreeMap::new(),
        },
    })
}

impl Store {
    /// Creates the next release of a build (see [`Store::create_release_of_kind`]).
    pub async fn create_release(&self, new: NewRelease) -> Result<Release, StoreError> {
        self.create_release_of_kind(new, ReleaseKind::Build).await
    }

    /// Creates the next release (version = latest + 1, v1 for the first) in one transaction. The first
    /// release takes over config vars set before it ([`Store::pending_config`]) under its own, and clears them.
    pub async fn create_release_of_kind(
        &self,
        new: NewRelease,
        kind: ReleaseKind,
    ) -> Result<Release, StoreError> {
        self.create_release_with_checks(new, kind, BTreeMap::new()).await
    }

    /// [`Store::create_release_of_kind`] of a release that declared `health_checks` (its tree's app.json),
    /// stored in the same transaction, so that no instance of it is ever placed without them.
    pub async fn create_release_with_checks(
        &self,
        mut new: NewRelease,
        kind: ReleaseKind,
        health_checks: BTreeMap<vocabulary::ProcessType, agent_contract::HealthCheck>,
    ) -> Result<Release, StoreError> {
        let mut tx = self.begin_write().await?;
        // The app's row is the per-app release lock on PostgreSQL: a second release of the same app waits here
        // until this one commits, then reads its version (SQLite's write lock already serializes them).
        self.lock_app(&mut tx, new.app).await?;
        let pending: Option<String> = sqlx::query_scalar(
            "SELECT pending_config FROM apps WHERE id = $1 \
             AND NOT EXISTS (SELECT 1 FROM releases WHERE app_id = $1)",
        )
        .bind(new.app.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .flatten();
        if let Some(pending) = pending {
            let pending: BTreeMap<String, String> = serde_json::from_str(&pending)
                .map_err(|e| StoreError::Corrupt(format!("column pending_config: {e}")))?;
            for (name, value) in pending {
                new.config.entry(name).or_insert(value);
            }
            sqlx::query("UPDATE apps SET pending_config = NULL WHERE id = $1")
                .bind(new.app.to_string())
                .execute(&mut *tx)
                .await?;
        }
        let id = ReleaseId::new();
        let created_at = now();
        let processes = serde_json::to_string(&new.processes)
            .map_err(|e| StoreError::Corrupt(format!("release processes do not serialize: {e}")))?;
        let config = serde_json::to_string(&new.config)
            .map_err(|e| StoreError::Corrupt(format!("release config does not serialize: {e}")))?;
        let checks = if health_checks.is_empty() {
            None
        } else {
            Some(
                serde_json::to_string(&health_checks)
                    .map_err(|e| StoreError::Corrupt(format!("health checks do not serialize: {e}")))?,
            )
        };
        // One statement picks the number and inserts, so two deploys of the same app cannot both read the same
        // latest version (SQLite runs a statement atomically, PostgreSQL holds the app's row lock taken above; UNIQUE (app_id,
        // version) backs this up).
        let version: i64 = sqlx::query_scalar(
            "INSERT INTO releases (id, app_id, version, image_digest, processes, config, description, \
                                   created_by, created_at, kind, health_checks) \
             SELECT $1, $2, COALESCE(MAX(version), 0) + 1, $3, $4, $5, $6, $7, $8, $9, $10 \
             FROM releases WHERE app_id = $2 \
             RETURNING version",
        )
        .bind(id.to_string())
        .bind(new.app.to_string())
        .bind(&new.image_digest)
        .bind(processes)
        .bind(config)
        .bind(&new.description)
        .bind(new.created_by.to_string())
        .bind(time_text(created_at))
        .bind(kind.as_str())
        .bind(checks)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        let version = u32::try_from(version)
            .map_err(|_| StoreError::Corrupt(format!("release version {version} is out of range")))?;
        Ok(Release {
            id,
            app: new.app,
            version: ReleaseVersion(version),
            kind,
            image_digest: new.image_digest,
            processes: new.processes,
            config: new.config,
            description: new.description,
            created_by: new.created_by,
            created_at,
            health_checks,
        })
    }

    pub async fn latest_release(&self, app: AppId) -> Result<Option<Release>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {RELEASE_COLUMNS} FROM releases WHERE app_id = $1 ORDER BY version DESC LIMIT 1"
        ))
        .bind(app.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(release_from_row).transpose()
    }

    pub async fn release(&self, id: ReleaseId) -> Result<Option<Release>, StoreError> {
        let row = sqlx::query(&format!("SELECT {RELEASE_COLUMNS} FROM releases WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(release_from_row).transpose()
    }

    /// Newest first.
    pub async fn releases(&self, app: AppId) -> Result<Vec<Release>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {RELEASE_COLUMNS} FROM releases WHERE app_id = $1 ORDER BY version DESC"
        ))
        .bind(app.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(release_from_row).collect()
    }

    pub async fn release_by_version(
        &self,
        app: AppId,
        version: ReleaseVersion,
    ) -> Result<Option<Release>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {RELEASE_COLUMNS} FROM releases WHERE app_id = $1 AND version = $2"
        ))
        .bind(app.to_string())
        .bind(i64::from(version.0))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(release_from_row).transpose()
    }
}

impl Store {
    /// Config vars set before the app's first release (empty once it has one, or for a missing app).
    pub async fn pending_config(&self, app: AppId) -> Result<BTreeMap<String, String>, StoreError> {
        let text: Option<String> = sqlx::query_scalar("SELECT pending_config FROM apps WHERE id = $1")
            .bind(app.to_string())
            .fetch_optional(&self.pool)
            .await?
            .flatten();
        text.map(|t| {
            serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("column pending_config: {e}")))
        })
        .transpose()
        .map(Option::unwrap_or_default)
    }

    /// Replaces the config kept for the app's first release. Returns false, changing nothing, when the app
    /// already has a release (its config then lives in releases: make a new one instead).
    pub async fn set_pending_config(
        &self,
        app: AppId,
        config: &BTreeMap<String, String>,
    ) -> Result<bool, StoreError> {
        let text = serde_json::to_string(config)
            .map_err(|e| StoreError::Corrupt(format!("config does not serialize: {e}")))?;
        // Under the per-app release lock, so that a first release being made at the same time either takes
        // these vars or makes this fail; never lets them be set after it read them.
        let mut tx = self.begin_write().await?;
        self.lock_app(&mut tx, app).await?;
        let done = sqlx::query(
            "UPDATE apps SET pending_config = $1 WHERE id = $2 \
             AND NOT EXISTS (SELECT 1 FROM releases WHERE app_id = $2)",
        )
        .bind(text)
        .bind(app.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Takes the per-app lock that orders release making on PostgreSQL (the app's row, until `tx` ends); on
    /// SQLite, [`Store::begin_write`]'s write lock already orders them.
    async fn lock_app(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        app: AppId,
    ) -> Result<(), StoreError> {
        if self.backend == crate::Backend::Postgres {
            sqlx::query("SELECT id FROM apps WHERE id = $1 FOR UPDATE")
                .bind(app.to_string())
                .fetch_optional(&mut **tx)
                .await?;
        }
        Ok(())
    }
}
