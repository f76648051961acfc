//! The operators' view of every app (admin tokens only): `GET /v1/admin/apps?q=TEXT` lists apps of all
//! accounts whose name or owner's name contains TEXT; `POST /v1/admin/apps/{name}/stop` stops one through the
//! same path as `berth apps stop`.

use std::collections::HashMap;

use api_contract::access::AdminApp;
use api_contract::LifecycleInfo;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use vocabulary::AppName;

use super::require_admin;
use crate::{ApiError, ApiState, Caller};

#[derive(Debug, Deserialize)]
pub struct Search {
    q: Option<String>,
}

/// `GET /v1/admin/apps?q=TEXT`
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    Query(search): Query<Search>,
) -> Result<axum::Json<Vec<AdminApp>>, ApiError> {
    require_admin(&caller, "list every app")?;
    let owners: HashMap<_, _> = state
        .store
        .accounts()
        .await?
        .into_iter()
        .map(|(account, _)| (account.id, account.name))
        .collect();
    let stopped = state.store.stopped_apps().await?;
    let needle = search.q.unwrap_or_default().to_lowercase();
    let mut apps = Vec::new();
    for app in state.store.all_apps().await? {
        let Some(owner) = owners.get(&app.owner) else {
            continue;
        };
        let matches = app.name.as_str().contains(&needle) || owner.as_str().contains(&needle);
        if matches {
            apps.push(AdminApp {
                stopped: stopped.contains(&app.id),
                owner: owner.clone(),
                name: app.name,
                created_at: app.created_at,
            });
        }
    }
    Ok(axum::Json(apps))
}

/// `POST /v1/admin/apps/{name}/stop`
pub async fn stop(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<axum::Json<LifecycleInfo>, ApiError> {
    require_admin(&caller, "stop others' apps")?;
    let not_found = || ApiError::AppNotFound { name: name.clone() };
    let app_name = AppName::new(&name).map_err(|_| not_found())?;
    let app = state.store.app_by_name(&app_name).await?.ok_or_else(not_found)?;
    let outcome = state.lifecycle.stop(&app).await?;
    tracing::info!(app = %app.name, by = %caller.0.name, "app stopped by an operator");
    Ok(axum::Json(LifecycleInfo {
        done: outcome.is_ok(),
        message: outcome.unwrap_or_else(|reason| reason),
    }))
}
