//! Instance rows: the scheduler's placements, and the state each node's agent last reported for them.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use agent_contract::{InstanceState, InstanceStatus};
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;
use vocabulary::{AppId, InstanceId, NodeId};

use crate::rows::{self, now, time_text, to_i64};
use crate::{Instance, InstanceExit, InstanceRowState, Store, StoreError};

const INSTANCE_COLUMNS: &str = "id, app_id, release_id, process_type, idx, node_id, memory_bytes, state, \
                                stop_requested, replace_requested, address, hostname, restarts, created_at, \
                                last_exit, last_exit_at";

fn instance_from_row(row: &AnyRow) -> Result<Instance, StoreError> {
    Ok(Instance {
        id: rows::parsed(row, "id")?,
        app: rows::parsed(row, "app_id")?,
        release: rows::parsed(row, "release_id")?,
        process_type: rows::parsed(row, "process_type")?,
        index: rows::unsigned(row, "idx")?,
        node: rows::parsed(row, "node_id")?,
        memory_bytes: rows::unsigned(row, "memory_bytes")?,
        state: rows::parsed(row, "state")?,
        stop_requested: rows::flag(row, "stop_requested")?,
        replace_requested: rows::flag(row, "replace_requested")?,
        address: rows::optional_parsed(row, "address")?,
        hostname: row.try_get("hostname")?,
        restarts: rows::unsigned(row, "restarts")?,
        created_at: rows::time(row, "created_at")?,
        last_exit: last_exit_of(row)?,
    })
}

fn last_exit_of(row: &AnyRow) -> Result<Option<InstanceExit>, StoreError> {
    let reason: Option<String> = row.try_get("last_exit")?;
    let at: Option<DateTime<Utc>> = rows::optional_parsed(row, "last_exit_at")?;
    Ok(reason.zip(at).map(|(reason, at)| InstanceExit { reason, at }))
}

/// The reported fields of a row, to tell whether a report changes anything.
#[derive(PartialEq)]
struct Reported {
    state: InstanceRowState,
    address: Option<SocketAddr>,
    hostname: Option<String>,
    restarts: u32,
    last_exit: Option<InstanceExit>,
}

impl Store {
    pub async fn insert_instance(&self, instance: &Instance) -> Result<(), StoreError> {
        let created_at = time_text(instance.created_at);
        sqlx::query(&format!(
            "INSERT INTO instances ({INSTANCE_COLUMNS}, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
        ))
        .bind(instance.id.to_string())
        .bind(instance.app.to_string())
        .bind(instance.release.to_string())
        .bind(instance.process_type.as_str())
        .bind(i64::from(instance.index))
        .bind(instance.node.to_string())
        .bind(to_i64(instance.memory_bytes, "instance memory bytes")?)
        .bind(instance.state.as_str())
        .bind(rows::flag_value(instance.stop_requested))
        .bind(rows::flag_value(instance.replace_requested))
        .bind(instance.address.map(|a| a.to_string()))
        .bind(&instance.hostname)
        .bind(i64::from(instance.restarts))
        .bind(&created_at)
        .bind(instance.last_exit.as_ref().map(|e| e.reason.clone()))
        .bind(instance.last_exit.as_ref().map(|e| time_text(e.at)))
        .bind(&created_at)
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::conflict_on_unique(e, || format!("instance {}", instance.id)))?;
        Ok(())
    }

    /// All instance rows, of every app (the scheduler plans over the whole platform).
    pub async fn all_instances(&self) -> Result<Vec<Instance>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {INSTANCE_COLUMNS} FROM instances ORDER BY app_id, process_type, idx, created_at"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(instance_from_row).collect()
    }

    /// An app's instance rows, by process type and index.
    pub async fn instances_of_app(&self, app: AppId) -> Result<Vec<Instance>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {INSTANCE_COLUMNS} FROM instances WHERE app_id = $1 ORDER BY process_type, idx, created_at"
        ))
        .bind(app.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(instance_from_row).collect()
    }

    pub async fn instances_on_node(&self, node: NodeId) -> Result<Vec<Instance>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {INSTANCE_COLUMNS} FROM instances WHERE node_id = $1 ORDER BY app_id, process_type, idx, \
             created_at"
        ))
        .bind(node.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(instance_from_row).collect()
    }

    /// Marks instances to be stopped (they stay listed until their node stops reporting them).
    pub async fn request_stop(&self, ids: &[InstanceId]) -> Result<(), StoreError> {
        let updated_at = time_text(now());
        let mut tx = self.pool.begin().await?;
        for id in in_lock_order(ids) {
            sqlx::query("UPDATE instances SET stop_requested = 1, updated_at = $1 WHERE id = $2")
                .bind(&updated_at)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Asks for fresh instances in place of these (`berth ps restart`); the old ones stop once the fresh ones
    /// run. Only the app's own instances that are not already on their way out are marked; returns how many.
    pub async fn request_replace(&self, app: AppId, ids: &[InstanceId]) -> Result<u64, StoreError> {
        let updated_at = time_text(now());
        let mut tx = self.pool.begin().await?;
        let mut marked = 0;
        for id in in_lock_order(ids) {
            marked += sqlx::query(
                "UPDATE instances SET replace_requested = 1, updated_at = $1 \
                 WHERE id = $2 AND app_id = $3 AND stop_requested = 0",
            )
            .bind(&updated_at)
            .bind(id.to_string())
            .bind(app.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(marked)
    }

    /// Applies a node's full report: updates state, address, hostname and restarts of the instances it lists;
    /// deletes rows with `stop_requested` that it no longer lists. Returns true if anything changed.
    ///
    /// Instances the report lists that are not placed on `node` are ignored (a deleted app's, or a stale
    /// report). Rows the report does not list and that are not asked to stop are kept: the agent has not
    /// started them yet. `restarts` only moves when the agent reports a crash, which carries the count.
    pub async fn apply_node_report(
        &self,
        node: NodeId,
        instances: &[InstanceStatus],
    ) -> Result<bool, StoreError> {
        // The rows cannot change between read and write: SQLite's write lock is taken before reading, and
        // PostgreSQL locks the rows read.
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(&format!(
            "SELECT id, state, address, hostname, restarts, stop_requested, last_exit, last_exit_at FROM instances \
             WHERE node_id = $1 ORDER BY id{}",
            self.for_update()
        ))
        .bind(node.to_string())
        .fetch_all(&mut *tx)
        .await?;
        let mut current: HashMap<InstanceId, (Reported, bool)> = HashMap::with_capacity(rows.len());
        for row in &rows {
            let reported = Reported {
                state: rows::parsed(row, "state")?,
                address: rows::optional_parsed(row, "address")?,
                hostname: row.try_get("hostname")?,
                restarts: rows::unsigned(row, "restarts")?,
                last_exit: last_exit_of(row)?,
            };
            current.insert(
                rows::parsed(row, "id")?,
                (reported, rows::flag(row, "stop_requested")?),
            );
        }

        let updated_at = time_text(now());
        let mut changed = false;
        let mut listed = HashSet::with_capacity(instances.len());
        for status in instances {
            listed.insert(status.id);
            let Some((old, _)) = current.get(&status.id) else {
                tracing::debug!(node = %node, instance = %status.id, "report lists an instance not placed here");
                continue;
            };
            let new = Reported {
                state: InstanceRowState::of(&status.state),
                address: status.address,
                hostname: Some(status.hostname.clone()),
                restarts: match status.state {
                    InstanceState::Crashed { restarts, .. } => restarts,
                    _ => old.restarts,
                },
                // An older agent reports none: keep what is known.
                last_exit: match &status.last_exit {
                    Some(e) => Some(InstanceExit {
                        reason: e.reason.to_string(),
                        at: e.at,
                    }),
                    None => old.last_exit.clone(),
                },
            };
            if new == *old {
                continue;
            }
            sqlx::query(
                "UPDATE instances SET state = $1, address = $2, hostname = $3, restarts = $4, last_exit = $5, \
                 last_exit_at = $6, updated_at = $7 WHERE id = $8",
            )
            .bind(new.state.as_str())
            .bind(new.address.map(|a| a.to_string()))
            .bind(&new.hostname)
            .bind(i64::from(new.restarts))
            .bind(new.last_exit.as_ref().map(|e| e.reason.clone()))
            .bind(new.last_exit.as_ref().map(|e| time_text(e.at)))
            .bind(&updated_at)
            .bind(status.id.to_string())
            .execute(&mut *tx)
            .await?;
            changed = true;
        }

        for (id, (_, stop_requested)) in &current {
            if *stop_requested && !listed.contains(id) {
                sqlx::query("DELETE FROM instances WHERE id = $1")
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
                changed = true;
            }
        }
        tx.commit().await?;
        Ok(changed)
    }
}

/// Instance ids sorted as their rows are locked everywhere (by id), so that two transactions updating some of
/// the same rows on PostgreSQL wait for each other instead of deadlocking.
fn in_lock_order(ids: &[InstanceId]) -> Vec<InstanceId> {
    let mut sorted: Vec<InstanceId> = ids.to_vec();
    sorted.sort_by_key(|id| id.to_string());
    sorted
}
