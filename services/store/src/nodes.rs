//! Nodes: machines that run a node agent, with the memory they offer to instances.

use vocabulary::NodeId;

use crate::rows::{self, now, time_text, to_i64};
use crate::{Node, Store, StoreError};

impl Store {
    /// Inserts or updates a node.
    pub async fn upsert_node(&self, node: &Node) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO nodes (id, name, memory_capacity_bytes, registered_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
                                            memory_capacity_bytes = excluded.memory_capacity_bytes",
        )
        .bind(node.id.to_string())
        .bind(&node.name)
        .bind(to_i64(node.memory_capacity_bytes, "node memory capacity")?)
        .bind(time_text(now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every registered node, by name.
    pub async fn nodes(&self) -> Result<Vec<Node>, StoreError> {
        let rows = sqlx::query("SELECT id, name, memory_capacity_bytes FROM nodes ORDER BY name, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Node {
                    id: rows::parsed::<NodeId>(row, "id")?,
                    name: sqlx::Row::try_get(row, "name")?,
                    memory_capacity_bytes: rows::unsigned(row, "memory_capacity_bytes")?,
                })
            })
            .collect()
    }
}
