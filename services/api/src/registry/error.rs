//! The one place where `/v2` failures become responses: the OCI distribution error body
//! (`{"errors":[{"code":...,"message":...}]}`) instead of the `/v1` API's `{"error":...}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Why a registry request failed. Another account's app, blob or manifest is answered exactly like a missing
/// one. Internal errors are logged once, here, and answered with a generic message.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("authentication required: use your Berth API token as the password (any user name), or send it as a bearer token")]
    MissingToken,
    #[error("invalid API token")]
    InvalidToken,
    #[error("repository {name:?} not found")]
    NameUnknown { name: String },
    #[error("manifest {reference:?} not found in repository {name:?}")]
    ManifestUnknown { name: String, reference: String },
    #[error("blob {digest:?} not found in repository {name:?}")]
    BlobUnknown { name: String, digest: String },
    #[error("digest {digest:?} is not valid: expected sha256:<64 lowercase hex digits>")]
    DigestInvalid { digest: String },
    #[error("the tag list's query is not valid: use ?n=NUMBER&last=TAG")]
    PaginationInvalid,
    #[error("{method} is not supported: this registry is read-only (images are made by git push)")]
    Unsupported { method: String },
    #[error("store operation failed")]
    Store(#[from] store::StoreError),
    #[error("reading the image store")]
    Images(#[from] image_store::ImageStoreError),
    #[error("a blocking image store task failed")]
    Task(#[from] tokio::task::JoinError),
}

#[derive(Serialize)]
struct ErrorsBody {
    errors: [ErrorEntry; 1],
}

#[derive(Serialize)]
struct ErrorEntry {
    code: &'static str,
    message: String,
}

impl RegistryError {
    /// The HTTP status and the OCI error code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::MissingToken | Self::InvalidToken => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
            Self::NameUnknown { .. } => (StatusCode::NOT_FOUND, "NAME_UNKNOWN"),
            Self::ManifestUnknown { .. } => (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN"),
            Self::BlobUnknown { .. } => (StatusCode::NOT_FOUND, "BLOB_UNKNOWN"),
            Self::DigestInvalid { .. } => (StatusCode::BAD_REQUEST, "DIGEST_INVALID"),
            Self::PaginationInvalid => (StatusCode::BAD_REQUEST, "PAGINATION_NUMBER_INVALID"),
            Self::Unsupported { .. } => (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED"),
            Self::Store(_) | Self::Images(_) | Self::Task(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN")
            }
        }
    }
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = if status.is_server_error() {
            tracing::error!(error = %crate::error::chain(&self), "registry request failed");
            "internal error: the server could not complete the request (see its log)".to_owned()
        } else {
            self.to_string()
        };
        let body = ErrorsBody {
            errors: [ErrorEntry { code, message }],
        };
        let mut response = (status, axum::Json(body)).into_response();
        response
            .headers_mut()
            .insert(super::API_VERSION, HeaderValue::from_static("registry/2.0"));
        if status == StatusCode::UNAUTHORIZED {
            // Registry clients (skopeo, docker, containerd) answer a Basic challenge with the credentials
            // they were given; a Bearer challenge would send them looking for a token server.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="berth""#),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes() {
        let digest = || "sha256:00".to_owned();
        let cases: Vec<(RegistryError, StatusCode, &str)> = vec![
            (
                RegistryError::MissingToken,
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
            ),
            (
                RegistryError::InvalidToken,
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
            ),
            (
                RegistryError::NameUnknown { name: "x".into() },
                StatusCode::NOT_FOUND,
                "NAME_UNKNOWN",
            ),
            (
                RegistryError::ManifestUnknown {
                    name: "x".into(),
                    reference: "v9".into(),
                },
                StatusCode::NOT_FOUND,
                "MANIFEST_UNKNOWN",
            ),
            (
                RegistryError::BlobUnknown {
                    name: "x".into(),
                    digest: digest(),
                },
                StatusCode::NOT_FOUND,
                "BLOB_UNKNOWN",
            ),
            (
                RegistryError::DigestInvalid { digest: digest() },
                StatusCode::BAD_REQUEST,
                "DIGEST_INVALID",
            ),
            (
                RegistryError::PaginationInvalid,
                StatusCode::BAD_REQUEST,
                "PAGINATION_NUMBER_INVALID",
            ),
            (
                RegistryError::Unsupported { method: "PUT".into() },
                StatusCode::METHOD_NOT_ALLOWED,
                "UNSUPPORTED",
            ),
            (
                store::StoreError::Corrupt("detail".into()).into(),
                StatusCode::INTERNAL_SERVER_ERROR,
                "UNKNOWN",
            ),
        ];
        for (err, status, code) in cases {
            assert_eq!(err.status_and_code(), (status, code), "{err}");
        }
    }
}
