//! The operator's node routes (admin tokens only): list the nodes with their capacity, allocation and
//! health; cordon, uncordon and drain one; remove one that runs nothing. The controller does the moving: a
//! drained node's instances are replaced elsewhere and stopped once their replacements run.

use std::collections::HashMap;

use api_contract::admin_nodes::NodeInfo;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::Router;
use controller::Event;
use store::{NodeRecord, NodeRemoval, NodeState};
use vocabulary::NodeId;

use crate::{ApiError, ApiState, Caller};

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/admin/nodes", get(list))
        .route("/admin/nodes/{name}", delete(remove))
        .route("/admin/nodes/{name}/cordon", post(cordon))
        .route("/admin/nodes/{name}/uncordon", post(uncordon))
        .route("/admin/nodes/{name}/drain", post(drain))
}

fn admin(caller: &Caller, action: &'static str) -> Result<(), ApiError> {
    if caller.0.is_admin {
        Ok(())
    } else {
        Err(ApiError::AdminOnly { action })
    }
}

/// What the instances placed on each node reserve: (instances, memory bytes).
async fn allocations(state: &ApiState) -> Result<HashMap<NodeId, (u32, u64)>, ApiError> {
    let mut by_node: HashMap<NodeId, (u32, u64)> = HashMap::new();
    for instance in state.store.all_instances().await? {
        let entry = by_node.entry(instance.node).or_default();
        entry.0 += 1;
        entry.1 += instance.memory_bytes;
    }
    Ok(by_node)
}

fn info(node: NodeRecord, allocation: (u32, u64), now: chrono::DateTime<chrono::Utc>) -> NodeInfo {
    let down = controller::heartbeat_missed(node.last_heartbeat_at, now, controller::NODE_DOWN_AFTER);
    NodeInfo {
        id: node.id.to_string(),
        name: node.name,
        state: node.state.as_str().to_owned(),
        health: if down { "down" } else { "up" }.to_owned(),
        memory_bytes: node.memory_capacity_bytes,
        cpu_millicores: node.cpu_millicores,
        disk_bytes: node.disk_bytes,
        allocated_memory_bytes: allocation.1,
        allocated_cpu_millicores: u64::from(allocation.0)
            * u64::from(controller::cpu_reservation(controller::INSTANCE_CPU_MILLICORES)),
        instances: allocation.0,
        labels: node.labels,
        agent_version: node.agent_version,
        last_heartbeat_at: node.last_heartbeat_at,
    }
}

/// `GET /v1/admin/nodes`
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<axum::Json<Vec<NodeInfo>>, ApiError> {
    admin(&caller, "list nodes")?;
    let allocations = allocations(&state).await?;
    let now = chrono::Utc::now();
    let nodes = state.store.node_inventory().await?;
    Ok(axum::Json(
        nodes
            .into_iter()
            .map(|n| {
                let allocation = allocations.get(&n.id).copied().unwrap_or_default();
                info(n, allocation, now)
            })
            .collect(),
    ))
}

async fn find(state: &ApiState, name: &str) -> Result<NodeRecord, ApiError> {
    state
        .store
        .find_node(name)
        .await?
        .ok_or_else(|| ApiError::NodeNotFound {
            name: name.to_owned(),
        })
}

/// Sets a node's state, tells the controller, and answers with the node as it is now.
async fn set_state(
    state: &ApiState,
    caller: &Caller,
    name: &str,
    to: NodeState,
) -> Result<axum::Json<NodeInfo>, ApiError> {
    let node = find(state, name).await?;
    state.store.set_node_state(node.id, to).await?;
    tracing::info!(node = %node.id, name = %node.name, state = to.as_str(), by = %caller.0.name, "node state changed");
    state.controller.notify(Event::NodesChanged);
    let node = find(state, name).await?;
    let allocation = allocations(state)
        .await?
        .get(&node.id)
        .copied()
        .unwrap_or_default();
    Ok(axum::Json(info(node, allocation, chrono::Utc::now())))
}

/// `POST /v1/admin/nodes/{name}/cordon`: no new instances go there; what runs there stays.
pub async fn cordon(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<axum::Json<NodeInfo>, ApiError> {
    admin(&caller, "cordon nodes")?;
    set_state(&state, &caller, &name, NodeState::Cordoned).await
}

/// `POST /v1/admin/nodes/{name}/uncordon`: the node takes new instances again (also ends a drain).
pub async fn uncordon(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<axum::Json<NodeInfo>, ApiError> {
    admin(&caller, "uncordon nodes")?;
    set_state(&state, &caller, &name, NodeState::Ready).await
}

/// `POST /v1/admin/nodes/{name}/drain`: cordons the node and moves its instances off by rolling
/// replacement (each new instance placed elsewhere runs before the old one drains and stops).
pub async fn drain(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<axum::Json<NodeInfo>, ApiError> {
    admin(&caller, "drain nodes")?;
    set_state(&state, &caller, &name, NodeState::Draining).await
}

/// `DELETE /v1/admin/nodes/{name}`: forgets a node that runs nothing.
pub async fn remove(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    admin(&caller, "remove nodes")?;
    let node = find(&state, &name).await?;
    match state.store.remove_node(node.id).await? {
        NodeRemoval::Removed | NodeRemoval::NotFound => {
            tracing::info!(node = %node.id, name = %node.name, by = %caller.0.name, "node removed");
            state.controller.notify(Event::NodesChanged);
            Ok(StatusCode::NO_CONTENT)
        }
        NodeRemoval::StillPlaced(count) => Err(ApiError::Conflict(format!(
            "node {} still has {count} instance(s) placed on it: drain it first (`berth admin nodes drain {}`) \
             and remove it once it runs nothing",
            node.name, node.name
        ))),
    }
}
