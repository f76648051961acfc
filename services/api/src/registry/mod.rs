//! The OCI distribution API's pull side (`/v2/...`), so `skopeo inspect docker://API/APP:v3` and `skopeo
//! copy` read apps' images straight from the image store. Repositories are apps; tags are release versions
//! (`v1`, `v2`, ...) and `latest` (the current release); manifests may also be asked for by digest.
//!
//! Only the apps the token's account owns are served (an admin's token: every app), and a blob is served
//! only when one of that app's releases' images references it, so nobody reads another tenant's layers by
//! guessing digests. It is read-only: pushes get `UNSUPPORTED`.

mod auth;
mod error;
mod reference;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::Router;
use serde::{Deserialize, Serialize};

pub use auth::Puller;
pub use error::RegistryError;
use reference::Reference;

use crate::ApiState;

const DOCKER_CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");
/// Docker's client checks for this header on `/v2/` to know it speaks to a registry.
pub(crate) const API_VERSION: HeaderName = HeaderName::from_static("docker-distribution-api-version");

/// The `/v2` routes (merged into the API's router by [`crate::router`]).
pub fn routes() -> Router<ApiState> {
    // A route that exists, asked with a method it does not take (a push), is refused in the OCI way.
    let pull = |route: MethodRouter<ApiState>| route.fallback(unsupported);
    Router::new()
        .route("/v2", pull(get(version)))
        .route("/v2/", pull(get(version)))
        .route("/v2/{name}/manifests/{reference}", pull(get(manifest)))
        .route("/v2/{name}/blobs/{digest}", pull(get(blob)))
        .route("/v2/{name}/tags/list", pull(get(tags)))
        .layer(axum::middleware::map_response(|mut response: Response| async {
            response
                .headers_mut()
                .insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
            response
        }))
}

/// `GET /v2/`: 200 for a valid token, else the 401 with a Basic challenge that makes clients send one.
async fn version(_puller: Puller) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({}))
}

/// Whether the API's fallback should answer `path` with [`unknown`].
pub fn is_registry_path(path: &str) -> bool {
    path == "/v2" || path.starts_with("/v2/")
}

/// Every other `/v2` path (nested repository names, uploads), from the API's fallback (a catch-all route
/// cannot sit beside `/v2/{name}/...`): after authentication, nothing is there.
pub async fn unknown(_puller: Puller, method: Method, uri: Uri) -> RegistryError {
    let upload = uri.path().contains("/blobs/uploads/");
    if (method == Method::GET || method == Method::HEAD) && !upload {
        let rest = uri.path().trim_start_matches("/v2/");
        let name = ["/manifests/", "/blobs/", "/tags/"]
            .iter()
            .fold(rest, |name, part| name.split(part).next().unwrap_or(name));
        RegistryError::NameUnknown {
            name: name.to_owned(),
        }
    } else {
        RegistryError::Unsupported {
            method: method.to_string(),
        }
    }
}

async fn unsupported(_puller: Puller, method: Method) -> RegistryError {
    RegistryError::Unsupported {
        method: method.to_string(),
    }
}

/// `GET|HEAD /v2/{name}/manifests/{reference}`: the manifest's exact stored bytes, with its media type and
/// digest.
async fn manifest(
    State(state): State<ApiState>,
    puller: Puller,
    method: Method,
    Path((name, reference)): Path<(String, String)>,
) -> Result<Response, RegistryError> {
    let app = puller.app(&state, &name).await?;
    let unknown = || RegistryError::ManifestUnknown {
        name: name.clone(),
        reference: reference.clone(),
    };
    let release = match reference::parse(&reference).ok_or_else(unknown)? {
        Reference::Latest => state.store.latest_release(app.id).await?,
        Reference::Version(version) => state.store.release_by_version(app.id, version).await?,
        Reference::Digest(digest) => state
            .store
            .releases(app.id)
            .await?
            .into_iter()
            .find(|r| r.image_digest == digest),
    };
    let release = release.ok_or_else(unknown)?;
    let images = state.images.clone();
    let digest = release.image_digest.clone();
    let manifest = tokio::task::spawn_blocking(move || images.read_manifest(&digest)).await??;
    tracing::debug!(app = %app.name, release = %release.version, "serving a manifest");
    let headers = [
        (header::CONTENT_TYPE, manifest.media_type),
        (header::CONTENT_LENGTH, manifest.bytes.len().to_string()),
        (DOCKER_CONTENT_DIGEST, manifest.digest),
    ];
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(manifest.bytes)
    };
    Ok((StatusCode::OK, headers, body).into_response())
}

/// `GET|HEAD /v2/{name}/blobs/{digest}`: a blob that one of the app's images references, streamed from disk.
async fn blob(
    State(state): State<ApiState>,
    puller: Puller,
    method: Method,
    Path((name, digest)): Path<(String, String)>,
) -> Result<Response, RegistryError> {
    let app = puller.app(&state, &name).await?;
    if !image_store::is_digest(&digest) {
        return Err(RegistryError::DigestInvalid { digest });
    }
    let manifests: Vec<String> = state
        .store
        .releases(app.id)
        .await?
        .into_iter()
        .map(|r| r.image_digest)
        .collect();
    let images = state.images.clone();
    let wanted = digest.clone();
    let opened = tokio::task::spawn_blocking(move || {
        if !references(&images, &manifests, &wanted) {
            return Ok(None);
        }
        images.open_blob(&wanted).map(Some)
    })
    .await??;
    let (file, size) = opened.ok_or_else(|| RegistryError::BlobUnknown {
        name: name.clone(),
        digest: digest.clone(),
    })?;
    let headers = [
        (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
        (header::CONTENT_LENGTH, size.to_string()),
        (DOCKER_CONTENT_DIGEST, digest),
    ];
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        // 64 KiB reads: layers run to hundreds of megabytes, and the default 4 KiB means many small frames.
        let file = tokio::fs::File::from_std(file);
        Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024))
    };
    Ok((StatusCode::OK, headers, body).into_response())
}

/// Whether `digest` is one of `manifests` or referenced by one of them. A manifest that cannot be read is
/// logged and skipped: it cannot vouch for anything.
fn references(images: &image_store::ImageStore, manifests: &[String], digest: &str) -> bool {
    manifests.iter().any(|manifest| {
        if manifest == digest {
            return true;
        }
        match images.read_manifest(manifest) {
            Ok(m) => m.references.iter().any(|r| r == digest),
            Err(error) => {
                tracing::warn!(manifest, error = %crate::error::chain(&error), "a release's manifest is unreadable");
                false
            }
        }
    })
}

#[derive(Debug, Deserialize)]
struct TagsQuery {
    n: Option<usize>,
    last: Option<String>,
}

#[derive(Debug, Serialize)]
struct TagList {
    name: String,
    tags: Vec<String>,
}

/// `GET /v2/{name}/tags/list[?n=N&last=TAG]`: `latest` (when there is a release) and every release's
/// version, in lexical order as the distribution spec asks.
async fn tags(
    State(state): State<ApiState>,
    puller: Puller,
    Path(name): Path<String>,
    query: Result<Query<TagsQuery>, QueryRejection>,
) -> Result<axum::Json<TagList>, RegistryError> {
    let app = puller.app(&state, &name).await?;
    let Query(query) = query.map_err(|_| RegistryError::PaginationInvalid)?;
    let releases = state.store.releases(app.id).await?;
    let mut tags: Vec<String> = releases.iter().map(|r| r.version.to_string()).collect();
    if !releases.is_empty() {
        tags.push("latest".to_owned());
    }
    tags.sort();
    if let Some(last) = &query.last {
        tags.retain(|t| t > last);
    }
    if let Some(n) = query.n {
        tags.truncate(n);
    }
    Ok(axum::Json(TagList {
        name: app.name.to_string(),
        tags,
    }))
}
