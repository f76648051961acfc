use std::collections::{BTreeMap, HashMap};

use api_contract::{ReleaseDetail, ReleaseInfo, ReleaseKindInfo};
use axum::extract::{Path, State};
use store::ReleaseKind;
use vocabulary::ReleaseVersion;

use super::{app_for, Permission};
use crate::{ApiError, ApiState, Caller};

/// `GET /v1/apps/{name}/releases`, newest first.
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<axum::Json<Vec<ReleaseInfo>>, ApiError> {
    let app = app_for(&state, &caller, &name, Permission::Read).await?;
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
        releases.push(release_info(release, created_by).0);
    }
    Ok(axum::Json(releases))
}

/// The API's form of a release, and its config (for those who may see values).
fn release_info(
    release: store::Release,
    created_by: Option<vocabulary::AccountName>,
) -> (ReleaseInfo, BTreeMap<String, String>) {
    let kind = match release.kind {
        ReleaseKind::Build => ReleaseKindInfo::Build,
        ReleaseKind::Config => ReleaseKindInfo::Config,
        ReleaseKind::Rollback => ReleaseKindInfo::Rollback,
        ReleaseKind::Rebase => ReleaseKindInfo::Rebase,
        ReleaseKind::Image => ReleaseKindInfo::Image,
    };
    let info = ReleaseInfo {
        version: release.version,
        kind,
        description: release.description,
        image_digest: release.image_digest,
        processes: release.processes,
        config_keys: release.config.keys().cloned().collect(),
        created_by,
        created_at: release.created_at,
    };
    (info, release.config)
}

/// `GET /v1/apps/{name}/releases/{version}` (`3` or `v3`): one release with its config values. Only the
/// app's owner can see an app at all, so the values are the owner's own.
pub async fn show(
    State(state): State<ApiState>,
    caller: Caller,
    Path((name, version)): Path<(String, String)>,
) -> Result<axum::Json<ReleaseDetail>, ApiError> {
    let app = app_for(&state, &caller, &name, Permission::Read).await?;
    let number = version.strip_prefix('v').unwrap_or(&version);
    let not_found = || ApiError::ReleaseNotFound {
        app: app.name.to_string(),
        version: version.clone(),
    };
    let parsed: ReleaseVersion = format!("v{number}").parse().map_err(|_| not_found())?;
    let release = state
        .store
        .release_by_version(app.id, parsed)
        .await?
        .ok_or_else(not_found)?;
    let created_by = state.store.account(release.created_by).await?.map(|a| a.name);
    let (info, config) = release_info(release, created_by);
    Ok(axum::Json(ReleaseDetail { info, config }))
}
