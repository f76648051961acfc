use api_contract::{AppCreate, AppInfo, AppUpdate};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use controller::Event;
use store::StoreError;
use vocabulary::AppName;

use super::{app_for, Permission};
use crate::json::Json;
use crate::{ApiError, ApiState, Caller};

async fn info(state: &ApiState, app: store::App) -> Result<AppInfo, ApiError> {
    let release = state.store.latest_release(app.id).await?.map(|r| r.version);
    let settings = state.store.router_settings(app.id).await?;
    let build_timeout = state.store.build_timeout_secs(app.id).await?;
    let stop_grace = state.store.stop_grace_secs(app.id).await?;
    let stopped = state.store.app_stopped(app.id).await?;
    let boot_timeout = state.store.boot_timeout_secs(app.id).await?;
    let deploy_timeout = state.store.deploy_timeout_secs(app.id).await?;
    let health_check = state.store.health_check_path(app.id).await?;
    let deploy_strategy = state.store.deploy_strategy(app.id).await?.to_string();
    let constraints = state.store.app_constraints(app.id).await?;
    Ok(AppInfo {
        constraints,
        boot_timeout,
        deploy_timeout,
        health_check,
        deploy_strategy,
        stopped,
        role: None,
        url: state.app_url(&app.name),
        name: app.name,
        release,
        created_at: app.created_at,
        redirect_https: settings.redirect_https,
        first_byte_timeout: settings.first_byte_timeout_secs,
        build_timeout,
        stop_grace,
    })
}

/// `GET /v1/apps`: the apps the caller owns or collaborates on, each with the caller's role.
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<axum::Json<Vec<AppInfo>>, ApiError> {
    let mut apps = Vec::new();
    for (app, role) in state.store.apps_with_role(caller.0.id).await? {
        let mut info = info(&state, app).await?;
        info.role = Some(role.as_str().to_owned());
        apps.push(info);
    }
    Ok(axum::Json(apps))
}

/// `POST /v1/apps`
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    Json(body): Json<AppCreate>,
) -> Result<(StatusCode, axum::Json<AppInfo>), ApiError> {
    let name = AppName::new(body.name)?;
    check_constraints(&body.constraints)?;
    check_quota(&state, &caller, |usage| store::QuotaUsage {
        apps: usage.apps + 1,
        ..usage
    })
    .await?;
    let app = state
        .store
        .create_app(caller.0.id, &name)
        .await
        .map_err(|err| match err {
            StoreError::Conflict { .. } => ApiError::Conflict(format!(
                "app name {:?} is already taken: choose another",
                name.as_str()
            )),
            err => err.into(),
        })?;
    if !body.constraints.is_empty() {
        state.store.set_app_constraints(app.id, &body.constraints).await?;
    }
    tracing::info!(app = %app.name, account = %caller.0.name, "app created");
    let description = format!("Created app {}", app.name);
    super::events::record(
        &state,
        app.id,
        store::EventKind::AppCreated,
        &description,
        caller.0.name.as_str(),
    )
    .await;
    // The router learns the new host at once (503 until something runs, rather than 404).
    state.controller.notify(Event::AppCreated(app.id));
    Ok((StatusCode::CREATED, axum::Json(info(&state, app).await?)))
}

/// Refuses a change of the caller's usage that a quota does not allow (403 naming the quota).
pub(crate) async fn check_quota(
    state: &ApiState,
    caller: &Caller,
    change: impl FnOnce(store::QuotaUsage) -> store::QuotaUsage,
) -> Result<(), ApiError> {
    check_quota_of(state, caller.0.id, change).await
}

/// [`check_quota`] for the account that owns an app (a collaborator's scaling counts against the owner).
pub(crate) async fn check_quota_of(
    state: &ApiState,
    account: vocabulary::AccountId,
    change: impl FnOnce(store::QuotaUsage) -> store::QuotaUsage,
) -> Result<(), ApiError> {
    use controller::quota::QuotaError;
    match state
        .lifecycle
        .quotas()
        .check_change(&state.store, account, change)
        .await
    {
        Ok(()) => Ok(()),
        Err(QuotaError::Exceeded(exceeded)) => Err(exceeded.into()),
        Err(QuotaError::Store(error)) => Err(error.into()),
    }
}

/// `GET /v1/apps/{name}`
pub async fn show(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<axum::Json<AppInfo>, ApiError> {
    let app = app_for(&state, &caller, &name, Permission::Read).await?;
    Ok(axum::Json(info(&state, app).await?))
}

/// `timeout` as seconds, refused outside `range`.
fn seconds_in(field: &str, timeout: i64, range: std::ops::RangeInclusive<i64>) -> Result<u32, ApiError> {
    u32::try_from(timeout)
        .ok()
        .filter(|_| range.contains(&timeout))
        .ok_or_else(|| {
            ApiError::Invalid(format!(
                "{field} must be between {} and {} seconds, got {timeout}",
                range.start(),
                range.end()
            ))
        })
}

/// `PATCH /v1/apps/{name}`: router settings (HTTPS redirect, first-byte timeout), the build time limit and the
/// instances' stop grace;
/// `null` resets a timeout to its default.
pub async fn update(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(body): Json<AppUpdate>,
) -> Result<axum::Json<AppInfo>, ApiError> {
    let app = app_for(&state, &caller, &name, Permission::Deploy).await?;
    let mut settings = state.store.router_settings(app.id).await?;
    if let Some(redirect) = body.redirect_https {
        settings.redirect_https = redirect;
    }
    match body.first_byte_timeout {
        None => {}
        Some(None) => settings.first_byte_timeout_secs = None,
        Some(Some(timeout)) => {
            let secs = seconds_in(
                "first_byte_timeout",
                timeout,
                api_contract::FIRST_BYTE_TIMEOUT_SECS,
            )?;
            settings.first_byte_timeout_secs = Some(secs);
        }
    }
    if let Some(timeout) = body.build_timeout {
        let secs = timeout
            .map(|t| seconds_in("build_timeout", t, api_contract::BUILD_TIMEOUT_SECS))
            .transpose()?;
        state.store.set_build_timeout_secs(app.id, secs).await?;
        tracing::info!(app = %app.name, build_timeout_secs = ?secs, "build time limit changed");
    }
    if let Some(grace) = body.stop_grace {
        let secs = grace
            .map(|t| seconds_in("stop_grace", t, api_contract::STOP_GRACE_SECS))
            .transpose()?;
        state.store.set_stop_grace_secs(app.id, secs).await?;
        tracing::info!(app = %app.name, stop_grace_secs = ?secs, "stop grace changed");
    }
    update_deploy_settings(&state, &app, &body).await?;
    state.store.set_router_settings(app.id, settings).await?;
    tracing::info!(app = %app.name, redirect_https = settings.redirect_https,
        first_byte_timeout_secs = ?settings.first_byte_timeout_secs, "router settings changed");
    state.controller.notify(Event::RoutesChanged(app.id));
    Ok(axum::Json(info(&state, app).await?))
}

/// The deploy settings of an `AppUpdate`: boot and deploy timeouts, health check, strategy.
async fn update_deploy_settings(
    state: &ApiState,
    app: &store::App,
    body: &AppUpdate,
) -> Result<(), ApiError> {
    if let Some(timeout) = body.boot_timeout {
        let secs = timeout
            .map(|t| seconds_in("boot_timeout", t, api_contract::BOOT_TIMEOUT_SECS))
            .transpose()?;
        state.store.set_boot_timeout_secs(app.id, secs).await?;
        tracing::info!(app = %app.name, boot_timeout_secs = ?secs, "boot timeout changed");
    }
    if let Some(timeout) = body.deploy_timeout {
        let secs = timeout
            .map(|t| seconds_in("deploy_timeout", t, api_contract::DEPLOY_TIMEOUT_SECS))
            .transpose()?;
        state.store.set_deploy_timeout_secs(app.id, secs).await?;
        tracing::info!(app = %app.name, deploy_timeout_secs = ?secs, "deploy timeout changed");
    }
    if let Some(path) = &body.health_check {
        if let Some(path) = path {
            controller::app_json::check_path(path)
                .map_err(|e| ApiError::Invalid(format!("health_check {e}")))?;
        }
        state.store.set_health_check_path(app.id, path.as_deref()).await?;
        tracing::info!(app = %app.name, health_check = ?path, "health check changed");
    }
    if let Some(constraints) = &body.constraints {
        check_constraints(constraints)?;
        state.store.set_app_constraints(app.id, constraints).await?;
        tracing::info!(app = %app.name, constraints = %vocabulary::labels_text(constraints), "constraints changed");
        state.controller.notify(Event::FormationChanged(app.id));
    }
    if let Some(strategy) = &body.deploy_strategy {
        let strategy: vocabulary::DeployStrategy = strategy.parse().map_err(ApiError::Invalid)?;
        state.store.set_deploy_strategy(app.id, strategy).await?;
        tracing::info!(app = %app.name, %strategy, "deploy strategy changed");
        state.controller.notify(Event::FormationChanged(app.id));
    }
    Ok(())
}

/// Constraints are node labels: the same `key=value` rules.
fn check_constraints(constraints: &std::collections::BTreeMap<String, String>) -> Result<(), ApiError> {
    vocabulary::Label::check_map(constraints).map_err(|e| ApiError::Invalid(format!("constraint: {e}")))
}

/// `DELETE /v1/apps/{name}`: removes the app from the store, then tells the controller to stop its instances.
pub async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let app = app_for(&state, &caller, &name, Permission::Manage("delete the app")).await?;
    // The repository goes first: once the name is free in the store, someone may create it again.
    git_receive::delete_repo(&state.repos_dir, &app.name).map_err(ApiError::DeleteRepo)?;
    state.store.delete_app(app.id).await?;
    state.controller.notify(Event::AppDeleted(app.id));
    // One-offs are not in the store: killed here, or a detached one would outlive its app unseen.
    if let Some(one_offs) = state.lifecycle.one_offs() {
        one_offs.stop_all(app.id).await;
    }
    state.logs.remove(app.id).await?;
    tracing::info!(app = %app.name, account = %caller.0.name, "app deleted");
    Ok(StatusCode::NO_CONTENT)
}
