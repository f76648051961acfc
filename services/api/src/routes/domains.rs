//! An app's custom domains. A domain belongs to one app on the whole platform; a taken one is refused without
//! saying whose it is.

use api_contract::{DomainCreate, DomainInfo};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use controller::Event;
use store::StoreError;
use vocabulary::DomainName;

use super::{app_for, Permission};
use crate::json::Json;
use crate::{ApiError, ApiState, Caller};

fn info(domain: store::Domain) -> DomainInfo {
    DomainInfo {
        name: domain.name,
        created_at: domain.created_at,
    }
}

/// `GET /v1/apps/{name}/domains`
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<axum::Json<Vec<DomainInfo>>, ApiError> {
    let app = app_for(&state, &caller, &name, Permission::Read).await?;
    let domains = state.store.domains_of(app.id).await?;
    Ok(axum::Json(domains.into_iter().map(info).collect()))
}

/// `POST /v1/apps/{name}/domains`
pub async fn add(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(body): Json<DomainCreate>,
) -> Result<(StatusCode, axum::Json<DomainInfo>), ApiError> {
    let app = app_for(&state, &caller, &name, Permission::Deploy).await?;
    let domain = DomainName::from_input(&body.name)?;
    domain.check_outside(&state.domain)?;
    let added = state
        .store
        .add_domain(app.id, &domain)
        .await
        .map_err(|err| match err {
            StoreError::Conflict { .. } => ApiError::Conflict(format!("domain {domain} is already in use")),
            err => err.into(),
        })?;
    tracing::info!(app = %app.name, domain = %domain, account = %caller.0.name, "domain added");
    state.controller.notify(Event::RoutesChanged(app.id));
    Ok((StatusCode::CREATED, axum::Json(info(added))))
}

/// `DELETE /v1/apps/{name}/domains/{domain}`
pub async fn remove(
    State(state): State<ApiState>,
    caller: Caller,
    Path((name, domain)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let app = app_for(&state, &caller, &name, Permission::Deploy).await?;
    let not_found = || ApiError::DomainNotFound {
        app: app.name.to_string(),
        domain: domain.clone(),
    };
    let parsed = DomainName::from_input(&domain).map_err(|_| not_found())?;
    if !state.store.remove_domain(app.id, &parsed).await? {
        return Err(not_found());
    }
    tracing::info!(app = %app.name, domain = %parsed, account = %caller.0.name, "domain removed");
    state.controller.notify(Event::RoutesChanged(app.id));
    Ok(StatusCode::NO_CONTENT)
}
