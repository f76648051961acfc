//! `POST /internal/git-hooks/pre-receive`: the server side of the hook. Checks the push's one-time secret,
//! writes the pushed commit's tree out of the quarantine, runs the deployer and streams its log and result
//! back as NDJSON.

use std::convert::Infallible;
use std::path::PathBuf;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::checkout::{self, Checkout, Limits};
use crate::pushes::{DeployGuard, Ticket};
use crate::smart_http::{busy_message, plain};
use crate::{error_chain, repo, DeployRequest, GitReceive, GitReceiveError, HookMessage, HookRequest};

/// The branches a push may deploy.
pub(crate) const DEPLOY_REFS: [&str; 2] = ["refs/heads/main", "refs/heads/master"];

pub(crate) async fn pre_receive(State(git): State<GitReceive>, headers: HeaderMap, body: Bytes) -> Response {
    let secret = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(ticket) = secret.and_then(|secret| git.inner.pushes.take(secret)) else {
        return plain(StatusCode::UNAUTHORIZED, "unknown or already used push secret");
    };
    let request: HookRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => return plain(StatusCode::BAD_REQUEST, format!("bad hook request: {error}")),
    };
    // The hook checked these already; the server does not rely on it.
    if !DEPLOY_REFS.contains(&request.refname.as_str()) {
        return ndjson_once(HookMessage::failed(format!(
            "{} cannot be deployed: push the main branch",
            request.refname
        )));
    }
    let Some(guard) = git.inner.pushes.begin_deploy(ticket.app.id) else {
        return ndjson_once(HookMessage::failed(busy_message(&ticket.app.name)));
    };
    let (tx, rx) = mpsc::channel::<HookMessage>(64);
    // A task of its own: a deploy is not cut short at some await point because the pushing client left.
    tokio::spawn(run(git, ticket, request, guard, tx));
    ndjson(rx)
}

fn ndjson(rx: mpsc::Receiver<HookMessage>) -> Response {
    let stream = ReceiverStream::new(rx).map(|message| Ok::<_, Infallible>(Bytes::from(message.to_line())));
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    response
}

fn ndjson_once(message: HookMessage) -> Response {
    let (tx, rx) = mpsc::channel(1);
    tx.try_send(message)
        .expect("a fresh channel has room for one message");
    ndjson(rx)
}

async fn run(
    git: GitReceive,
    ticket: Ticket,
    request: HookRequest,
    _guard: DeployGuard,
    tx: mpsc::Sender<HookMessage>,
) {
    let app = ticket.app.name.clone();
    let last = match deploy(&git, ticket, request, &tx).await {
        Ok(summary) => HookMessage::succeeded(summary),
        Err(error) => HookMessage::failed(error),
    };
    if tx.send(last).await.is_err() {
        tracing::warn!(%app, "the pushing client left before the deploy's result");
    }
}

async fn deploy(
    git: &GitReceive,
    ticket: Ticket,
    request: HookRequest,
    tx: &mpsc::Sender<HookMessage>,
) -> Result<String, String> {
    let config = &git.inner.config;
    let repo_path = repo::repo_path(&config.repos_dir, &ticket.app.name);
    let object_dirs = object_dirs(&request);
    let checkouts = config.repos_dir.join(crate::CHECKOUTS_DIR);
    let new = request.new.clone();
    let app = ticket.app.name.clone();
    let checkout = tokio::task::spawn_blocking(move || {
        checkout::checkout(&repo_path, &object_dirs, &new, &checkouts, Limits::default())
    })
    .await
    .map_err(|error| {
        tracing::error!(%app, %error, "checkout task failed");
        "internal error while reading the pushed commit".to_owned()
    })?
    .map_err(|error| checkout_error(&app, &error))?;

    let req = DeployRequest {
        app: ticket.app,
        account: ticket.account,
        commit: checkout.commit.clone(),
        source_dir: checkout.dir.path().to_owned(),
    };
    let (log_tx, mut log_rx) = mpsc::channel::<String>(64);
    let mut deploying = config.deployer.deploy(req, log_tx);
    let result = loop {
        tokio::select! {
            biased;
            Some(line) = log_rx.recv() => {
                let _ = tx.send(HookMessage::log(line)).await;
            }
            result = &mut deploying => break result,
        }
    };
    while let Ok(line) = log_rx.try_recv() {
        let _ = tx.send(HookMessage::log(line)).await;
    }
    remove_checkout(checkout).await;
    result
}

/// The quarantine and the other object directories the hook reported. Paths outside the repository are
/// refused later, by `checkout`.
fn object_dirs(request: &HookRequest) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for dir in [&request.object_dir, &request.quarantine].into_iter().flatten() {
        dirs.push(PathBuf::from(dir));
    }
    for dir in request.alternates.iter().flat_map(|a| split_alternates(a)) {
        dirs.push(PathBuf::from(dir));
    }
    dirs.sort();
    dirs.dedup();
    dirs
}

/// Splits `$GIT_ALTERNATE_OBJECT_DIRECTORIES` at colons. git quotes an entry with special characters (C
/// style, in double quotes); ours never have them, so quoted entries are skipped rather than unquoted.
fn split_alternates(list: &str) -> Vec<&str> {
    let mut entries = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in list.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ':' if !quoted => {
                entries.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    entries.push(&list[start..]);
    entries.retain(|e| !e.is_empty() && !e.starts_with('"'));
    entries
}

/// What the pusher sees: problems with their commit in full, problems of the server only as such.
fn checkout_error(app: &vocabulary::AppName, error: &GitReceiveError) -> String {
    use GitReceiveError as E;
    match error {
        E::UnsafePath { .. } | E::TreeTooLarge { .. } | E::BadObjectId { .. } | E::ReadCommit { .. } => {
            tracing::info!(%app, error = %error_chain(error), "pushed commit refused");
            error_chain(error)
        }
        _ => {
            tracing::error!(%app, error = %error_chain(error), "reading the pushed commit");
            "internal error while reading the pushed commit".to_owned()
        }
    }
}

async fn remove_checkout(checkout: Checkout) {
    let path = checkout.dir.path().to_owned();
    let removed = tokio::task::spawn_blocking(move || checkout.dir.close()).await;
    if !matches!(removed, Ok(Ok(()))) {
        tracing::warn!(path = %path.display(), "removing a checkout failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_dirs_come_from_all_three_variables() {
        let request = HookRequest {
            refname: "refs/heads/main".into(),
            old: "0".repeat(40),
            new: "a".repeat(40),
            object_dir: Some("/r/app.git/objects/tmp_objdir-incoming-x".into()),
            alternates: Some("/r/app.git/objects:\"/we:i\\\"rd\"::/r/app.git/objects".into()),
            quarantine: Some("/r/app.git/objects/tmp_objdir-incoming-x".into()),
        };
        assert_eq!(
            object_dirs(&request),
            [
                PathBuf::from("/r/app.git/objects"),
                PathBuf::from("/r/app.git/objects/tmp_objdir-incoming-x")
            ]
        );
    }
}
