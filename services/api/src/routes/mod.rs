//! The handlers, one module per resource.

pub mod accounts;
pub mod admin_accounts;
pub mod admin_apps;
pub mod admin_audit;
pub mod admin_nodes;
pub mod apps;
pub mod certificates;
pub mod collaborators;
pub mod config;
pub mod domains;
pub mod events;
pub mod formation;
pub mod image_deploys;
pub mod instances;
pub mod lifecycle;
pub mod logs;
pub mod password;
pub mod rebase;
pub mod releases;
pub mod route_watch;
pub mod runs;
pub mod tokens;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use vocabulary::AppName;

use crate::{ApiError, ApiState, Caller};

/// The `/v1` routes of accounts and access (collaborators, tokens, the admin API), merged into the `/v1`
/// router before its auth and audit layers.
pub(crate) fn access_routes() -> axum::Router<ApiState> {
    use axum::routing::{delete, get, post, put};
    axum::Router::new()
        .route(
            "/apps/{name}/collaborators",
            get(collaborators::list).post(collaborators::add),
        )
        .route(
            "/apps/{name}/collaborators/{account}",
            delete(collaborators::remove),
        )
        .route("/tokens", get(tokens::list).post(tokens::create))
        .route("/tokens/{id}", delete(tokens::revoke))
        .route(
            "/admin/accounts",
            get(admin_accounts::list).post(admin_accounts::create),
        )
        .route("/admin/accounts/{name}", delete(admin_accounts::delete))
        .route("/admin/accounts/{name}/suspend", post(admin_accounts::suspend))
        .route(
            "/admin/accounts/{name}/unsuspend",
            post(admin_accounts::unsuspend),
        )
        .route("/admin/accounts/{name}/quotas", put(admin_accounts::set_quotas))
        .route("/admin/apps", get(admin_apps::list))
        .route("/admin/apps/{name}/stop", post(admin_apps::stop))
        .route("/admin/audit", get(admin_audit::list))
}

/// `GET /healthz`: 200 once the API is serving.
pub async fn healthz() -> (StatusCode, &'static str) {
    (StatusCode::OK, "ok\n")
}

/// Unknown paths get a JSON 404 like every other error; unknown `/v2` paths get the registry's answer.
pub async fn no_route(State(state): State<ApiState>, req: Request) -> Response {
    let (mut parts, _body) = req.into_parts();
    if crate::registry::is_registry_path(parts.uri.path()) {
        return match crate::registry::Puller::from_request_parts(&mut parts, &state).await {
            Ok(puller) => crate::registry::unknown(puller, parts.method, parts.uri).await,
            Err(error) => error,
        }
        .into_response();
    }
    ApiError::NoRoute {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
    }
    .into_response()
}

/// A response whose body streams lines of `content_type` as they come.
pub(crate) fn line_stream(body: axum::body::Body, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(content_type),
    );
    // Proxies in between must pass lines on as they come.
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-cache"),
    );
    response
}

/// What a route does to an app, which decides who may: reading it, deploying and running it (config, scale,
/// restart, runs, rollbacks, domains, certificates, settings), or managing it (deleting it, managing access).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Permission {
    Read,
    Deploy,
    /// Only the owner; the action named in the refusal.
    Manage(&'static str),
}

/// Whether `role` has `need`. Admins get no special role on tenant routes (like Heroku): they act on others'
/// apps through the admin API (`/v1/admin/apps`), so an admin's own tenant view stays its own.
pub(crate) fn permits(role: store::AppRole, need: Permission) -> bool {
    match (role, need) {
        (store::AppRole::Owner, _) => true,
        (store::AppRole::Collaborator, Permission::Read | Permission::Deploy) => true,
        (store::AppRole::Collaborator, Permission::Manage(_)) => false,
    }
}

/// The app named in the path, if the caller owns it or collaborates on it, and its role permits `need`. A
/// name that is not even valid, an app that does not exist and an app the caller has no part in all get the
/// same answer (404); a collaborator asking for what only the owner may do gets 403.
pub(crate) async fn app_for(
    state: &ApiState,
    caller: &Caller,
    name: &str,
    need: Permission,
) -> Result<store::App, ApiError> {
    let not_found = || ApiError::AppNotFound {
        name: name.to_owned(),
    };
    let app_name = AppName::new(name).map_err(|_| not_found())?;
    let (app, role) = state
        .store
        .app_with_role(caller.0.id, &app_name)
        .await?
        .ok_or_else(not_found)?;
    if !permits(role, need) {
        let Permission::Manage(action) = need else {
            unreachable!("only Manage is refused to a member")
        };
        return Err(ApiError::OwnerOnly {
            app: app.name.to_string(),
            action,
        });
    }
    Ok(app)
}

/// The account named, or 404 (unknown accounts and bad names alike).
pub(crate) async fn account_named(state: &ApiState, name: &str) -> Result<store::Account, ApiError> {
    let not_found = || ApiError::AccountNotFound {
        name: name.to_owned(),
    };
    let name = vocabulary::AccountName::new(name).map_err(|_| not_found())?;
    state.store.account_by_name(&name).await?.ok_or_else(not_found)
}

/// The admin's account, or 403 naming `action`.
pub(crate) fn require_admin(caller: &Caller, action: &'static str) -> Result<(), ApiError> {
    if caller.0.is_admin {
        Ok(())
    } else {
        Err(ApiError::AdminOnly { action })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::AppRole::{Collaborator, Owner};

    #[test]
    fn permission_matrix() {
        let manage = Permission::Manage("delete the app");
        let cases = [
            (Owner, Permission::Read, true),
            (Owner, Permission::Deploy, true),
            (Owner, manage, true),
            (Collaborator, Permission::Read, true),
            (Collaborator, Permission::Deploy, true),
            (Collaborator, manage, false),
        ];
        for (role, need, want) in cases {
            assert_eq!(permits(role, need), want, "{role:?} {need:?}");
        }
    }
}
