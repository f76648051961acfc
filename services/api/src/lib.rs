//! The public HTTP API (axum, JSON): whoami, accounts (admin only), apps, collaborators, API tokens and their
//! scopes, the operators' admin API (`/v1/admin/...`: accounts, quotas, suspension, every app, the audit log),
//! custom domains, TLS certificates, formation (scaling), instances, releases, config vars, rollbacks,
//! stopping/starting/restarting apps, logs (followed live), events, rebases onto the current stack, deploys of
//! existing images, the route table's watch stream for routers (admin only), and the OCI distribution pull API
//! (`/v2/...`) for apps' images, in the registry clients' own auth and errors. Every `/v1` route authenticates the
//! caller by bearer token or the web dashboard's session cookie (with a CSRF header on changes: `session`;
//! read-only tokens may only GET; suspended accounts get 403), every change is recorded in
//! the audit log, and an app the caller neither owns nor collaborates on is answered exactly like an app that does
//! not exist (404), so tenants cannot even learn each other's app names beyond "taken" when creating one.
//!
//! It changes the store and tells the controller what changed ([`controller::Event`]); it never starts, stops
//! or places instances itself, and never runs a build. The git routes live in `git-receive`; `berth server`
//! merges both routers. Request and response bodies are the `api-contract` crate's types, shared with the CLI.

mod audit;
mod auth;
pub mod certificates;
mod error;
mod json;
mod registry;
mod routes;
pub mod session;

pub use auth::Caller;
pub use error::ApiError;
pub use registry::RegistryError;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::{middleware, Router};
use tower_http::trace::TraceLayer;

/// The largest JSON request body accepted; larger ones get 413.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// What the API's handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub store: store::Store,
    pub controller: controller::ControllerHandle,
    /// Memory per instance for a process type scaled for the first time.
    pub default_memory_bytes: u64,
    /// Apps are served at `NAME.DOMAIN`.
    pub domain: String,
    /// The router's port, shown in app URLs (left out when 80).
    pub router_port: u16,
    /// Where git receive keeps apps' bare repositories: an app's goes with the app, so that a new app of the
    /// same name (perhaps another tenant's) never sees the old one's refs.
    pub repos_dir: std::path::PathBuf,
    /// The controller's current route table, streamed to routers by `GET /v1/routes/watch`.
    pub routes: tokio::sync::watch::Receiver<std::sync::Arc<route_table::RouteTable>>,
    /// How often the route stream sends a heartbeat while nothing changes
    /// ([`api_contract::ROUTE_HEARTBEAT_SECS`] in the server; shorter in tests).
    pub route_heartbeat: std::time::Duration,
    /// The image store, read by the registry's pull routes (`/v2/...`).
    pub images: image_store::ImageStore,
    /// Where the current stack is recorded (`stack::StackConfig::stacks_dir`), for rebases.
    pub stacks_dir: std::path::PathBuf,
    /// Deploys of existing images (`POST /v1/apps/{name}/deploys`); `None` refuses them.
    pub image_deploys: Option<controller::ImageDeploys>,
    /// The apps' logs (`GET /v1/apps/{name}/logs`).
    pub logs: app_logs::AppLogs,
    /// Config changes, rollbacks, stop/start and restarts.
    pub lifecycle: controller::Lifecycle,
}

impl ApiState {
    /// Where the router serves an app: `http://NAME.DOMAIN[:PORT]`.
    pub fn app_url(&self, app: &vocabulary::AppName) -> String {
        match self.router_port {
            80 => format!("http://{app}.{}", self.domain),
            port => format!("http://{app}.{}:{port}", self.domain),
        }
    }
}

/// The API's routes, with authentication, the body limit and request tracing applied.
pub fn router(state: ApiState) -> Router {
    let v1 = Router::new()
        .route("/account", get(routes::accounts::whoami))
        .route("/account/password", axum::routing::put(routes::password::set))
        .route("/accounts", axum::routing::post(routes::accounts::create))
        .route("/apps", get(routes::apps::list).post(routes::apps::create))
        .route(
            "/apps/{name}",
            get(routes::apps::show)
                .patch(routes::apps::update)
                .delete(routes::apps::delete),
        )
        .route(
            "/apps/{name}/formation",
            get(routes::formation::show).patch(routes::formation::scale),
        )
        .route(
            "/apps/{name}/domains",
            get(routes::domains::list).post(routes::domains::add),
        )
        .route(
            "/apps/{name}/domains/{domain}",
            axum::routing::delete(routes::domains::remove),
        )
        .route(
            "/apps/{name}/certificates",
            get(routes::certificates::list).post(routes::certificates::add),
        )
        .route(
            "/apps/{name}/certificates/{id}",
            axum::routing::delete(routes::certificates::remove),
        )
        .route("/apps/{name}/instances", get(routes::instances::list))
        .route("/apps/{name}/releases", get(routes::releases::list))
        .route("/apps/{name}/logs", get(routes::logs::show))
        .route("/apps/{name}/events", get(routes::events::list))
        .route("/apps/{name}/releases/{version}", get(routes::releases::show))
        .route(
            "/apps/{name}/config",
            get(routes::config::show).patch(routes::config::update),
        )
        .route(
            "/apps/{name}/rollback",
            axum::routing::post(routes::lifecycle::rollback),
        )
        .route("/apps/{name}/stop", axum::routing::post(routes::lifecycle::stop))
        .route(
            "/apps/{name}/start",
            axum::routing::post(routes::lifecycle::start),
        )
        .route(
            "/apps/{name}/restart",
            axum::routing::post(routes::lifecycle::restart),
        )
        .route(
            "/apps/{name}/runs",
            get(routes::runs::list).post(routes::runs::create),
        )
        .route(
            "/apps/{name}/runs/{run}",
            axum::routing::delete(routes::runs::stop),
        )
        .route("/apps/{name}/rebase", axum::routing::post(routes::rebase::rebase))
        .route(
            "/apps/{name}/deploys",
            axum::routing::post(routes::image_deploys::create),
        )
        .route(
            "/router-tokens",
            axum::routing::post(routes::accounts::create_router_token),
        )
        .merge(routes::admin_nodes::routes())
        .merge(routes::access_routes())
        // Inner layer: runs after `require_token` has found the caller.
        .route_layer(middleware::from_fn_with_state(state.clone(), audit::record))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::require_token));
    Router::new()
        .route("/healthz", get(routes::healthz))
        // Outside the `/v1` token layer: router tokens may read this, and only this.
        .route("/v1/routes/watch", get(routes::route_watch::watch))
        .nest("/v1", v1)
        // The OCI distribution pull API, with its own auth (Basic or Bearer) and error bodies.
        .merge(registry::routes())
        .fallback(routes::no_route)
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
