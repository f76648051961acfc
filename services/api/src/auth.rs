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

/// The scope of the token the request came with (beside [`Caller`]), for the audit log.
#[derive(Debug, Clone, Copy)]
pub struct Scope(pub store::TokenScope);

/// The one place token scopes and suspension are enforced: a suspended account's tokens are refused, and a
/// read-only token may only read (GET, HEAD), whatever the route.
pub(crate) fn check_access(access: &store::TokenAccess, method: &axum::http::Method) -> Result<(), ApiError> {
    if access.suspended {
        return Err(ApiError::AccountSuspended);
    }
    let reads = method == axum::http::Method::GET || method == axum::http::Method::HEAD;
    if access.scope == store::TokenScope::Read && !reads {
        return Err(ApiError::ReadOnlyToken);
    }
    Ok(())
}

/// Middleware: resolves the token to an account, or answers 401; refuses suspended accounts and writes with
/// read-only tokens (403).
pub async fn require_token(
    State(state): State<ApiState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    let (caller, scope) = caller(&state, &parts).await?;
    parts.extensions.insert(Scope(scope));
    parts.extensions.insert(caller);
    Ok(next.run(Request::from_parts(parts, body)).await)
}

/// Who makes the request, and with which scope: the bearer token's account, or (with no `Authorization`
/// header) the dashboard session's, whose CSRF rule `session::session_caller` applies and which acts with
/// the full scope. A suspended account is refused either way.
pub async fn caller(state: &ApiState, parts: &Parts) -> Result<(Caller, store::TokenScope), ApiError> {
    if !parts.headers.contains_key(AUTHORIZATION) {
        if let Some(id) = crate::session::session_cookie(&parts.headers) {
            let caller = crate::session::session_caller(state, parts, id).await?;
            if state.store.account_suspended(caller.0.id).await? {
                return Err(ApiError::AccountSuspended);
            }
            return Ok((caller, store::TokenScope::Full));
        }
    }
    let token = bearer_token(parts)?;
    let access = state
        .store
        .token_access(token)
        .await?
        .ok_or(ApiError::InvalidToken)?;
    check_access(&access, &parts.method)?;
    tracing::debug!(account = %access.account.name, scope = %access.scope, "authenticated");
    Ok((Caller(access.account), access.scope))
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
        if let Some(access) = state.store.token_access(token).await? {
            check_access(&access, &parts.method)?;
            let account = access.account;
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
    fn scopes_and_suspension_decide_by_method() {
        use axum::http::Method;
        use store::TokenScope::{Full, Read};
        let account = store::Account {
            id: vocabulary::AccountId::new(),
            name: vocabulary::AccountName::new("dev").unwrap(),
            is_admin: false,
            created_at: chrono::Utc::now(),
        };
        // (scope, suspended, method, allowed)
        let cases = [
            (Full, false, Method::POST, Ok(())),
            (Full, false, Method::GET, Ok(())),
            (Read, false, Method::GET, Ok(())),
            (Read, false, Method::HEAD, Ok(())),
            (Read, false, Method::POST, Err("read-only")),
            (Read, false, Method::PATCH, Err("read-only")),
            (Read, false, Method::PUT, Err("read-only")),
            (Read, false, Method::DELETE, Err("read-only")),
            (Full, true, Method::GET, Err("suspended")),
            (Read, true, Method::GET, Err("suspended")),
        ];
        for (scope, suspended, method, want) in cases {
            let access = store::TokenAccess {
                account: account.clone(),
                scope,
                suspended,
            };
            let got = check_access(&access, &method).map_err(|e| e.to_string());
            match (&got, want) {
                (Ok(()), Ok(())) => {}
                (Err(text), Err(want)) if text.contains(want) => {}
                _ => panic!("{scope:?} suspended={suspended} {method}: got {got:?}, want {want:?}"),
            }
        }
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
