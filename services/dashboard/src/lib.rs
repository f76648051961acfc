//! The web dashboard, served by the control plane itself under `/dashboard`: sign-in with an account's API
//! token into a cookie session (`dashboard_sessions` in the store), sign-out, and one page whose embedded
//! HTML, CSS and JavaScript (compiled into the binary; no CDN, no build step) call the same `/v1` JSON API
//! as the CLI, authenticated by the session cookie and the session's CSRF token.
//!
//! It holds no copy of the API's logic: every view and change goes through `/v1` (the `api` crate checks the
//! cookie and the CSRF header). It only makes and ends sessions and serves the pages. `berth server` merges
//! its routes beside the API's.

mod assets;
mod error;
mod origin;
mod routes;

pub use error::DashboardError;
pub use origin::same_origin;

use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;

/// What the dashboard's handlers share.
#[derive(Clone)]
pub struct DashboardConfig {
    pub store: store::Store,
    /// Mark the session cookie `Secure` even when the request did not say it came over HTTPS
    /// (`X-Forwarded-Proto: https`), for a server behind a TLS-terminating proxy that does not send it.
    pub secure_cookies: bool,
    /// How long a session lasts after sign-in.
    pub session_lifetime: Duration,
}

/// How long a session lasts unless the server says otherwise: a working day.
pub const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// The dashboard's routes, all under `/dashboard`.
pub fn routes(config: DashboardConfig) -> Router {
    Router::new()
        .route("/dashboard", get(routes::page))
        .route("/dashboard/", get(routes::page))
        .route(
            "/dashboard/sign-in",
            get(routes::sign_in_form).post(routes::sign_in),
        )
        .route("/dashboard/sign-out", post(routes::sign_out))
        .route("/dashboard/assets/{file}", get(assets::serve))
        .with_state(config)
}
