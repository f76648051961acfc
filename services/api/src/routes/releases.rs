use std::collections::HashMap;

use api_contract::ReleaseInfo;
use axum::extract::{Path, State};

use super::owned_app;
use crate::{ApiError, ApiState, Caller};

/// `GET /v1/apps/{name}/releases`, newest first.
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<axum::Json<Vec<ReleaseInfo>>, ApiError> {
    let app = owned_app(&state, &caller, &name).await?;
    let mut names = HashMap::new();
    let mut releases = Vec::new();
    for release in state.store.releases(app.id).await? {
        let created_by = match names.get(&release.created_by) {
            Some(name) => Clone::clone(name),
            None => {
                let name = state.store.account(release.created_by).await?.map(|a| a.name);
                names.insert(release.created_by, name.clone());
                name
            }
        };
        releases.push(ReleaseInfo {
            version: release.version,
            description: release.description,
            image_digest: release.image_digest,
            processes: release.processes,
            config_keys: release.config.into_keys().collect(),
            created_by,
            created_at: release.created_at,
        });
    }
    Ok(axum::Json(releases))
}
