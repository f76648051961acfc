//! Changes to a running app that make no build: `POST /v1/apps/{name}/rollback`, `/stop`, `/start` and
//! `/restart` (the app's owner). Each answers once done, or says why not (see `controller::Lifecycle`).

use api_contract::{LifecycleInfo, RestartRequest, RollbackInfo, RollbackRequest};
use axum::extract::{Path, State};
use controller::RestartTarget;

use super::config::rollout_info;
use super::{app_for, Permission};
use crate::json::Json;
use crate::{ApiError, ApiState, Caller};

fn info(outcome: Result<String, String>) -> LifecycleInfo {
    LifecycleInfo {
        done: outcome.is_ok(),
        message: outcome.unwrap_or_else(|reason| reason),
    }
}

/// `POST /v1/apps/{name}/rollback` with `{"version": N}` (or `{}` for the release before the latest).
pub async fn rollback(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(body): Json<RollbackRequest>,
) -> Result<axum::Json<RollbackInfo>, ApiError> {
    let app = app_for(&state, &caller, &name, Permission::Deploy).await?;
    let (to, rolled) = state.lifecycle.rollback(&app, caller.0.id, body.version).await?;
    Ok(axum::Json(RollbackInfo {
        to,
        rollout: rollout_info(rolled),
    }))
}

/// `POST /v1/apps/{name}/stop`: every instance stops; the formation is kept.
pub async fn stop(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<axum::Json<LifecycleInfo>, ApiError> {
    let app = app_for(&state, &caller, &name, Permission::Deploy).await?;
    Ok(axum::Json(info(state.lifecycle.stop(&app).await?)))
}

/// `POST /v1/apps/{name}/start`: a stopped app's formation runs again.
pub async fn start(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<axum::Json<LifecycleInfo>, ApiError> {
    let app = app_for(&state, &caller, &name, Permission::Deploy).await?;
    Ok(axum::Json(info(state.lifecycle.start(&app).await?)))
}

/// `POST /v1/apps/{name}/restart` with `{"instance": "web.1"}`, `{"instance": "web"}` or `{}` (all).
pub async fn restart(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(body): Json<RestartRequest>,
) -> Result<axum::Json<LifecycleInfo>, ApiError> {
    let app = app_for(&state, &caller, &name, Permission::Deploy).await?;
    let target = match body.instance.as_deref() {
        None => RestartTarget::All,
        Some(text) => RestartTarget::parse(text).ok_or_else(|| {
            ApiError::Invalid(format!(
                "{text:?} is not an instance or process type: use a name such as web.1 or web"
            ))
        })?,
    };
    Ok(axum::Json(info(state.lifecycle.restart(&app, &target).await?)))
}
