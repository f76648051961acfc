//! The one place where failures become HTTP responses.

use api_contract::ErrorBody;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use store::StoreError;
use vocabulary::NameError;

/// Why a request failed. Client errors carry a message for people; internal errors are logged once, here,
/// and answered with a generic body.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing API token: send the header `Authorization: Bearer TOKEN`")]
    MissingToken,
    #[error("invalid API token")]
    InvalidToken,
    #[error("the dashboard session has expired or was signed out: sign in again")]
    InvalidSession,
    #[error("missing or wrong X-CSRF-Token header: a dashboard session's changes must carry its CSRF token")]
    CsrfRejected,
    #[error("only an admin account may {action}")]
    AdminOnly { action: &'static str },
    #[error("account suspended: ask an operator")]
    AccountSuspended,
    #[error(
        "this token is read-only: it may only read (GET); create a full token with `berth tokens create`"
    )]
    ReadOnlyToken,
    /// A collaborator asked for something only the owner may do.
    #[error(
        "only the owner of app {app:?} may {action}; collaborators may deploy, scale, configure and read it"
    )]
    OwnerOnly { app: String, action: &'static str },
    #[error(transparent)]
    Quota(#[from] controller::quota::QuotaExceeded),
    /// Also the answer for an app the caller does not own.
    #[error("app {name:?} not found")]
    AppNotFound { name: String },
    #[error("you have no token {id:?} (`berth tokens` lists them)")]
    TokenNotFound { id: String },
    #[error("no account {name:?}")]
    AccountNotFound { name: String },
    #[error("app {app:?} has no domain {domain:?}")]
    DomainNotFound { app: String, domain: String },
    #[error("app {app:?} has no release {version:?}")]
    ReleaseNotFound { app: String, version: String },
    #[error(transparent)]
    Lifecycle(controller::LifecycleError),
    #[error("app {app:?} has no certificate {id:?}")]
    CertificateNotFound { app: String, id: String },
    #[error("no node {name:?} (`berth admin nodes` lists them)")]
    NodeNotFound { name: String },
    #[error("app {app:?} runs no one-off {name:?} (`berth ps -a {app}` lists them)")]
    OneOffNotFound { app: String, name: String },
    #[error(transparent)]
    BadCertificate(#[from] crate::certificates::CertificateProblem),
    #[error(transparent)]
    InvalidName(#[from] NameError),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    /// The body could not be read or decoded as the route expects.
    #[error("{message}")]
    BadBody { status: StatusCode, message: String },
    #[error("no route for {method} {path}")]
    NoRoute { method: String, path: String },
    #[error(transparent)]
    Rebase(controller::RebaseError),
    #[error("store operation failed")]
    Store(#[source] StoreError),
    #[error("removing the app's git repository")]
    DeleteRepo(#[source] git_receive::GitReceiveError),
    #[error("reading the app's logs")]
    Logs(#[from] app_logs::LogsError),
    #[error(transparent)]
    OneOff(#[from] controller::OneOffError),
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict { what } => Self::Conflict(format!("{what} already exists")),
            StoreError::InUse { what } => Self::Conflict(format!("still in use: {what}")),
            err => Self::Store(err),
        }
    }
}

impl From<controller::RebaseError> for ApiError {
    fn from(err: controller::RebaseError) -> Self {
        Self::Rebase(err)
    }
}

impl From<controller::LifecycleError> for ApiError {
    fn from(err: controller::LifecycleError) -> Self {
        Self::Lifecycle(err)
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingToken | Self::InvalidToken | Self::InvalidSession => StatusCode::UNAUTHORIZED,
            Self::AdminOnly { .. }
            | Self::AccountSuspended
            | Self::ReadOnlyToken
            | Self::OwnerOnly { .. }
            | Self::CsrfRejected
            | Self::Quota(_) => StatusCode::FORBIDDEN,
            Self::AppNotFound { .. }
            | Self::TokenNotFound { .. }
            | Self::AccountNotFound { .. }
            | Self::DomainNotFound { .. }
            | Self::CertificateNotFound { .. }
            | Self::OneOffNotFound { .. }
            | Self::NodeNotFound { .. }
            | Self::ReleaseNotFound { .. }
            | Self::NoRoute { .. } => StatusCode::NOT_FOUND,
            Self::InvalidName(_) | Self::Invalid(_) | Self::BadCertificate(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::BadBody { status, .. } => *status,
            Self::Rebase(e) if e.is_client_error() => StatusCode::CONFLICT,
            Self::Lifecycle(controller::LifecycleError::Refused(_)) => StatusCode::CONFLICT,
            Self::OneOff(controller::OneOffError::Refused(_)) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::OneOff(controller::OneOffError::TooMany(_)) => StatusCode::TOO_MANY_REQUESTS,
            Self::Store(_)
            | Self::DeleteRepo(_)
            | Self::Rebase(_)
            | Self::Logs(_)
            | Self::Lifecycle(_)
            | Self::OneOff(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The error and its sources on one line, for the log.
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if status.is_server_error() {
            tracing::error!(error = %chain(&self), "request failed");
            "internal error: the server could not complete the request (see its log)".to_owned()
        } else {
            self.to_string()
        };
        let mut response = (status, axum::Json(ErrorBody { error: message })).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"berth\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_messages() {
        let cases: Vec<(ApiError, StatusCode, &str)> = vec![
            (
                ApiError::MissingToken,
                StatusCode::UNAUTHORIZED,
                "missing API token",
            ),
            (
                ApiError::InvalidToken,
                StatusCode::UNAUTHORIZED,
                "invalid API token",
            ),
            (
                ApiError::AdminOnly {
                    action: "create accounts",
                },
                StatusCode::FORBIDDEN,
                "only an admin",
            ),
            (
                ApiError::AppNotFound { name: "x".into() },
                StatusCode::NOT_FOUND,
                "app \"x\" not found",
            ),
            (
                StoreError::Conflict {
                    what: "app shop".into(),
                }
                .into(),
                StatusCode::CONFLICT,
                "app shop already exists",
            ),
            (
                StoreError::Corrupt("secret detail".into()).into(),
                StatusCode::INTERNAL_SERVER_ERROR,
                "store operation failed",
            ),
        ];
        for (err, status, text) in cases {
            assert_eq!(err.status(), status, "{err}");
            assert!(err.to_string().contains(text), "{err} lacks {text}");
        }
    }
}
