//! Git push over smart HTTP, the way `git push http://user:TOKEN@HOST/git/APP.git main` reaches Berth.
//!
//! The push itself is received by git's own `git receive-pack --stateless-rpc`, spawned per request into a
//! bare repository per app (`REPOS_DIR/APP.git`, created on first push). Its only hook, pre-receive, runs
//! `berth git-hook pre-receive` ([`hook::main`]), which posts the pushed ref to this crate's internal endpoint
//! with a one-time secret; the server writes the pushed commit's tree out of git's quarantine with git2, hands
//! it to a [`Deployer`] and streams the deploy's log back, so the pusher sees it as `remote:` lines. The hook
//! exits non-zero when the deploy fails, so git does not update the branch.
//!
//! This crate checks tokens and app ownership (through `store`), but builds and releases nothing itself:
//! the controller implements [`Deployer`]. Fetching (clone, pull) is refused for now. `berth` (the server and
//! the hook subcommand) depends on this crate; the controller depends on it for the [`Deployer`] trait.

mod checkout;
mod error;
pub mod hook;
mod hook_server;
mod pktline;
mod protocol;
mod pushes;
mod repo;
mod smart_http;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use tower_http::decompression::RequestDecompressionLayer;

pub use error::GitReceiveError;
pub use protocol::{HookMessage, HookRequest};
pub use repo::delete_repo;
pub use smart_http::basic_password;

use pushes::PushRegistry;

/// One pushed commit to deploy.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    pub app: store::App,
    /// Who pushed.
    pub account: store::Account,
    /// The full id of the pushed commit.
    pub commit: String,
    /// The commit's tree, written out; removed once the deploy has finished.
    pub source_dir: PathBuf,
}

/// Builds and releases a pushed commit. Implemented by the controller.
pub trait Deployer: Send + Sync + 'static {
    /// Sends log lines (already formatted, like `-----> Building`) through `log` as they happen, and ends
    /// with a summary for the pusher, or the reason the deploy failed (shown to the pusher as it is).
    fn deploy(
        &self,
        req: DeployRequest,
        log: tokio::sync::mpsc::Sender<String>,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;
}

pub struct GitReceiveConfig {
    /// Holds `APP.git` for each app (and `.checkouts/` while deploys run).
    pub repos_dir: PathBuf,
    pub store: store::Store,
    pub deployer: Arc<dyn Deployer>,
    /// The program the pre-receive hook runs as `PROGRAM git-hook pre-receive` (the `berth` binary).
    pub hook_program: PathBuf,
    /// Where the hook posts, e.g. `http://127.0.0.1:7070/internal/git-hooks/pre-receive`.
    pub hook_url: String,
    /// Largest push (pack bytes after gzip decoding) accepted.
    pub max_push_bytes: u64,
}

/// The state behind [`routes`]. Cheap to clone.
#[derive(Clone)]
pub struct GitReceive {
    inner: Arc<Inner>,
}

struct Inner {
    config: GitReceiveConfig,
    pushes: Arc<PushRegistry>,
}

impl GitReceive {
    /// Also removes checkouts left behind by a server that stopped mid-deploy (none can be running yet).
    pub fn new(config: GitReceiveConfig) -> Self {
        let stale = config.repos_dir.join(CHECKOUTS_DIR);
        if let Err(error) = std::fs::remove_dir_all(&stale) {
            if error.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %stale.display(), %error, "removing stale checkouts");
            }
        }
        Self {
            inner: Arc::new(Inner {
                config,
                pushes: Arc::default(),
            }),
        }
    }
}

/// Under `repos_dir`: pushed trees being deployed. App names start with a letter, so no repository is named so.
pub(crate) const CHECKOUTS_DIR: &str = ".checkouts";

/// The git endpoints (`/git/{app}.git/...`) and the hook's internal endpoint
/// (`/internal/git-hooks/pre-receive`), to be merged into the API server's router.
///
/// Nothing here times out: a first deploy may build for minutes while the pusher waits. One deploy per app
/// runs at a time; a second push to an app that is deploying is refused with a message saying so.
pub fn routes(state: GitReceive) -> Router {
    Router::new()
        .route("/git/{repo}/info/refs", get(smart_http::info_refs))
        .route("/git/{repo}/git-receive-pack", post(smart_http::receive_pack))
        .route("/git/{repo}/git-upload-pack", post(smart_http::upload_pack))
        // git gzips small push requests.
        .layer(RequestDecompressionLayer::new())
        .route("/internal/git-hooks/pre-receive", post(hook_server::pre_receive))
        .with_state(state)
}

/// An error and its sources, joined with `: ` (for logs and for the messages pushers see).
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
