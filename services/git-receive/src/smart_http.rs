//! Git's smart HTTP protocol, push side only: the ref advertisement and the `git-receive-pack` RPC, each
//! answered by a spawned `git receive-pack --stateless-rpc`. Fetching is refused for now.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use store::{Account, App};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use vocabulary::AppName;

use crate::pktline::{self, Framer};
use crate::pushes::{Ticket, TicketGuard};
use crate::{repo, GitReceive};

const ADVERTISEMENT: &str = "application/x-git-receive-pack-advertisement";
const RESULT: &str = "application/x-git-receive-pack-result";

#[derive(Debug, Deserialize)]
pub(crate) struct ServiceQuery {
    service: Option<String>,
}

/// `GET /git/{repo}/info/refs?service=git-receive-pack`
pub(crate) async fn info_refs(
    State(git): State<GitReceive>,
    UrlPath(repo): UrlPath<String>,
    Query(query): Query<ServiceQuery>,
    headers: HeaderMap,
) -> Response {
    if query.service.as_deref() != Some("git-receive-pack") {
        return fetching_refused();
    }
    let (_account, app) = match authorize(&git, &headers, &repo).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if git.inner.pushes.is_deploying(app.id) {
        return plain(StatusCode::CONFLICT, busy_message(&app.name));
    }
    let repo_path = match ensure_repo(&git, &app.name).await {
        Ok(path) => path,
        Err(response) => return response,
    };
    let output = git_command(&repo_path)
        .args(["--advertise-refs"])
        .arg(&repo_path)
        .output()
        .await;
    let output = match output {
        Ok(output) if output.status.success() => output,
        Ok(output) => {
            tracing::error!(app = %app.name, status = %output.status, stderr = %String::from_utf8_lossy(&output.stderr),
                "git receive-pack --advertise-refs failed");
            return internal_error();
        }
        Err(error) => {
            tracing::error!(app = %app.name, %error, "spawning git receive-pack");
            return internal_error();
        }
    };
    let mut body = pktline::encode(b"# service=git-receive-pack\n");
    body.extend_from_slice(pktline::FLUSH);
    body.extend_from_slice(&output.stdout);
    let mut response = (StatusCode::OK, body).into_response();
    set_no_cache(response.headers_mut());
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ADVERTISEMENT));
    response
}

/// `POST /git/{repo}/git-upload-pack`
pub(crate) async fn upload_pack() -> Response {
    fetching_refused()
}

/// `POST /git/{repo}/git-receive-pack`: streams the request into `receive-pack` and its output back, live.
pub(crate) async fn receive_pack(
    State(git): State<GitReceive>,
    UrlPath(repo): UrlPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (account, app) = match authorize(&git, &headers, &repo).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let repo_path = match ensure_repo(&git, &app.name).await {
        Ok(path) => path,
        Err(response) => return response,
    };
    let name = app.name.clone();
    // The audit log: who pushed to which app (the deploy's outcome is in the app's events).
    let entry = store::NewAuditEntry {
        account: account.name.to_string(),
        token_scope: store::TokenScope::Full.to_string(),
        action: "git push".to_owned(),
        target: Some(format!("app {name}")),
        status: StatusCode::OK.as_u16(),
    };
    if let Err(error) = git.inner.config.store.record_audit(&entry).await {
        tracing::error!(app = %name, error = %crate::error_chain(&error), "recording a push in the audit log");
    }
    let (secret, ticket) = git.inner.pushes.register(Ticket { account, app });
    let child = git_command(&repo_path)
        .arg(&repo_path)
        .env("BERTH_HOOK_URL", &git.inner.config.hook_url)
        .env("BERTH_HOOK_SECRET", &secret)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(child) => child,
        Err(error) => {
            tracing::error!(app = %name, %error, "spawning git receive-pack");
            return internal_error();
        }
    };
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(16);
    tokio::spawn(run_receive_pack(
        child,
        body,
        git.inner.config.max_push_bytes,
        tx,
        name,
        ticket,
    ));
    let mut response = Response::new(Body::from_stream(ReceiverStream::new(rx)));
    set_no_cache(response.headers_mut());
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(RESULT));
    response
}

/// `git receive-pack --stateless-rpc` for `repo_path`, with an environment of our own: the machine's git
/// config and the server's environment must not change what a push does.
fn git_command(repo_path: &Path) -> Command {
    let mut command = Command::new("git");
    command
        .env_clear()
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("HOME", repo_path)
        .args(["receive-pack", "--stateless-rpc"]);
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    command
}

#[derive(Debug)]
enum PumpError {
    TooLarge { sideband: bool },
    Body(axum::Error),
    Write(io::Error),
}

/// Copies the (already decompressed) request body into `receive-pack`, counting bytes. Returning drops
/// `stdin`, so on any error `receive-pack` sees a truncated pack, refuses it and cleans up its quarantine.
async fn pump(body: Body, mut stdin: ChildStdin, limit: u64) -> Result<u64, PumpError> {
    let mut stream = body.into_data_stream();
    let mut head = Vec::new();
    let mut sideband = None;
    let mut total: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(PumpError::Body)?;
        total += chunk.len() as u64;
        if sideband.is_none() {
            let room = 65520usize.saturating_sub(head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..room]);
            sideband = pktline::wants_sideband(&head);
        }
        if total > limit {
            return Err(PumpError::TooLarge {
                sideband: sideband.unwrap_or(false),
            });
        }
        stdin.write_all(&chunk).await.map_err(PumpError::Write)?;
    }
    stdin.shutdown().await.map_err(PumpError::Write)?;
    Ok(total)
}

/// Drives one `receive-pack`: feeds it the request, forwards its output packet by packet as it comes (so
/// the hook's `remote:` lines show live) and, if the push is too large, tells the client why.
async fn run_receive_pack(
    mut child: Child,
    body: Body,
    limit: u64,
    tx: mpsc::Sender<io::Result<Bytes>>,
    app: AppName,
    _ticket: TicketGuard,
) {
    let (Some(stdin), Some(mut stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        unreachable!("all three pipes were requested");
    };
    let stderr_app = app.clone();
    let stderr_task = tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::info!(app = %stderr_app, "receive-pack: {line}");
        }
    });

    let pump = pump(body, stdin, limit);
    tokio::pin!(pump);
    let mut pump_done = false;
    // False once the client is gone or has been told to stop: the output is then read and dropped, so that
    // receive-pack can finish (and clean up) on its own.
    let mut forwarding = true;
    let mut framer = Framer::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            result = &mut pump, if !pump_done => {
                pump_done = true;
                match result {
                    Ok(bytes) => tracing::debug!(app = %app, bytes, "push received"),
                    Err(PumpError::TooLarge { sideband }) => {
                        tracing::warn!(app = %app, limit, "push refused: too large");
                        let message =
                            format!("push refused: it is larger than this server's limit of {}", human_size(limit));
                        if forwarding {
                            let _ = tx.send(Ok(Bytes::from(pktline::fatal_message(sideband, &message)))).await;
                        }
                        forwarding = false;
                    }
                    Err(PumpError::Body(error)) => tracing::warn!(app = %app, %error, "reading the push failed"),
                    Err(PumpError::Write(error)) => {
                        tracing::debug!(app = %app, %error, "receive-pack stopped reading the push");
                    }
                }
            }
            read = stdout.read(&mut buf) => {
                let n = match read {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(error) => {
                        tracing::warn!(app = %app, %error, "reading receive-pack's output");
                        break;
                    }
                };
                let packets = framer.push(&buf[..n]);
                if forwarding && !packets.is_empty() && tx.send(Ok(packets)).await.is_err() {
                    tracing::info!(app = %app, "the pushing client went away");
                    forwarding = false;
                }
            }
        }
    }
    if forwarding && framer.pending() > 0 {
        let _ = tx.send(Ok(framer.push(&[]))).await;
    }
    drop(tx);
    match child.wait().await {
        Ok(status) => tracing::info!(app = %app, %status, "receive-pack finished"),
        Err(error) => tracing::warn!(app = %app, %error, "waiting for receive-pack"),
    }
    let _ = stderr_task.await;
}

/// Checks the token (HTTP Basic password: a full-scope token of an account not suspended) and that the caller
/// owns the app or collaborates on it.
async fn authorize(git: &GitReceive, headers: &HeaderMap, repo: &str) -> Result<(Account, App), Response> {
    let token = basic_password(headers).ok_or_else(unauthorized)?;
    let store = &git.inner.config.store;
    let access = store
        .token_access(&token)
        .await
        .map_err(|error| store_error(&error))?
        .ok_or_else(unauthorized)?;
    if access.suspended {
        return Err(plain(StatusCode::FORBIDDEN, "account suspended: ask an operator"));
    }
    // Only pushes come here (fetching is refused): a read-only token may not push.
    if access.scope == store::TokenScope::Read {
        return Err(plain(
            StatusCode::FORBIDDEN,
            "this token is read-only: pushing needs a full token (`berth tokens create`)",
        ));
    }
    let account = access.account;
    let name = repo.strip_suffix(".git").unwrap_or(repo);
    // A bad name and someone else's app look the same: nothing tells a tenant which names exist. The owner
    // and collaborators may push.
    let name = AppName::new(name).map_err(|_| not_found())?;
    let (app, _role) = store
        .app_with_role(account.id, &name)
        .await
        .map_err(|error| store_error(&error))?
        .ok_or_else(not_found)?;
    Ok((account, app))
}

/// The password of `Authorization: Basic base64(user:password)` (any user name), if there is a non-empty one.
/// Berth takes it as an API token; the API's registry routes use it too.
pub fn basic_password(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (_user, password) = decoded.split_once(':')?;
    (!password.is_empty()).then(|| password.to_owned())
}

async fn ensure_repo(git: &GitReceive, name: &AppName) -> Result<PathBuf, Response> {
    let repos_dir = git.inner.config.repos_dir.clone();
    let hook_program = git.inner.config.hook_program.clone();
    let name = name.clone();
    let result =
        tokio::task::spawn_blocking(move || repo::ensure_repo(&repos_dir, &name, &hook_program)).await;
    match result {
        Ok(Ok(path)) => Ok(path),
        Ok(Err(error)) => {
            tracing::error!(error = %crate::error_chain(&error), "preparing the app's repository");
            Err(internal_error())
        }
        Err(error) => {
            tracing::error!(%error, "preparing the app's repository");
            Err(internal_error())
        }
    }
}

fn human_size(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB {
        format!("{} MiB", bytes.div_ceil(MIB))
    } else {
        format!("{} KiB", bytes.div_ceil(1024))
    }
}

pub(crate) fn busy_message(app: &AppName) -> String {
    format!("another push to {app} is deploying now; push again when it has finished")
}

/// A text answer; git shows its lines as `remote: ...` when discovery fails.
pub(crate) fn plain(status: StatusCode, message: impl Into<String>) -> Response {
    let mut message = message.into();
    message.push('\n');
    let mut response = (status, message).into_response();
    set_no_cache(response.headers_mut());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn unauthorized() -> Response {
    let mut response = plain(
        StatusCode::UNAUTHORIZED,
        "authentication required: use your berth API token as the password",
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(r#"Basic realm="berth""#),
    );
    response
}

fn not_found() -> Response {
    plain(
        StatusCode::NOT_FOUND,
        "repository not found: check the app name with `berth apps`",
    )
}

fn fetching_refused() -> Response {
    plain(
        StatusCode::FORBIDDEN,
        "fetching is not supported yet: berth repositories only receive pushes",
    )
}

pub(crate) fn internal_error() -> Response {
    plain(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error; the server log has the details",
    )
}

fn store_error(error: &store::StoreError) -> Response {
    tracing::error!(error = %crate::error_chain(error), "store failed while authorizing a push");
    internal_error()
}

fn set_no_cache(headers: &mut HeaderMap) {
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, max-age=0, must-revalidate"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::EXPIRES,
        HeaderValue::from_static("Fri, 01 Jan 1980 00:00:00 GMT"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_password_of_basic_auth() {
        let encode = |s: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(s));
        let cases = [
            (Some(encode("git:tok3n")), Some("tok3n")),
            (Some(encode(":tok3n")), Some("tok3n")),
            (Some(encode("user:pa:ss")), Some("pa:ss")),
            (Some(encode("user:")), None),
            (Some(encode("no-colon")), None),
            (Some("Bearer tok3n".to_owned()), None),
            (Some("Basic !!!".to_owned()), None),
            (Some(encode("x:t").replace("Basic", "basic")), Some("t")),
            (None, None),
        ];
        for (value, expected) in cases {
            let mut headers = HeaderMap::new();
            if let Some(value) = &value {
                headers.insert(header::AUTHORIZATION, value.parse().unwrap());
            }
            assert_eq!(basic_password(&headers).as_deref(), expected, "{value:?}");
        }
    }
}
