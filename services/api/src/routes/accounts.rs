use api_contract::{AccountCreate, AccountCreated, AccountInfo, RouterTokenCreated};
use axum::http::StatusCode;
use store::StoreError;
use vocabulary::AccountName;

use crate::json::Json;
use crate::{ApiError, ApiState, Caller};

/// `GET /v1/account`
pub async fn whoami(Caller(account): Caller) -> axum::Json<AccountInfo> {
    axum::Json(AccountInfo {
        name: account.name,
        is_admin: account.is_admin,
        created_at: account.created_at,
    })
}

/// `POST /v1/router-tokens` (admin only): a token that can only read the route stream, for `berth router
/// --api` on another machine.
pub async fn create_router_token(
    axum::extract::State(state): axum::extract::State<ApiState>,
    Caller(caller): Caller,
) -> Result<(StatusCode, axum::Json<RouterTokenCreated>), ApiError> {
    if !caller.is_admin {
        return Err(ApiError::AdminOnly {
            action: "create router tokens",
        });
    }
    let token = state.store.create_router_token(caller.id).await?;
    tracing::info!(by = %caller.name, "router token created");
    Ok((StatusCode::CREATED, axum::Json(RouterTokenCreated { token })))
}

/// `POST /v1/accounts` (admin only): a new tenant account and its first token.
pub async fn create(
    axum::extract::State(state): axum::extract::State<ApiState>,
    Caller(caller): Caller,
    Json(body): Json<AccountCreate>,
) -> Result<(StatusCode, axum::Json<AccountCreated>), ApiError> {
    if !caller.is_admin {
        return Err(ApiError::AdminOnly {
            action: "create accounts",
        });
    }
    let name = AccountName::new(body.name)?;
    let (account, token) = state
        .store
        .create_account(&name, false)
        .await
        .map_err(|err| match err {
            StoreError::Conflict { .. } => {
                ApiError::Conflict(format!("account name {:?} is already taken", name.as_str()))
            }
            err => err.into(),
        })?;
    tracing::info!(account = %account.name, by = %caller.name, "account created");
    Ok((
        StatusCode::CREATED,
        axum::Json(AccountCreated {
            name: account.name,
            token,
        }),
    ))
}
