//! An app's TLS certificates for its custom domains. Uploads are checked (see [`crate::certificates`]); the
//! private key is stored for the routers and never sent back or logged.

use api_contract::{CertificateCreate, CertificateInfo};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use controller::Event;
use vocabulary::{CertificateId, DomainName};

use super::{app_for, Permission};
use crate::json::Json;
use crate::{certificates, ApiError, ApiState, Caller};

fn info(certificate: store::StoredCertificate) -> CertificateInfo {
    CertificateInfo {
        id: certificate.id,
        hosts: certificate.hosts,
        not_after: certificate.not_after,
        created_at: certificate.created_at,
    }
}

/// `GET /v1/apps/{name}/certificates`, newest first.
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<axum::Json<Vec<CertificateInfo>>, ApiError> {
    let app = app_for(&state, &caller, &name, Permission::Read).await?;
    let certificates = state.store.certificates_of(app.id).await?;
    Ok(axum::Json(certificates.into_iter().map(info).collect()))
}

/// `POST /v1/apps/{name}/certificates`
pub async fn add(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(body): Json<CertificateCreate>,
) -> Result<(StatusCode, axum::Json<CertificateInfo>), ApiError> {
    let app = app_for(&state, &caller, &name, Permission::Deploy).await?;
    let domains: Vec<DomainName> = state
        .store
        .domains_of(app.id)
        .await?
        .into_iter()
        .map(|d| d.name)
        .collect();
    let checked = certificates::check(&body.cert_pem, &body.key_pem, &domains, Utc::now().timestamp())?;
    let not_after = DateTime::from_timestamp(checked.not_after, 0)
        .ok_or_else(|| ApiError::Invalid("the certificate's expiry date is out of range".to_owned()))?;
    let stored = state
        .store
        .add_certificate(store::NewCertificate {
            app: app.id,
            hosts: checked.hosts,
            cert_pem: body.cert_pem,
            key_pem: body.key_pem,
            not_after,
        })
        .await?;
    tracing::info!(app = %app.name, certificate = %stored.id, hosts = ?stored.hosts, account = %caller.0.name,
        "certificate added");
    state.controller.notify(Event::RoutesChanged(app.id));
    Ok((StatusCode::CREATED, axum::Json(info(stored))))
}

/// `DELETE /v1/apps/{name}/certificates/{id}`
pub async fn remove(
    State(state): State<ApiState>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let app = app_for(&state, &caller, &name, Permission::Deploy).await?;
    let not_found = || ApiError::CertificateNotFound {
        app: app.name.to_string(),
        id: id.clone(),
    };
    let parsed: CertificateId = id.parse().map_err(|_| not_found())?;
    if !state.store.remove_certificate(app.id, parsed).await? {
        return Err(not_found());
    }
    tracing::info!(app = %app.name, certificate = %parsed, account = %caller.0.name, "certificate removed");
    state.controller.notify(Event::RoutesChanged(app.id));
    Ok(StatusCode::NO_CONTENT)
}
