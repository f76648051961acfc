//! The operators' accounts API (admin tokens only): `GET/POST /v1/admin/accounts` (list with usage against
//! quotas; create), `POST /v1/admin/accounts/{name}/suspend` and `/unsuspend`, `DELETE
//! /v1/admin/accounts/{name}` and `PUT /v1/admin/accounts/{name}/quotas`.
//!
//! Suspending refuses the account's tokens (403 "account suspended") and stops its apps through the same path
//! as `berth apps stop`. Unsuspending does not start them again: the owner (or an operator) starts each with
//! `berth apps start`, so nothing runs that nobody asked to run.

use api_contract::access::{AdminAccount, AdminDone, QuotaUse, Quotas};
use api_contract::{AccountCreate, AccountCreated};
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::{account_named, require_admin};
use crate::json::Json;
use crate::{ApiError, ApiState, Caller};

async fn view(state: &ApiState, account: store::Account, suspended: bool) -> Result<AdminAccount, ApiError> {
    let quotas = state.lifecycle.quotas();
    let overrides = state.store.quota_overrides(account.id).await?;
    let limits = quotas.defaults().with(overrides);
    let usage = state.store.quota_usage(account.id).await?;
    Ok(AdminAccount {
        usage: QuotaUse {
            apps: usage.apps,
            instances: usage.instances,
            memory_bytes: usage.memory_bytes,
            builds: quotas.running_builds(account.id),
        },
        limits: QuotaUse {
            apps: limits.apps,
            instances: limits.instances,
            memory_bytes: limits.memory_bytes,
            builds: limits.builds,
        },
        overrides: Quotas {
            apps: overrides.apps,
            instances: overrides.instances,
            memory_bytes: overrides.memory_bytes,
            builds: overrides.builds,
        },
        name: account.name,
        is_admin: account.is_admin,
        suspended,
        created_at: account.created_at,
    })
}

/// `GET /v1/admin/accounts`
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<axum::Json<Vec<AdminAccount>>, ApiError> {
    require_admin(&caller, "list accounts")?;
    let mut accounts = Vec::new();
    for (account, suspended) in state.store.accounts().await? {
        accounts.push(view(&state, account, suspended).await?);
    }
    Ok(axum::Json(accounts))
}

/// `POST /v1/admin/accounts`: the same as `POST /v1/accounts`.
pub async fn create(
    state: State<ApiState>,
    caller: Caller,
    body: Json<AccountCreate>,
) -> Result<(StatusCode, axum::Json<AccountCreated>), ApiError> {
    super::accounts::create(state, caller, body).await
}

/// `POST /v1/admin/accounts/{name}/suspend`: refuses its tokens and stops its apps.
pub async fn suspend(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<axum::Json<AdminDone>, ApiError> {
    require_admin(&caller, "suspend accounts")?;
    let account = account_named(&state, &name).await?;
    if account.id == caller.0.id {
        return Err(ApiError::Conflict(
            "you cannot suspend your own account: ask another admin".to_owned(),
        ));
    }
    state.store.set_account_suspended(account.id, true).await?;
    let apps = state.store.apps_of(account.id).await?;
    for app in &apps {
        // The stop is recorded at once; waiting for instances to go is the controller's business.
        if let Err(reason) = state.lifecycle.stop(app).await? {
            tracing::warn!(app = %app.name, %reason, "stopping a suspended account's app");
        }
    }
    tracing::info!(account = %account.name, by = %caller.0.name, apps = apps.len(), "account suspended");
    Ok(axum::Json(AdminDone {
        message: format!(
            "Suspended {}: its tokens are refused and its {} app(s) are stopped",
            account.name,
            apps.len()
        ),
    }))
}

/// `POST /v1/admin/accounts/{name}/unsuspend`: its tokens work again; its apps stay stopped.
pub async fn unsuspend(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<axum::Json<AdminDone>, ApiError> {
    require_admin(&caller, "unsuspend accounts")?;
    let account = account_named(&state, &name).await?;
    state.store.set_account_suspended(account.id, false).await?;
    tracing::info!(account = %account.name, by = %caller.0.name, "account unsuspended");
    Ok(axum::Json(AdminDone {
        message: format!(
            "Unsuspended {}: its apps stay stopped until started (`berth apps start NAME`)",
            account.name
        ),
    }))
}

/// `DELETE /v1/admin/accounts/{name}`: only an account that owns no app (409 otherwise).
pub async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    require_admin(&caller, "delete accounts")?;
    let account = account_named(&state, &name).await?;
    if account.id == caller.0.id {
        return Err(ApiError::Conflict(
            "you cannot delete your own account: ask another admin".to_owned(),
        ));
    }
    let apps = state.store.apps_of(account.id).await?;
    if !apps.is_empty() {
        let names: Vec<&str> = apps.iter().map(|a| a.name.as_str()).collect();
        return Err(ApiError::Conflict(format!(
            "account {} still owns {} app(s) ({}): delete them first",
            account.name,
            apps.len(),
            names.join(", ")
        )));
    }
    state.store.delete_account(account.id).await?;
    tracing::info!(account = %account.name, by = %caller.0.name, "account deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /v1/admin/accounts/{name}/quotas`: the account's own limits; a missing or null field is the default.
pub async fn set_quotas(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(body): Json<Quotas>,
) -> Result<axum::Json<AdminAccount>, ApiError> {
    require_admin(&caller, "set quotas")?;
    let account = account_named(&state, &name).await?;
    let overrides = store::QuotaOverrides {
        apps: body.apps,
        instances: body.instances,
        memory_bytes: body.memory_bytes,
        builds: body.builds,
    };
    state.store.set_quota_overrides(account.id, overrides).await?;
    tracing::info!(account = %account.name, by = %caller.0.name, ?overrides, "quotas set");
    let suspended = state.store.account_suspended(account.id).await?;
    Ok(axum::Json(view(&state, account, suspended).await?))
}
