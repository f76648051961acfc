//! Releases: immutable, numbered v1, v2, ... within their app.

use sqlx::sqlite::SqliteRow;
use vocabulary::{AppId, ReleaseId, ReleaseVersion};

use crate::rows::{self, now, time_text};
use crate::{NewRelease, Release, Store, StoreError};

const RELEASE_COLUMNS: &str =
    "id, app_id, version, image_digest, processes, config, description, created_by, created_at";

fn release_from_row(row: &SqliteRow) -> Result<Release, StoreError> {
    Ok(Release {
        id: rows::parsed(row, "id")?,
        app: rows::parsed(row, "app_id")?,
        version: ReleaseVersion(rows::unsigned(row, "version")?),
        image_digest: sqlx::Row::try_get(row, "image_digest")?,
        processes: rows::json(row, "processes")?,
        config: rows::json(row, "config")?,
        description: sqlx::Row::try_get(row, "description")?,
        created_by: rows::parsed(row, "created_by")?,
        created_at: rows::time(row, "created_at")?,
    })
}

impl Store {
    /// Creates the next release (version = latest + 1, v1 for the first) in one transaction.
    pub async fn create_release(&self, new: NewRelease) -> Result<Release, StoreError> {
        let id = ReleaseId::new();
        let created_at = now();
        let processes = serde_json::to_string(&new.processes)
            .map_err(|e| StoreError::Corrupt(format!("release processes do not serialize: {e}")))?;
        let config = serde_json::to_string(&new.config)
            .map_err(|e| StoreError::Corrupt(format!("release config does not serialize: {e}")))?;
        // One statement picks the number and inserts, so two deploys of the same app cannot both read the same
        // latest version (SQLite runs a statement atomically; UNIQUE (app_id, version) backs this up).
        let version: i64 = sqlx::query_scalar(
            "INSERT INTO releases (id, app_id, version, image_digest, processes, config, description, \
                                   created_by, created_at) \
             SELECT ?1, ?2, COALESCE(MAX(version), 0) + 1, ?3, ?4, ?5, ?6, ?7, ?8 \
             FROM releases WHERE app_id = ?2 \
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
        .fetch_one(&self.pool)
        .await?;
        let version = u32::try_from(version)
            .map_err(|_| StoreError::Corrupt(format!("release version {version} is out of range")))?;
        Ok(Release {
            id,
            app: new.app,
            version: ReleaseVersion(version),
            image_digest: new.image_digest,
            processes: new.processes,
            config: new.config,
            description: new.description,
            created_by: new.created_by,
            created_at,
        })
    }

    pub async fn latest_release(&self, app: AppId) -> Result<Option<Release>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {RELEASE_COLUMNS} FROM releases WHERE app_id = ? ORDER BY version DESC LIMIT 1"
        ))
        .bind(app.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(release_from_row).transpose()
    }

    pub async fn release(&self, id: ReleaseId) -> Result<Option<Release>, StoreError> {
        let row = sqlx::query(&format!("SELECT {RELEASE_COLUMNS} FROM releases WHERE id = ?"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(release_from_row).transpose()
    }

    /// Newest first.
    pub async fn releases(&self, app: AppId) -> Result<Vec<Release>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {RELEASE_COLUMNS} FROM releases WHERE app_id = ? ORDER BY version DESC"
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
            "SELECT {RELEASE_COLUMNS} FROM releases WHERE app_id = ? AND version = ?"
        ))
        .bind(app.to_string())
        .bind(i64::from(version.0))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(release_from_row).transpose()
    }
}
