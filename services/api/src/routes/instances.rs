use std::collections::HashMap;

use api_contract::{InstanceExitInfo, InstanceInfo, InstanceStateInfo};
use axum::extract::{Path, State};
use store::InstanceRowState;

use super::{app_for, Permission};
use crate::{ApiError, ApiState, Caller};

fn state_info(instance: &store::Instance) -> InstanceStateInfo {
    // An instance asked to stop is on its way out whatever its agent last said.
    if instance.stop_requested {
        return InstanceStateInfo::Stopping;
    }
    match instance.state {
        InstanceRowState::Starting => InstanceStateInfo::Starting,
        InstanceRowState::Running => InstanceStateInfo::Running,
        InstanceRowState::Crashed => InstanceStateInfo::Crashed,
        InstanceRowState::Stopping => InstanceStateInfo::Stopping,
    }
}

/// `GET /v1/apps/{name}/instances`, by process type and index.
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<axum::Json<Vec<InstanceInfo>>, ApiError> {
    let app = app_for(&state, &caller, &name, Permission::Read).await?;
    let versions: HashMap<_, _> = state
        .store
        .releases(app.id)
        .await?
        .into_iter()
        .map(|r| (r.id, r.version))
        .collect();
    let nodes: HashMap<_, _> = state
        .store
        .nodes()
        .await?
        .into_iter()
        .map(|n| (n.id, n.name))
        .collect();
    let mut instances = Vec::new();
    for instance in state.store.instances_of_app(app.id).await? {
        // Rows cascade with their release, so the release is there unless it went in between two queries.
        let Some(release) = versions.get(&instance.release).copied() else {
            continue;
        };
        instances.push(InstanceInfo {
            id: instance.id,
            name: format!("{}.{}", instance.process_type, instance.index),
            state: state_info(&instance),
            release,
            hostname: instance.hostname,
            address: instance.address,
            restarts: instance.restarts,
            created_at: instance.created_at,
            last_exit: instance.last_exit.map(|e| InstanceExitInfo {
                reason: e.reason,
                at: e.at,
            }),
            process_type: instance.process_type,
            node: nodes.get(&instance.node).cloned(),
            memory_bytes: Some(instance.memory_bytes),
            pending_reason: None,
        });
    }
    // Wanted instances no node could take at the controller's last pass, with the reason.
    let latest = versions.values().max().copied();
    for pending in state.store.pending_instances(app.id).await? {
        let Some(release) = latest else { break };
        instances.push(InstanceInfo {
            id: vocabulary::InstanceId::from_uuid(uuid::Uuid::nil()),
            name: format!("{}.{}", pending.process_type, pending.index),
            process_type: pending.process_type,
            state: InstanceStateInfo::Pending,
            release,
            hostname: None,
            address: None,
            restarts: 0,
            created_at: pending.since,
            node: None,
            memory_bytes: None,
            last_exit: None,
            pending_reason: Some(pending.reason),
        });
    }
    Ok(axum::Json(instances))
}
