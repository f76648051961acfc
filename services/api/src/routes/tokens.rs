//! `GET/POST /v1/tokens` and `DELETE /v1/tokens/{id}`: the caller's own API tokens. Tokens are shown once, at
//! creation; listings show an id (the first hex digits of the token's SHA-256), the scope and when it was
//! made and last used.

use api_contract::access::{TokenCreate, TokenCreated, TokenListing};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use store::TokenScope;

use crate::json::Json;
use crate::{ApiError, ApiState, Caller};

/// The shortest id prefix `DELETE /v1/tokens/{id}` accepts.
const MIN_ID_PREFIX: usize = 6;

/// `GET /v1/tokens`
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<axum::Json<Vec<TokenListing>>, ApiError> {
    let tokens = state.store.tokens_of(caller.0.id).await?;
    Ok(axum::Json(
        tokens
            .into_iter()
            .map(|t| TokenListing {
                id: t.id,
                scope: t.scope.to_string(),
                created_at: t.created_at,
                last_used_at: t.last_used_at,
            })
            .collect(),
    ))
}

/// `POST /v1/tokens` with `{"scope": "read"}` (or `full`, the default).
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    Json(body): Json<TokenCreate>,
) -> Result<(StatusCode, axum::Json<TokenCreated>), ApiError> {
    let scope: TokenScope = body
        .scope
        .as_deref()
        .unwrap_or("full")
        .parse()
        .map_err(ApiError::Invalid)?;
    let (info, token) = state.store.create_token(caller.0.id, scope).await?;
    tracing::info!(account = %caller.0.name, %scope, id = %info.id, "token created");
    Ok((
        StatusCode::CREATED,
        axum::Json(TokenCreated {
            id: info.id,
            scope: scope.to_string(),
            token,
        }),
    ))
}

/// `DELETE /v1/tokens/{id}`: `id` or a unique prefix of it (at least 6 hex digits).
pub async fn revoke(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let valid = id.len() >= MIN_ID_PREFIX
        && id.len() <= store::TOKEN_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !valid {
        return Err(ApiError::Invalid(format!(
            "token id {id:?} is not an id from `berth tokens` ({MIN_ID_PREFIX} to {} lowercase hex digits)",
            store::TOKEN_ID_LEN
        )));
    }
    match state.store.revoke_token(caller.0.id, &id).await? {
        0 => Err(ApiError::TokenNotFound { id }),
        1 => {
            tracing::info!(account = %caller.0.name, %id, "token revoked");
            Ok(StatusCode::NO_CONTENT)
        }
        _ => Err(ApiError::Conflict(format!(
            "token id prefix {id:?} matches several tokens: give more of the id"
        ))),
    }
}
