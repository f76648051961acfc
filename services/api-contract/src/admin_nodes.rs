//! The operator's node routes (admin tokens only): `GET /v1/admin/nodes`, `POST /v1/admin/nodes/{name}/cordon`,
//! `/uncordon`, `/drain`, `DELETE /v1/admin/nodes/{name}`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One node as the operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub id: String,
    pub name: String,
    /// `ready`, `cordoned` or `draining`: what the operator decided.
    pub state: String,
    /// `up`, or `down` once it missed its heartbeats.
    pub health: String,
    pub memory_bytes: u64,
    pub cpu_millicores: u64,
    pub disk_bytes: u64,
    /// What the instances placed on it (stopping ones included) reserve.
    pub allocated_memory_bytes: u64,
    pub allocated_cpu_millicores: u64,
    /// Instances placed on it, stopping ones included.
    pub instances: u32,
    pub labels: BTreeMap<String, String>,
    pub agent_version: String,
    pub last_heartbeat_at: Option<DateTime<Utc>>,
}
