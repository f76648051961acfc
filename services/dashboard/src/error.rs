//! The dashboard's failures as responses: plain text, since a browser shows them as a page.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// A form post from another site, or one whose origin cannot be told.
    #[error(
        "refused: this form must be sent from the dashboard's own pages (Origin or Referer of this host)"
    )]
    CrossOrigin,
    #[error("refused: missing or wrong CSRF token")]
    Csrf,
    #[error("store operation failed")]
    Store(#[from] store::StoreError),
}

impl IntoResponse for DashboardError {
    fn into_response(self) -> Response {
        let status = match self {
            Self::CrossOrigin | Self::Csrf => StatusCode::FORBIDDEN,
            Self::Store(ref error) => {
                tracing::error!(%error, "dashboard request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let text = if status.is_server_error() {
            "internal error: the server could not complete the request (see its log)".to_owned()
        } else {
            self.to_string()
        };
        (status, text).into_response()
    }
}
