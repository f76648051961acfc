//! Formations: how many instances of each process type an app wants, and how much memory each gets.

use std::collections::BTreeMap;

use sqlx::Row;
use vocabulary::{AppId, ProcessType};

use crate::rows::{self, to_i64};
use crate::{FormationEntry, Store, StoreError};

impl Store {
    /// process type → quantity and memory per instance.
    pub async fn formation(&self, app: AppId) -> Result<BTreeMap<ProcessType, FormationEntry>, StoreError> {
        let rows =
            sqlx::query("SELECT process_type, quantity, memory_bytes FROM formations WHERE app_id = $1")
                .bind(app.to_string())
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|row| {
                let process_type: ProcessType = rows::parsed(row, "process_type")?;
                let entry = FormationEntry {
                    quantity: rows::unsigned(row, "quantity")?,
                    memory_bytes: rows::unsigned(row, "memory_bytes")?,
                };
                Ok((process_type, entry))
            })
            .collect()
    }

    /// Sets (inserts or updates) one process type's quantity; memory defaults to `default_memory_bytes` for a
    /// new row.
    pub async fn set_formation(
        &self,
        app: AppId,
        process_type: &ProcessType,
        quantity: u32,
        default_memory_bytes: u64,
    ) -> Result<(), StoreError> {
        let quantities = BTreeMap::from([(process_type.clone(), quantity)]);
        self.set_formations(app, &quantities, default_memory_bytes).await
    }

    /// Sets several process types' quantities at once: either all change or none does (a `berth scale web=2
    /// worker=1` is one change). Memory defaults to `default_memory_bytes` for new rows.
    pub async fn set_formations(
        &self,
        app: AppId,
        quantities: &BTreeMap<ProcessType, u32>,
        default_memory_bytes: u64,
    ) -> Result<(), StoreError> {
        let memory = to_i64(default_memory_bytes, "memory bytes")?;
        let mut tx = self.pool.begin().await?;
        for (process_type, quantity) in quantities {
            sqlx::query(
                "INSERT INTO formations (app_id, process_type, quantity, memory_bytes) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (app_id, process_type) DO UPDATE SET quantity = excluded.quantity",
            )
            .bind(app.to_string())
            .bind(process_type.as_str())
            .bind(i64::from(*quantity))
            .bind(memory)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Forgets the app's formation: nothing of it runs, and its next deploy scales `web` to 1 as a first one
    /// does (what a first release that never came up leaves behind).
    pub async fn clear_formation(&self, app: AppId) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM formations WHERE app_id = $1")
            .bind(app.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// True when the app has at least one formation row (a first deploy gives a new app `web=1` only then).
    pub async fn has_formation(&self, app: AppId) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM formations WHERE app_id = $1")
            .bind(app.to_string())
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }
}
