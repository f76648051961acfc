//! Bearer-token (or dashboard session) authentication for every `/v1` route (and, apart, for the route stream, which router tokens
//! may also read). The token is never logged.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;

use crate::{ApiError, ApiState};

/// The authenticated account making the request. Handlers take it as an argument; it can only come from
/// [`require_token`], so a handler mounted without the middleware fails closed (401).
#[derive(Debug, Clone)]
pub struct Caller(pub store::Account);

/// The token from `Authorization: Bearer TOKEN` (scheme case-insensitive), if the header is there at all.
fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let header = parts.headers.get(AUTHORIZATION).ok_or(ApiError::MissingToken)?;
    let value = header.to_str().map_err(|_| ApiError::InvalidToken)?;
    let (scheme, token) = value.split_once(' ').ok_or(ApiError::InvalidToken)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::MissingToken);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(ApiError::MissingToken);
    }
    Ok(token)
}

/// Middleware: resolves the token to an account, or answers 401.
pub async fn require_token(
    State(state): State<ApiState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    let caller = caller(&state, &parts).await?;
    parts.extensions.insert(caller);
    Ok(next.run(Request::from_parts(parts, body)).await)
}

/// Who makes the request: the bearer token's account, or (with no `Authorization` header) the dashboard
/// session's, whose CSRF rule `session::session_caller` applies.
pub async fn caller(state: &ApiState, parts: &Parts) -> Result<Caller, ApiError> {
    if !parts.headers.contains_key(AUTHORIZATION) {
        if let Some(id) = crate::session::session_cookie(&parts.headers) {
            return crate::session::session_caller(state, parts, id).await;
        }
    }
    let token = bearer_token(parts)?;
    let account = state
        .store
        .account_for_token(token)
        .await?
        .ok_or(ApiError::InvalidToken)?;
    tracing::debug!(account = %account.name, "authenticated");
    Ok(Caller(account))
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or(ApiError::MissingToken)
    }
}

/// A caller allowed to read the route stream: an admin's API token, or a router token (which authenticates
/// nothing else). Used instead of [`require_token`] on `GET /v1/routes/watch` only.
#[derive(Debug, Clone)]
pub struct RouteReader {
    /// The admin account, when an API token was used (for the log); `None` for a router token.
    pub admin: Option<vocabulary::AccountName>,
}

impl FromRequestParts<ApiState> for RouteReader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let token = bearer_token(parts)?;
        if let Some(account) = state.store.account_for_token(token).await? {
            if !account.is_admin {
                return Err(ApiError::AdminOnly {
                    action: "watch the route table",
                });
            }
            return Ok(Self {
                admin: Some(account.name),
            });
        }
        if state.store.router_token_valid(token).await? {
            return Ok(Self { admin: None });
        }
        Err(ApiError::InvalidToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(header: Option<&str>) -> Parts {
        let mut builder = axum::http::Request::builder();
        if let Some(h) = header {
            builder = builder.header(AUTHORIZATION, h);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn bearer_header_forms() {
        let cases: &[(Option<&str>, Result<&str, &str>)] = &[
            (Some("Bearer berth_abc"), Ok("berth_abc")),
            (Some("bearer berth_abc"), Ok("berth_abc")),
            (Some("Bearer  berth_abc "), Ok("berth_abc")),
            (None, Err("missing")),
            (Some("Bearer "), Err("missing")),
            (Some("Basic dXNlcjpwYXNz"), Err("missing")),
            (Some("berth_abc"), Err("invalid")),
        ];
        for (header, want) in cases {
            let parts = parts(*header);
            match (bearer_token(&parts), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, *want),
                (Err(ApiError::MissingToken), Err("missing"))
                | (Err(ApiError::InvalidToken), Err("invalid")) => {}
                (got, want) => panic!("{header:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
