//! Follows the control plane's route stream (`GET /v1/routes/watch`, see [`api_contract::RouteStreamLine`])
//! into a `tokio::sync::watch` channel that `proxy::serve` reads, so a router on another machine (`berth router
//! --api URL`) serves what the control plane publishes.
//!
//! A router must keep serving when the control plane is away: [`follow`] keeps the last table while it
//! reconnects with capped exponential backoff, resumes with `?since=VERSION` so an unchanged table is not sent
//! again, and treats a stream silent for longer than a few heartbeats as dead. With a [`Cache`] every new table
//! is written to disk atomically (mode 0600: tables hold private keys), so a restarted router serves at once.
//!
//! Where tables come from is the [`RouteSource`] trait ([`HttpSource`] in production, anything in tests). This
//! crate never decides routes and never touches the request path; it depends on nothing of the control plane
//! but the contract types.

mod cache;
mod source;

pub use cache::Cache;
pub use source::{HttpSource, LineStream, RouteSource};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use api_contract::RouteStreamLine;
use futures_util::StreamExt;
use route_table::RouteTable;
use tokio::sync::watch;

/// Why following failed for a while. [`follow`] logs these and retries; none is fatal.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("invalid control plane URL {url:?}")]
    BadUrl { url: String },
    #[error("connecting to the control plane at {url}")]
    Connect {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the control plane answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("reading the route stream")]
    Read(#[source] reqwest::Error),
    #[error("the route stream sent a line that is not a route stream line")]
    BadLine(#[source] serde_json::Error),
    #[error("the route stream sent a line longer than {max} bytes")]
    LineTooLong { max: usize },
    #[error("reading the route cache {path}")]
    ReadCache {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the route cache {path} is not a route table")]
    CorruptCache {
        path: std::path::PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("writing the route cache {path}")]
    WriteCache {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Timing of [`follow`].
#[derive(Debug, Clone)]
pub struct FollowConfig {
    /// The first wait after a failed connection; doubled after each failure in a row.
    pub backoff_min: Duration,
    /// The longest wait between attempts.
    pub backoff_max: Duration,
    /// A stream that sends nothing (not even a heartbeat) for this long is taken as dead and reopened.
    pub silence_timeout: Duration,
}

impl Default for FollowConfig {
    fn default() -> Self {
        Self {
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(10),
            // Three heartbeats missed.
            silence_timeout: Duration::from_secs(3 * api_contract::ROUTE_HEARTBEAT_SECS),
        }
    }
}

/// The wait after `failures` failed attempts in a row (at least one): `min`, `2·min`, `4·min`, ... up to `max`.
pub fn backoff(failures: u32, config: &FollowConfig) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    config
        .backoff_min
        .saturating_mul(1 << doublings)
        .min(config.backoff_max)
}

/// Follows `source` until `shutdown` resolves, sending every new table on `routes` (and writing it to `cache`
/// first). The table in `routes` when called (for example one loaded from the cache) is served meanwhile and
/// its version is where the stream resumes.
pub async fn follow<S: RouteSource>(
    source: S,
    cache: Option<Cache>,
    routes: watch::Sender<Arc<RouteTable>>,
    config: FollowConfig,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut failures = 0u32;
    loop {
        let outcome = tokio::select! {
            _ = &mut shutdown => return,
            outcome = follow_once(&source, cache.as_ref(), &routes, &config, &mut failures) => outcome,
        };
        let wait = match outcome {
            Ok(()) => {
                tracing::info!("route stream ended; reconnecting");
                config.backoff_min
            }
            Err(error) => {
                failures += 1;
                let wait = backoff(failures, &config);
                tracing::warn!(error = %error_chain(&error), retry_in_ms = wait.as_millis() as u64,
                    version = routes.borrow().version, "route stream unavailable; serving the last table");
                wait
            }
        };
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// One connection: open, apply lines until the stream ends or fails. Resets `failures` once a line arrives.
async fn follow_once<S: RouteSource>(
    source: &S,
    cache: Option<&Cache>,
    routes: &watch::Sender<Arc<RouteTable>>,
    config: &FollowConfig,
    failures: &mut u32,
) -> Result<(), FollowError> {
    let since = Some(routes.borrow().version).filter(|v| *v > 0);
    let mut lines = source.open(since).await?;
    tracing::info!(?since, "following the route stream");
    loop {
        let line = match tokio::time::timeout(config.silence_timeout, lines.next()).await {
            Err(_) => {
                tracing::warn!(
                    silent_ms = config.silence_timeout.as_millis() as u64,
                    "route stream went silent; reconnecting"
                );
                return Ok(());
            }
            Ok(None) => return Ok(()),
            Ok(Some(line)) => line?,
        };
        *failures = 0;
        match line {
            RouteStreamLine::Table(table) => apply(table, cache, routes),
            RouteStreamLine::Heartbeat { version } => {
                tracing::trace!(version, "route stream heartbeat");
            }
        }
    }
}

/// Caches and publishes a table from the stream. A cache that cannot be written is logged, and the table is
/// served anyway: serving the newest routes matters more than surviving a restart with them.
fn apply(table: RouteTable, cache: Option<&Cache>, routes: &watch::Sender<Arc<RouteTable>>) {
    if let Some(cache) = cache {
        if let Err(error) = cache.store(&table) {
            tracing::error!(error = %error_chain(&error), "route cache not updated");
        }
    }
    tracing::info!(
        version = table.version,
        hosts = table.hosts.len(),
        "new route table"
    );
    routes.send_replace(Arc::new(table));
}

/// An error and its sources on one line, for logs.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let config = FollowConfig {
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
            silence_timeout: Duration::from_secs(1),
        };
        let cases = [
            (0, 100),
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (40, 1000),
            (u32::MAX, 1000),
        ];
        for (failures, want_ms) in cases {
            assert_eq!(
                backoff(failures, &config),
                Duration::from_millis(want_ms),
                "{failures}"
            );
        }
    }
}
