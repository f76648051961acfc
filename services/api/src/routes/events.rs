//! `GET /v1/apps/{name}/events?limit=N`: the app's history, newest first. The app's owner only.

use api_contract::EventInfo;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use store::EventKind;
use vocabulary::AppId;

use super::{app_for, Permission};
use crate::{ApiError, ApiState, Caller};

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    limit: Option<u32>,
}

/// `GET /v1/apps/{name}/events`
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(query): Query<EventsQuery>,
) -> Result<axum::Json<Vec<EventInfo>>, ApiError> {
    let app = app_for(&state, &caller, &name, Permission::Read).await?;
    let limit = query.limit.unwrap_or(100);
    if limit == 0 || limit > store::MAX_EVENTS {
        return Err(ApiError::Invalid(format!(
            "limit must be from 1 to {}",
            store::MAX_EVENTS
        )));
    }
    let events = state.store.events(app.id, limit).await?;
    Ok(axum::Json(
        events
            .into_iter()
            .map(|e| EventInfo {
                kind: e.kind.as_str().to_owned(),
                description: e.description,
                actor: e.actor,
                at: e.at,
            })
            .collect(),
    ))
}

/// Records an event; a failure is logged, not answered: the change it describes is already made.
pub(crate) async fn record(state: &ApiState, app: AppId, kind: EventKind, description: &str, actor: &str) {
    if let Err(error) = state.store.record_event(app, kind, description, actor).await {
        tracing::error!(%app, kind = kind.as_str(), error = %crate::error::chain(&error), "recording an event");
    }
}
