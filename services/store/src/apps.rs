//! Apps, each owned by one account. App names are unique across the whole platform (they are host names).

use sqlx::any::AnyRow;
use vocabulary::{AccountId, AppId, AppName, DeployStrategy};

use crate::rows::{self, now, time_text};
use std::collections::HashMap;

use crate::{App, RouterSettings, Store, StoreError};

const APP_COLUMNS: &str = "id, name, account_id, created_at";

pub(crate) fn app_from_row(row: &AnyRow) -> Result<App, StoreError> {
    Ok(App {
        id: rows::parsed(row, "id")?,
        name: rows::parsed(row, "name")?,
        owner: rows::parsed(row, "account_id")?,
        created_at: rows::time(row, "created_at")?,
    })
}

fn settings_from_row(row: &AnyRow) -> Result<(AppId, RouterSettings), StoreError> {
    use sqlx::Row;
    let timeout: Option<i64> = row.try_get("first_byte_timeout_secs")?;
    let first_byte_timeout_secs = timeout
        .map(|t| {
            u32::try_from(t).map_err(|_| {
                StoreError::Corrupt(format!("column first_byte_timeout_secs = {t} is out of range"))
            })
        })
        .transpose()?;
    Ok((
        rows::parsed(row, "id")?,
        RouterSettings {
            redirect_https: rows::flag(row, "redirect_https")?,
            first_byte_timeout_secs,
        },
    ))
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
        sqlx::query("INSERT INTO apps (id, name, account_id, created_at) VALUES ($1, $2, $3, $4)")
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
            "SELECT {APP_COLUMNS} FROM apps WHERE name = $1 AND account_id = $2"
        ))
        .bind(name.as_str())
        .bind(owner.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(app_from_row).transpose()
    }

    pub async fn app(&self, id: AppId) -> Result<Option<App>, StoreError> {
        let row = sqlx::query(&format!("SELECT {APP_COLUMNS} FROM apps WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(app_from_row).transpose()
    }

    /// The app by name whoever owns it: for the router and the controller, never for answering a tenant.
    pub async fn app_by_name(&self, name: &AppName) -> Result<Option<App>, StoreError> {
        let row = sqlx::query(&format!("SELECT {APP_COLUMNS} FROM apps WHERE name = $1"))
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(app_from_row).transpose()
    }

    /// The apps `owner` owns, by name.
    pub async fn apps_of(&self, owner: AccountId) -> Result<Vec<App>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {APP_COLUMNS} FROM apps WHERE account_id = $1 ORDER BY name"
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

    /// The app's router settings (defaults for an app that does not exist).
    pub async fn router_settings(&self, id: AppId) -> Result<RouterSettings, StoreError> {
        let row = sqlx::query("SELECT id, redirect_https, first_byte_timeout_secs FROM apps WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .as_ref()
            .map(settings_from_row)
            .transpose()?
            .map(|(_, settings)| settings)
            .unwrap_or_default())
    }

    /// Every app's router settings: for the route table.
    pub async fn all_router_settings(&self) -> Result<HashMap<AppId, RouterSettings>, StoreError> {
        let rows = sqlx::query("SELECT id, redirect_https, first_byte_timeout_secs FROM apps")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(settings_from_row).collect()
    }

    pub async fn set_router_settings(&self, id: AppId, settings: RouterSettings) -> Result<(), StoreError> {
        sqlx::query("UPDATE apps SET redirect_https = $1, first_byte_timeout_secs = $2 WHERE id = $3")
            .bind(rows::flag_value(settings.redirect_https))
            .bind(settings.first_byte_timeout_secs.map(i64::from))
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The app's build time limit in seconds; `None` is the platform's default (also for a missing app).
    pub async fn build_timeout_secs(&self, id: AppId) -> Result<Option<u32>, StoreError> {
        self.app_secs(id, SecsColumn::BuildTimeout).await
    }

    pub async fn set_build_timeout_secs(&self, id: AppId, secs: Option<u32>) -> Result<(), StoreError> {
        self.set_app_secs(id, SecsColumn::BuildTimeout, secs).await
    }

    /// The app's grace between SIGTERM and SIGKILL when an instance stops, in seconds; `None` is the agent's
    /// default (also for a missing app).
    pub async fn stop_grace_secs(&self, id: AppId) -> Result<Option<u32>, StoreError> {
        self.app_secs(id, SecsColumn::StopGrace).await
    }

    pub async fn set_stop_grace_secs(&self, id: AppId, secs: Option<u32>) -> Result<(), StoreError> {
        self.set_app_secs(id, SecsColumn::StopGrace, secs).await
    }

    /// Every app's stop grace that is set (the controller puts it in each instance's spec).
    pub async fn stop_graces(&self) -> Result<HashMap<AppId, u32>, StoreError> {
        self.all_app_secs(SecsColumn::StopGrace).await
    }

    /// The app's boot timeout (R10) in seconds; `None` is the platform's default (also for a missing app).
    pub async fn boot_timeout_secs(&self, id: AppId) -> Result<Option<u32>, StoreError> {
        self.app_secs(id, SecsColumn::BootTimeout).await
    }

    pub async fn set_boot_timeout_secs(&self, id: AppId, secs: Option<u32>) -> Result<(), StoreError> {
        self.set_app_secs(id, SecsColumn::BootTimeout, secs).await
    }

    /// Every app's boot timeout that is set (the controller puts it in each instance's spec).
    pub async fn boot_timeouts(&self) -> Result<HashMap<AppId, u32>, StoreError> {
        self.all_app_secs(SecsColumn::BootTimeout).await
    }

    /// How long a deploy of the app waits for its new instances before rolling back, in seconds; `None` is the
    /// platform's default (also for a missing app).
    pub async fn deploy_timeout_secs(&self, id: AppId) -> Result<Option<u32>, StoreError> {
        self.app_secs(id, SecsColumn::DeployTimeout).await
    }

    pub async fn set_deploy_timeout_secs(&self, id: AppId, secs: Option<u32>) -> Result<(), StoreError> {
        self.set_app_secs(id, SecsColumn::DeployTimeout, secs).await
    }

    /// The app's own health check path (`berth apps update --health-check`), which wins over app.json's.
    pub async fn health_check_path(&self, id: AppId) -> Result<Option<String>, StoreError> {
        let path: Option<Option<String>> =
            sqlx::query_scalar("SELECT health_check_path FROM apps WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?;
        Ok(path.flatten())
    }

    pub async fn set_health_check_path(&self, id: AppId, path: Option<&str>) -> Result<(), StoreError> {
        sqlx::query("UPDATE apps SET health_check_path = $1 WHERE id = $2")
            .bind(path)
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every app's own health check path that is set.
    pub async fn health_check_paths(&self) -> Result<HashMap<AppId, String>, StoreError> {
        use sqlx::Row;
        let rows = sqlx::query("SELECT id, health_check_path FROM apps WHERE health_check_path IS NOT NULL")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((rows::parsed(row, "id")?, row.try_get("health_check_path")?)))
            .collect()
    }

    /// How deploys replace the app's instances (the default for a missing app).
    pub async fn deploy_strategy(&self, id: AppId) -> Result<DeployStrategy, StoreError> {
        Ok(self.deploy_strategies().await?.remove(&id).unwrap_or_default())
    }

    pub async fn set_deploy_strategy(&self, id: AppId, strategy: DeployStrategy) -> Result<(), StoreError> {
        // The default is stored as NULL, so that a later change of default reaches apps that never chose.
        let stored = (strategy != DeployStrategy::default()).then_some(strategy.as_str());
        sqlx::query("UPDATE apps SET deploy_strategy = $1 WHERE id = $2")
            .bind(stored)
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every app's deploy strategy that is not the default.
    pub async fn deploy_strategies(&self) -> Result<HashMap<AppId, DeployStrategy>, StoreError> {
        use sqlx::Row;
        let rows = sqlx::query("SELECT id, deploy_strategy FROM apps WHERE deploy_strategy IS NOT NULL")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let text: String = row.try_get("deploy_strategy")?;
                let strategy = text
                    .parse()
                    .map_err(|e| StoreError::Corrupt(format!("column deploy_strategy: {e}")))?;
                Ok((rows::parsed(row, "id")?, strategy))
            })
            .collect()
    }

    /// Every app's value of `column` that is set.
    async fn all_app_secs(&self, column: SecsColumn) -> Result<HashMap<AppId, u32>, StoreError> {
        use sqlx::Row;
        let name = column.name();
        let rows = sqlx::query(&format!("SELECT id, {name} FROM apps WHERE {name} IS NOT NULL"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let secs: i64 = row.try_get(name)?;
                Ok((rows::parsed(row, "id")?, secs_of(column, secs)?))
            })
            .collect()
    }

    async fn app_secs(&self, id: AppId, column: SecsColumn) -> Result<Option<u32>, StoreError> {
        use sqlx::Row;
        let name = column.name();
        let row = sqlx::query(&format!("SELECT {name} FROM apps WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let secs: Option<i64> = row.try_get(name)?;
        secs.map(|t| secs_of(column, t)).transpose()
    }

    async fn set_app_secs(&self, id: AppId, column: SecsColumn, secs: Option<u32>) -> Result<(), StoreError> {
        sqlx::query(&format!("UPDATE apps SET {} = $1 WHERE id = $2", column.name()))
            .bind(secs.map(i64::from))
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Whether the app is stopped (`berth apps stop`): it keeps its formation but runs nothing.
    pub async fn app_stopped(&self, id: AppId) -> Result<bool, StoreError> {
        let stopped: Option<i64> = sqlx::query_scalar("SELECT stopped FROM apps WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(stopped.is_some_and(|s| s != 0))
    }

    /// Every stopped app (for the controller's plan, once a pass).
    pub async fn stopped_apps(&self) -> Result<std::collections::HashSet<AppId>, StoreError> {
        let rows = sqlx::query("SELECT id FROM apps WHERE stopped = 1")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| rows::parsed(row, "id")).collect()
    }

    pub async fn set_app_stopped(&self, id: AppId, stopped: bool) -> Result<(), StoreError> {
        sqlx::query("UPDATE apps SET stopped = $1 WHERE id = $2")
            .bind(rows::flag_value(stopped))
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes the app and, by cascade, its releases, formation and instance rows.
    pub async fn delete_app(&self, id: AppId) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM apps WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// The apps columns that hold a number of seconds (a closed set: column names are not bound parameters).
#[derive(Clone, Copy)]
enum SecsColumn {
    BuildTimeout,
    StopGrace,
    BootTimeout,
    DeployTimeout,
}

impl SecsColumn {
    fn name(self) -> &'static str {
        match self {
            Self::BuildTimeout => "build_timeout_secs",
            Self::StopGrace => "stop_grace_secs",
            Self::BootTimeout => "boot_timeout_secs",
            Self::DeployTimeout => "deploy_timeout_secs",
        }
    }
}

fn secs_of(column: SecsColumn, value: i64) -> Result<u32, StoreError> {
    u32::try_from(value)
        .map_err(|_| StoreError::Corrupt(format!("column {} = {value} is out of range", column.name())))
}
