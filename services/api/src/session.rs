//! The dashboard's cookie sessions as a second way to authenticate `/v1` requests. A request with an
//! `Authorization` header is a token request and never looks at cookies; one without it may carry the
//! session cookie ([`api_contract::SESSION_COOKIE`]), and then, unless it is a GET or HEAD, the session's CSRF
//! token in [`api_contract::CSRF_HEADER`]: a page on another site can make a browser send the cookie (were it
//! not SameSite) but cannot read the token. Sessions are made and ended by the `dashboard` crate.

use api_contract::{CSRF_HEADER, SESSION_COOKIE};
use axum::http::header::COOKIE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};

use crate::{ApiError, ApiState, Caller};

/// The session id from the `Cookie` header(s), if the session cookie is there and not empty.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// True for methods that change nothing, which need no CSRF token.
fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD)
}

/// Compares in time that depends only on the lengths, so the token cannot be guessed byte by byte.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The caller of a request that carries the session cookie `id`; refuses a state-changing request whose
/// CSRF header is missing or wrong (403).
pub async fn session_caller(state: &ApiState, parts: &Parts, id: &str) -> Result<Caller, ApiError> {
    let session = state.store.session(id).await?.ok_or(ApiError::InvalidSession)?;
    if !is_safe(&parts.method) {
        let sent = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !same_secret(sent, &session.csrf_token) {
            return Err(ApiError::CsrfRejected);
        }
    }
    tracing::debug!(account = %session.account.name, "authenticated by dashboard session");
    Ok(Caller(session.account))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_forms() {
        let cases: &[(&[&str], Option<&str>)] = &[
            (&["berth_session=abc"], Some("abc")),
            (&["a=1; berth_session=abc; b=2"], Some("abc")),
            (&["a=1", "berth_session=abc"], Some("abc")),
            (&["berth_sessionx=abc"], None),
            (&["berth_session="], None),
            (&["other=berth_session"], None),
            (&[], None),
        ];
        for (headers, want) in cases {
            let mut map = HeaderMap::new();
            for h in *headers {
                map.append(COOKIE, h.parse().unwrap());
            }
            assert_eq!(session_cookie(&map), *want, "{headers:?}");
        }
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert!(!same_secret("", "abc"));
    }
}
