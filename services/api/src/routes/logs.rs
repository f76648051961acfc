//! `GET /v1/apps/{name}/logs?lines=N&ps=web.1&source=app&follow=true`: an app's kept log lines as
//! newline-delimited JSON ([`api_contract::LogLine`]), oldest first; with `follow=true` the response stays
//! open and carries each new line as it is written, plus a keep-alive line ([`api_contract::LOG_KEEPALIVE_LINE`])
//! every [`api_contract::LOG_KEEPALIVE_SECS`] while the app is quiet. The app's owner only.

use std::time::Duration;

use api_contract::{LogSource, LOG_KEEPALIVE_LINE};
use app_logs::{Filter, Follower, LogLine};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::{app_for, Permission};
use crate::{ApiError, ApiState, Caller};

/// The most lines one request may ask for (the kept log is at most twice the segment size anyway).
pub const MAX_LINES: usize = 100_000;
const DEFAULT_LINES: usize = 100;

#[derive(Debug, Deserialize)]
pub struct LogsQuery {
    lines: Option<usize>,
    ps: Option<String>,
    source: Option<String>,
    #[serde(default)]
    follow: bool,
}

impl LogsQuery {
    fn filter(&self) -> Result<Filter, ApiError> {
        let source = match self.source.as_deref() {
            None => None,
            Some(text) => Some(LogSource::parse(text).ok_or_else(|| {
                ApiError::Invalid(format!("source must be app, router or berth, not {text:?}"))
            })?),
        };
        if let Some(ps) = &self.ps {
            let ok = !ps.is_empty()
                && ps.len() <= 64
                && ps
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
            if !ok {
                return Err(ApiError::Invalid(format!(
                    "ps must name a process like web or web.1, not {ps:?}"
                )));
            }
        }
        Ok(Filter {
            process: self.ps.clone(),
            source,
        })
    }
}

/// `GET /v1/apps/{name}/logs`
pub async fn show(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(query): Query<LogsQuery>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &caller, &name, Permission::Read).await?;
    let filter = query.filter()?;
    let lines = query.lines.unwrap_or(DEFAULT_LINES);
    if lines > MAX_LINES {
        return Err(ApiError::Invalid(format!("lines must be at most {MAX_LINES}")));
    }
    let logs = &state.logs;
    if !query.follow {
        let kept = logs.tail(app.id, lines, filter).await?;
        let body: Vec<u8> = kept.iter().flat_map(encode).collect();
        return Ok(super::line_stream(Body::from(body), "application/x-ndjson"));
    }
    let (kept, follower) = logs.follow(app.id, lines, filter).await?;
    tracing::info!(app = %app.name, "logs followed");
    let first = futures_util::stream::iter(
        kept.iter()
            .map(|l| Ok::<_, std::convert::Infallible>(encode(l)))
            .collect::<Vec<_>>(),
    );
    let live = futures_util::stream::unfold(
        Live::new(
            follower,
            state
                .route_heartbeat
                .min(Duration::from_secs(api_contract::LOG_KEEPALIVE_SECS)),
        ),
        |mut live| async move {
            let bytes = live.next_bytes().await?;
            Some((Ok(bytes), live))
        },
    );
    use futures_util::StreamExt;
    Ok(super::line_stream(
        Body::from_stream(first.chain(live)),
        "application/x-ndjson",
    ))
}

struct Live {
    follower: Follower,
    keepalive: Interval,
}

impl Live {
    fn new(follower: Follower, period: Duration) -> Self {
        let mut keepalive = tokio::time::interval_at(Instant::now() + period, period);
        keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self { follower, keepalive }
    }

    /// The next line to send, or a keep-alive; `None` when the logs are closed.
    async fn next_bytes(&mut self) -> Option<Bytes> {
        tokio::select! {
            line = self.follower.next() => {
                self.keepalive.reset();
                Some(encode(&line?))
            }
            _ = self.keepalive.tick() => Some(Bytes::from(format!("{LOG_KEEPALIVE_LINE}\n"))),
        }
    }
}

fn encode(line: &LogLine) -> Bytes {
    let mut bytes = serde_json::to_vec(line).expect("log lines always serialize");
    bytes.push(b'\n');
    Bytes::from(bytes)
}
