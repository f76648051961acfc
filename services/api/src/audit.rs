//! The audit layer over every `/v1` route: each request that may change something (any method but GET and
//! HEAD) made with a valid token is recorded after it is answered — account, token scope, method and matched
//! route template (`POST /v1/apps/{name}/formation`), target (`app NAME`, `account NAME`, `node NAME`) and
//! the status.
//! Bodies are never read, so no secret (config values, keys) reaches the log.

use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use crate::auth::Scope;
use crate::{ApiState, Caller};

/// What a request acted on, from its route template and path parameters.
fn target(template: &str, params: &[(String, String)]) -> Option<String> {
    let name = params.iter().find(|(key, _)| key == "name").map(|(_, v)| v)?;
    if template.starts_with("/v1/admin/accounts/") {
        Some(format!("account {name}"))
    } else if template.starts_with("/v1/admin/nodes/") {
        Some(format!("node {name}"))
    } else {
        Some(format!("app {name}"))
    }
}

/// Middleware: records changes; must run inside [`crate::auth::require_token`] (which puts the caller in).
pub(crate) async fn record(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    if req.method() == Method::GET || req.method() == Method::HEAD {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let template = parts
        .extensions
        .get::<MatchedPath>()
        .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
    let params: Vec<(String, String)> = RawPathParams::from_request_parts(&mut parts, &state)
        .await
        .map(|raw| raw.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
        .unwrap_or_default();
    let caller = parts.extensions.get::<Caller>().cloned();
    let scope = parts.extensions.get::<Scope>().copied();
    let method = parts.method.clone();
    let response = next.run(Request::from_parts(parts, body)).await;
    let (Some(Caller(account)), Some(Scope(scope))) = (caller, scope) else {
        return response;
    };
    let entry = store::NewAuditEntry {
        account: account.name.to_string(),
        token_scope: scope.to_string(),
        action: format!("{method} {template}"),
        target: target(&template, &params),
        status: response.status().as_u16(),
    };
    if let Err(error) = state.store.record_audit(&entry).await {
        tracing::error!(action = %entry.action, error = %crate::error::chain(&error), "recording an audit entry");
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_name_apps_accounts_and_nodes() {
        let name = |v: &str| vec![("name".to_owned(), v.to_owned())];
        let cases = [
            ("/v1/apps/{name}/formation", name("shop"), Some("app shop")),
            ("/v1/admin/apps/{name}/stop", name("shop"), Some("app shop")),
            (
                "/v1/admin/accounts/{name}/suspend",
                name("bob"),
                Some("account bob"),
            ),
            (
                "/v1/admin/nodes/{name}/cordon",
                name("node-1"),
                Some("node node-1"),
            ),
            ("/v1/apps", vec![], None),
            ("/v1/tokens/{id}", vec![("id".to_owned(), "abc".to_owned())], None),
        ];
        for (template, params, want) in cases {
            assert_eq!(target(template, &params).as_deref(), want, "{template}");
        }
    }
}
