//! `GET/POST /v1/apps/{name}/collaborators` and `DELETE .../collaborators/{account}`: who besides the owner
//! may deploy an app. Members may list; only the owner adds and removes.

use api_contract::access::{AccessList, CollaboratorAdd, CollaboratorInfo};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use store::StoreError;

use super::{account_named, app_for, Permission};
use crate::json::Json;
use crate::{ApiError, ApiState, Caller};

const MANAGE: Permission = Permission::Manage("manage access to it");

fn listed(collaborator: store::Collaborator) -> CollaboratorInfo {
    CollaboratorInfo {
        account: collaborator.account,
        added_by: collaborator.added_by,
        added_at: collaborator.added_at,
    }
}

/// `GET /v1/apps/{name}/collaborators`
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<axum::Json<AccessList>, ApiError> {
    let app = app_for(&state, &caller, &name, Permission::Read).await?;
    let owner = state
        .store
        .account(app.owner)
        .await?
        .ok_or_else(|| ApiError::Store(StoreError::Corrupt(format!("app {} has no owner", app.name))))?;
    let collaborators = state.store.collaborators(app.id).await?;
    Ok(axum::Json(AccessList {
        owner: owner.name,
        collaborators: collaborators.into_iter().map(listed).collect(),
    }))
}

/// `POST /v1/apps/{name}/collaborators` with `{"account": "NAME"}` (owner only).
pub async fn add(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(body): Json<CollaboratorAdd>,
) -> Result<(StatusCode, axum::Json<CollaboratorInfo>), ApiError> {
    let app = app_for(&state, &caller, &name, MANAGE).await?;
    let account = account_named(&state, &body.account).await?;
    if account.id == app.owner {
        return Err(ApiError::Invalid(format!(
            "{} owns app {}: an owner is not also a collaborator",
            account.name, app.name
        )));
    }
    let added = state
        .store
        .add_collaborator(app.id, &account, &caller.0.name)
        .await
        .map_err(|err| match err {
            StoreError::Conflict { .. } => ApiError::Conflict(format!(
                "{} is already a collaborator on {}",
                account.name, app.name
            )),
            err => err.into(),
        })?;
    tracing::info!(app = %app.name, collaborator = %account.name, by = %caller.0.name, "collaborator added");
    Ok((StatusCode::CREATED, axum::Json(listed(added))))
}

/// `DELETE /v1/apps/{name}/collaborators/{account}` (owner only).
pub async fn remove(
    State(state): State<ApiState>,
    caller: Caller,
    Path((name, account)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let app = app_for(&state, &caller, &name, MANAGE).await?;
    let not_member = || ApiError::Invalid(format!("{account} is not a collaborator on {}", app.name));
    let found = account_named(&state, &account).await.map_err(|_| not_member())?;
    if !state.store.remove_collaborator(app.id, found.id).await? {
        return Err(not_member());
    }
    tracing::info!(app = %app.name, collaborator = %found.name, by = %caller.0.name, "collaborator removed");
    Ok(StatusCode::NO_CONTENT)
}
