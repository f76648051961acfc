//! `POST /v1/apps/{name}/deploys`: deploy an existing image (`berth deploy --image REF`). The reference is
//! checked before anything starts (a bad one gets a 422); after that the answer is a 200 whose plain-text body
//! streams the deploy's progress lines as they happen, ending with the summary or `error: REASON`. The deploy
//! runs in its own task: a client that hangs up does not stop it halfway.

use api_contract::{ImageDeployCreate, DEPLOY_ERROR_PREFIX};
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::response::Response;
use controller::{ImageDeployRequest, ImageRef};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt as _;

use super::{app_for, Permission};
use crate::json::Json;
use crate::{ApiError, ApiState, Caller};

/// `POST /v1/apps/{name}/deploys` (the app's owner).
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(body): Json<ImageDeployCreate>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &caller, &name, Permission::Deploy).await?;
    let image = ImageRef::parse(&body.image).map_err(ApiError::Invalid)?;
    let Some(deploys) = state.image_deploys.clone() else {
        return Err(ApiError::Invalid(
            "this server does not deploy images (it was started without image deploys)".to_owned(),
        ));
    };
    tracing::info!(app = %app.name, %image, "image deploy started");
    let request = ImageDeployRequest {
        app,
        account: caller.0,
        image,
        tls_verify: body.tls_verify,
    };
    let (log_tx, log_rx) = mpsc::channel::<String>(64);
    let (out_tx, out_rx) = mpsc::channel::<String>(1);
    tokio::spawn(async move {
        let last = match deploys.deploy(request, log_tx).await {
            Ok(summary) => summary,
            Err(reason) => format!("{DEPLOY_ERROR_PREFIX}{reason}"),
        };
        let _ = out_tx.send(last).await;
    });
    // Progress lines first, then the last line once the deploy has finished (the log channel closes when the
    // deploy drops its sender).
    let lines = ReceiverStream::new(log_rx)
        .chain(ReceiverStream::new(out_rx))
        .map(|line| Ok::<_, std::convert::Infallible>(Bytes::from(format!("{line}\n"))));
    Ok(super::line_stream(
        Body::from_stream(lines),
        "text/plain; charset=utf-8",
    ))
}
