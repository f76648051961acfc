//! Custom domains. A domain belongs to at most one app on the whole platform, whoever owns it.

use sqlx::any::AnyRow;
use vocabulary::{AppId, DomainName};

use crate::rows::{self, now, time_text};
use crate::{Domain, Store, StoreError};

fn domain_from_row(row: &AnyRow) -> Result<Domain, StoreError> {
    Ok(Domain {
        name: rows::parsed(row, "name")?,
        app: rows::parsed(row, "app_id")?,
        created_at: rows::time(row, "created_at")?,
    })
}

impl Store {
    /// Fails with `StoreError::Conflict` if any app (this one included) has the domain already.
    pub async fn add_domain(&self, app: AppId, name: &DomainName) -> Result<Domain, StoreError> {
        let domain = Domain {
            name: name.clone(),
            app,
            created_at: now(),
        };
        sqlx::query("INSERT INTO domains (name, app_id, created_at) VALUES ($1, $2, $3)")
            .bind(name.as_str())
            .bind(app.to_string())
            .bind(time_text(domain.created_at))
            .execute(&self.pool)
            .await
            .map_err(|e| StoreError::conflict_on_unique(e, || format!("domain {name}")))?;
        Ok(domain)
    }

    /// The app's domains, by name.
    pub async fn domains_of(&self, app: AppId) -> Result<Vec<Domain>, StoreError> {
        let rows =
            sqlx::query("SELECT name, app_id, created_at FROM domains WHERE app_id = $1 ORDER BY name")
                .bind(app.to_string())
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(domain_from_row).collect()
    }

    /// Every app's domains, by name: for the route table.
    pub async fn all_domains(&self) -> Result<Vec<Domain>, StoreError> {
        let rows = sqlx::query("SELECT name, app_id, created_at FROM domains ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(domain_from_row).collect()
    }

    /// Removes the domain if this app has it; false if it does not (whoever else may).
    pub async fn remove_domain(&self, app: AppId, name: &DomainName) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM domains WHERE name = $1 AND app_id = $2")
            .bind(name.as_str())
            .bind(app.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
