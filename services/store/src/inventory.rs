//! The node inventory for many nodes: what each node offers (memory, CPU, disk, labels), the operator's state
//! (ready, cordoned, draining), the agent's version and its heartbeats; apps' placement constraints; and the
//! instances the scheduler could not place, with the reason. A remote agent's registration and heartbeats end
//! in [`Store::register_node`] and [`Store::record_heartbeat`] like the in-process agent's.
//!
//! Portable SQL only (`$N` placeholders, `ON CONFLICT`), so the same statements run on PostgreSQL.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sqlx::Row;
use vocabulary::{AppId, NodeId, ProcessType};

use crate::rows::{self, now, time_text, to_i64};
use crate::{Store, StoreError};

/// What the operator decided about a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NodeState {
    /// Takes new instances.
    #[default]
    Ready,
    /// Takes no new instances and keeps the ones it runs.
    Cordoned,
    /// Takes no new instances; its instances are replaced elsewhere, then stopped.
    Draining,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::Cordoned => "cordoned",
            Self::Draining => "draining",
        }
    }
}

impl std::str::FromStr for NodeState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ready" => Ok(Self::Ready),
            "cordoned" => Ok(Self::Cordoned),
            "draining" => Ok(Self::Draining),
            other => Err(format!("unknown node state {other:?}")),
        }
    }
}

/// What an agent says about its node when it starts (or joins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRegistration {
    pub id: NodeId,
    pub name: String,
    pub memory_capacity_bytes: u64,
    pub cpu_millicores: u64,
    pub disk_bytes: u64,
    pub labels: BTreeMap<String, String>,
    pub agent_version: String,
}

/// A node as the inventory knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    pub id: NodeId,
    pub name: String,
    pub memory_capacity_bytes: u64,
    pub cpu_millicores: u64,
    pub disk_bytes: u64,
    pub labels: BTreeMap<String, String>,
    pub state: NodeState,
    pub agent_version: String,
    pub registered_at: DateTime<Utc>,
    pub last_heartbeat_at: Option<DateTime<Utc>>,
}

/// What [`Store::remove_node`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRemoval {
    Removed,
    NotFound,
    /// Instances (running or being stopped) are still placed on it.
    StillPlaced(u64),
}

/// A wanted instance that the scheduler could not place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingInstance {
    pub app: AppId,
    pub process_type: ProcessType,
    pub index: u32,
    /// For people: "no node matches region=eu".
    pub reason: String,
    /// When it first waited for this reason.
    pub since: DateTime<Utc>,
}

const NODE_COLUMNS: &str = "id, name, memory_capacity_bytes, cpu_millicores, disk_bytes, labels, state, \
                            agent_version, registered_at, last_heartbeat_at";

fn node_record(row: &sqlx::any::AnyRow) -> Result<NodeRecord, StoreError> {
    let heartbeat: Option<String> = row.try_get("last_heartbeat_at")?;
    Ok(NodeRecord {
        id: rows::parsed(row, "id")?,
        name: row.try_get("name")?,
        memory_capacity_bytes: rows::unsigned(row, "memory_capacity_bytes")?,
        cpu_millicores: rows::unsigned(row, "cpu_millicores")?,
        disk_bytes: rows::unsigned(row, "disk_bytes")?,
        labels: rows::json(row, "labels")?,
        state: rows::parsed(row, "state")?,
        agent_version: row.try_get("agent_version")?,
        registered_at: rows::time(row, "registered_at")?,
        last_heartbeat_at: match heartbeat {
            Some(_) => Some(rows::time(row, "last_heartbeat_at")?),
            None => None,
        },
    })
}

fn json_text(map: &BTreeMap<String, String>) -> String {
    serde_json::to_string(map).expect("a map of strings serializes")
}

impl Store {
    /// Registers a node or updates what it offers; keeps the operator's state. Counts as a heartbeat.
    pub async fn register_node(&self, node: &NodeRegistration) -> Result<(), StoreError> {
        let at = time_text(now());
        sqlx::query(
            "INSERT INTO nodes (id, name, memory_capacity_bytes, cpu_millicores, disk_bytes, labels, \
                                agent_version, registered_at, last_heartbeat_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
                 memory_capacity_bytes = excluded.memory_capacity_bytes, \
                 cpu_millicores = excluded.cpu_millicores, disk_bytes = excluded.disk_bytes, \
                 labels = excluded.labels, agent_version = excluded.agent_version, \
                 last_heartbeat_at = excluded.last_heartbeat_at",
        )
        .bind(node.id.to_string())
        .bind(&node.name)
        .bind(to_i64(node.memory_capacity_bytes, "node memory capacity")?)
        .bind(to_i64(node.cpu_millicores, "node CPU")?)
        .bind(to_i64(node.disk_bytes, "node disk")?)
        .bind(json_text(&node.labels))
        .bind(&node.agent_version)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Notes that the node's agent was alive at `at`. False when no such node is registered.
    pub async fn record_heartbeat(&self, node: NodeId, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE nodes SET last_heartbeat_at = $1 WHERE id = $2")
            .bind(time_text(at))
            .bind(node.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Every node with its whole inventory, by name.
    pub async fn node_inventory(&self) -> Result<Vec<NodeRecord>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {NODE_COLUMNS} FROM nodes ORDER BY name, id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(node_record).collect()
    }

    /// The node with this name (the first by ID if several share it), or with this ID.
    pub async fn find_node(&self, name_or_id: &str) -> Result<Option<NodeRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {NODE_COLUMNS} FROM nodes WHERE name = $1 OR id = $1 ORDER BY id LIMIT 1"
        ))
        .bind(name_or_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(node_record).transpose()
    }

    /// Sets the operator's state of a node. False when no such node is registered.
    pub async fn set_node_state(&self, node: NodeId, state: NodeState) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE nodes SET state = $1 WHERE id = $2")
            .bind(state.as_str())
            .bind(node.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Forgets a node, only when no instance is placed on it.
    pub async fn remove_node(&self, node: NodeId) -> Result<NodeRemoval, StoreError> {
        let mut tx = self.pool.begin().await?;
        let placed: i64 = sqlx::query("SELECT COUNT(*) AS n FROM instances WHERE node_id = $1")
            .bind(node.to_string())
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        if placed > 0 {
            return Ok(NodeRemoval::StillPlaced(placed.unsigned_abs()));
        }
        let done = sqlx::query("DELETE FROM nodes WHERE id = $1")
            .bind(node.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(if done.rows_affected() > 0 {
            NodeRemoval::Removed
        } else {
            NodeRemoval::NotFound
        })
    }

    /// The labels an app's instances' nodes must have (empty: anywhere).
    pub async fn app_constraints(&self, app: AppId) -> Result<BTreeMap<String, String>, StoreError> {
        Ok(self.all_app_constraints().await?.remove(&app).unwrap_or_default())
    }

    pub async fn set_app_constraints(
        &self,
        app: AppId,
        constraints: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE apps SET constraints = $1 WHERE id = $2")
            .bind(json_text(constraints))
            .bind(app.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every app's constraints that are not empty.
    pub async fn all_app_constraints(&self) -> Result<HashMap<AppId, BTreeMap<String, String>>, StoreError> {
        let rows = sqlx::query("SELECT id, constraints FROM apps WHERE constraints <> '{}'")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((rows::parsed(row, "id")?, rows::json(row, "constraints")?)))
            .collect()
    }

    /// Replaces the pending instances with `pending` (whose `since` is ignored): one that waited before for
    /// the same reason keeps its `since`.
    pub async fn replace_pending_instances(&self, pending: &[PendingInstance]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let before = sqlx::query("SELECT app_id, process_type, idx, reason, since FROM pending_instances")
            .fetch_all(&mut *tx)
            .await?;
        let mut since: HashMap<(String, String, i64, String), String> = HashMap::new();
        for row in &before {
            since.insert(
                (
                    row.try_get("app_id")?,
                    row.try_get("process_type")?,
                    row.try_get("idx")?,
                    row.try_get("reason")?,
                ),
                row.try_get("since")?,
            );
        }
        sqlx::query("DELETE FROM pending_instances")
            .execute(&mut *tx)
            .await?;
        let at = time_text(now());
        for p in pending {
            let key = (
                p.app.to_string(),
                p.process_type.to_string(),
                i64::from(p.index),
                p.reason.clone(),
            );
            let first = since.get(&key).cloned().unwrap_or_else(|| at.clone());
            sqlx::query(
                "INSERT INTO pending_instances (app_id, process_type, idx, reason, since) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (app_id, process_type, idx) DO NOTHING",
            )
            .bind(key.0)
            .bind(key.1)
            .bind(key.2)
            .bind(key.3)
            .bind(first)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// An app's pending instances, by process type and index.
    pub async fn pending_instances(&self, app: AppId) -> Result<Vec<PendingInstance>, StoreError> {
        let rows = sqlx::query(
            "SELECT app_id, process_type, idx, reason, since FROM pending_instances \
             WHERE app_id = $1 ORDER BY process_type, idx",
        )
        .bind(app.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PendingInstance {
                    app: rows::parsed(row, "app_id")?,
                    process_type: rows::parsed(row, "process_type")?,
                    index: rows::unsigned(row, "idx")?,
                    reason: row.try_get("reason")?,
                    since: rows::time(row, "since")?,
                })
            })
            .collect()
    }
}
