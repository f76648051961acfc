//! `GET /v1/apps/{name}/runs` lists an app's one-offs running now, `DELETE /v1/apps/{name}/runs/{run}` kills
//! one. `POST /v1/apps/{name}/runs` (the app's
//! owner): a one-off instance of the app's current release running a
//! command. Detached, it is answered with the instance's name at once and its output goes to the app's log
//! only. Attached, the request asks `Upgrade: berth-attach/1` and, once answered `101`, the connection carries
//! the session's frames (`api_contract::attach`); the instance is killed when the connection goes away.

use agent_contract::{OneOffInput, OneOffOutput, WindowSize};
use api_contract::attach::{Decoder, Frame, PROTOCOL};
use api_contract::{RunInfo, RunRequest, RunStarted};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use controller::{OneOffs, StartedOneOff};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{app_for, Permission};
use crate::{ApiError, ApiState, Caller, BODY_LIMIT_BYTES};

/// `GET /v1/apps/{name}/runs`: the app's one-offs running now.
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<axum::Json<Vec<RunInfo>>, ApiError> {
    let app = app_for(&state, &caller, &name, Permission::Read).await?;
    let running = state
        .lifecycle
        .one_offs()
        .map(|o| o.running(app.id))
        .unwrap_or_default();
    Ok(axum::Json(
        running
            .into_iter()
            .map(|r| RunInfo {
                name: r.name,
                command: r.command,
                release: r.release,
                started_at: r.started_at,
            })
            .collect(),
    ))
}

/// `DELETE /v1/apps/{name}/runs/{run}` (the app's owner): kills the one-off `run` (`run.3`, a release phase's
/// `release.1`); whoever is attached sees it end. 204 once asked, 404 when none of that name runs.
pub async fn stop(
    State(state): State<ApiState>,
    caller: Caller,
    Path((name, run)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let app = app_for(&state, &caller, &name, Permission::Deploy).await?;
    let stopped = match state.lifecycle.one_offs() {
        Some(one_offs) => one_offs.stop(app.id, &run).await,
        None => false,
    };
    if !stopped {
        return Err(ApiError::OneOffNotFound {
            app: app.name.to_string(),
            name: run,
        });
    }
    tracing::info!(app = %app.name, instance = %run, account = %caller.0.name, "one-off stopped");
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/apps/{name}/runs`: see the module's docs.
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    mut request: Request,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &caller, &name, Permission::Deploy).await?;
    let upgrade = request
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(PROTOCOL.as_bytes()));
    let on_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
    let body = axum::body::to_bytes(request.into_body(), BODY_LIMIT_BYTES)
        .await
        .map_err(|e| ApiError::BadBody {
            status: StatusCode::BAD_REQUEST,
            message: format!("reading the request body: {e}"),
        })?;
    let run: RunRequest = serde_json::from_slice(&body).map_err(|e| ApiError::BadBody {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        message: format!("the body is not a run request: {e}"),
    })?;
    let Some(one_offs) = state.lifecycle.one_offs() else {
        return Err(ApiError::Invalid("this server runs no one-off instances".into()));
    };
    if !run.detach && on_upgrade.is_none() {
        return Err(ApiError::Invalid(format!(
            "an attached run needs the request header `Upgrade: {PROTOCOL}` (or ask to detach)"
        )));
    }
    let terminal = run.terminal.filter(|_| !run.detach).map(|t| WindowSize {
        rows: t.rows,
        cols: t.cols,
    });
    let memory = run.memory_mib.map(|mib| mib.saturating_mul(1 << 20));
    let started = one_offs.run(&app, &run.command, memory, terminal).await?;
    tracing::info!(app = %app.name, instance = %started.name, detach = run.detach, "one-off run started");
    let Some(on_upgrade) = on_upgrade.filter(|_| !run.detach) else {
        let name = started.name.clone();
        OneOffs::detach(started);
        return Ok((StatusCode::CREATED, axum::Json(RunStarted { name })).into_response());
    };
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => attach(TokioIo::new(upgraded), started).await,
            // Dropping `started` kills the one-off.
            Err(error) => tracing::info!(%error, "a run's client went away before attaching"),
        }
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static(PROTOCOL));
    Ok(response)
}

/// Carries one session: frames from the client to the one-off's input (in a task of its own, so that a
/// command that does not read its stdin never stops its output from flowing, nor the other way round), its
/// output to frames. Returns (and so kills the one-off, if still running) when it exits or the client goes
/// away or breaks the protocol.
async fn attach(io: impl AsyncRead + AsyncWrite + Send + 'static, mut started: StartedOneOff) {
    let (reader, mut writer) = tokio::io::split(io);
    if writer
        .write_all(&Frame::Started(started.name.clone()).encode())
        .await
        .is_err()
    {
        return;
    }
    let mut upstream = AbortOnDrop(tokio::spawn(upstream(
        reader,
        started.session.input.clone(),
        started.name.clone(),
    )));
    loop {
        tokio::select! {
            // The client went away or broke the protocol: return, which kills the one-off.
            _ = &mut upstream.0 => return,
            output = started.session.output.recv() => {
                let frame = match output {
                    Some(OneOffOutput::Stdout(bytes)) => Frame::Stdout(bytes),
                    Some(OneOffOutput::Stderr(bytes)) => Frame::Stderr(bytes),
                    Some(OneOffOutput::Exited(exit)) => Frame::Exit(exit.code),
                    None => return,
                };
                let last = matches!(frame, Frame::Exit(_));
                if writer.write_all(&frame.encode()).await.is_err() {
                    return;
                }
                if last {
                    let _ = writer.flush().await;
                    let _ = writer.shutdown().await;
                    return;
                }
            }
        }
    }
}

/// A task aborted when this is dropped, so that its hold on the one-off's input ends with the session.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The client's frames to the one-off's input, until the client goes away or sends what it must not.
async fn upstream(
    mut reader: impl AsyncRead + Unpin,
    input: tokio::sync::mpsc::Sender<OneOffInput>,
    name: String,
) {
    let mut decoder = Decoder::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => {
                tracing::info!(instance = %name, "a run's client went away: killing it");
                return;
            }
            Ok(n) => n,
        };
        decoder.push(&buf[..n]);
        loop {
            let message = match decoder.next_frame() {
                Ok(None) => break,
                Ok(Some(Frame::Stdin(bytes))) => OneOffInput::Stdin(bytes),
                Ok(Some(Frame::StdinClosed)) => OneOffInput::StdinClosed,
                Ok(Some(Frame::Resize { rows, cols })) => OneOffInput::Resize(WindowSize { rows, cols }),
                Ok(Some(other)) => {
                    tracing::info!(instance = %name, frame = ?other, "a run's client sent a server frame: killing it");
                    return;
                }
                Err(error) => {
                    tracing::info!(instance = %name, %error, "a run's client broke the protocol: killing it");
                    return;
                }
            };
            if input.send(message).await.is_err() {
                return;
            }
        }
    }
}
