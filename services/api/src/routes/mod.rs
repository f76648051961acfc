//! The handlers, one module per resource.

pub mod accounts;
pub mod apps;
pub mod certificates;
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

use axum::extract::{FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use vocabulary::AppName;

use crate::{ApiError, ApiState, Caller};

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

/// The app named in the path, if the caller owns it. A name that is not even valid, an app that does not
/// exist and another account's app all get the same answer.
pub(crate) async fn owned_app(state: &ApiState, caller: &Caller, name: &str) -> Result<store::App, ApiError> {
    let not_found = || ApiError::AppNotFound {
        name: name.to_owned(),
    };
    let app_name = AppName::new(name).map_err(|_| not_found())?;
    state
        .store
        .app_owned_by(caller.0.id, &app_name)
        .await?
        .ok_or_else(not_found)
}
