//! Apps, each owned by one account. App names are unique across the whole platform (they are host names).

use sqlx::sqlite::SqliteRow;
use vocabulary::{AccountId, AppId, AppName};

use crate::rows::{self, now, time_text};
use crate::{App, Store, StoreError};

const APP_COLUMNS: &str = "id, name, account_id, created_at";

fn app_from_row(row: &SqliteRow) -> Result<App, StoreError> {
    Ok(App {
        id: rows::parsed(row, "id")?,
        name: rows::parsed(row, "name")?,
        owner: rows::parsed(row, "account_id")?,
        created_at: rows::time(row, "created_at")?,
    })
}

impl Store {
    /// Fails with `StoreError::Conflict` if the name is taken by anyone.
    pub async fn create_app(&self, owner: AccountId, name: &AppName) -> Result<App, StoreError> {
        let app = App {
            id: AppId::new(),
            name: name.clone(),
            owner,
            created_at: now(),
        };
        sqlx::query("INSERT INTO apps (id, name, account_id, created_at) VALUES (?, ?, ?, ?)")
            .bind(app.id.to_string())
            .bind(name.as_str())
            .bind(owner.to_string())
            .bind(time_text(app.created_at))
            .execute(&self.pool)
            .await
            .map_err(|e| StoreError::conflict_on_unique(e, || format!("app {name}")))?;
        Ok(app)
    }

    /// The app by name, only if `owner` owns it (so other tenants cannot tell it exists).
    pub async fn app_owned_by(&self, owner: AccountId, name: &AppName) -> Result<Option<App>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {APP_COLUMNS} FROM apps WHERE name = ? AND account_id = ?"
        ))
        .bind(name.as_str())
        .bind(owner.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(app_from_row).transpose()
    }

    pub async fn app(&self, id: AppId) -> Result<Option<App>, StoreError> {
        let row = sqlx::query(&format!("SELECT {APP_COLUMNS} FROM apps WHERE id = ?"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(app_from_row).transpose()
    }

    /// The app by name whoever owns it: for the router and the controller, never for answering a tenant.
    pub async fn app_by_name(&self, name: &AppName) -> Result<Option<App>, StoreError> {
        let row = sqlx::query(&format!("SELECT {APP_COLUMNS} FROM apps WHERE name = ?"))
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(app_from_row).transpose()
    }

    /// The apps `owner` owns, by name.
    pub async fn apps_of(&self, owner: AccountId) -> Result<Vec<App>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {APP_COLUMNS} FROM apps WHERE account_id = ? ORDER BY name"
        ))
        .bind(owner.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(app_from_row).collect()
    }

    /// Every app, by name.
    pub async fn all_apps(&self) -> Result<Vec<App>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {APP_COLUMNS} FROM apps ORDER BY name"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(app_from_row).collect()
    }

    /// Deletes the app and, by cascade, its releases, formation and instance rows.
    pub async fn delete_app(&self, id: AppId) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM apps WHERE id = ?")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
