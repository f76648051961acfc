//! `GET /v1/routes/watch?since=V`: the route table as a long-lived NDJSON stream, for routers.
//!
//! The first line comes at once when the current table's version differs from `since` (always when `since` is
//! absent); after that a full table follows every change, and a heartbeat line every
//! [`api_contract::ROUTE_HEARTBEAT_SECS`] while nothing changes. Tables carry certificates' private keys, so
//! only admin tokens and router tokens (`POST /v1/router-tokens`) may watch.

use std::sync::Arc;
use std::time::Duration;

use api_contract::RouteStreamLine;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::response::Response;
use route_table::RouteTable;
use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use crate::auth::RouteReader;
use crate::{ApiError, ApiState};

#[derive(Debug, Deserialize)]
pub struct WatchQuery {
    /// The version the client already has.
    since: Option<u64>,
}

/// `GET /v1/routes/watch` (admin or router token).
pub async fn watch(
    State(state): State<ApiState>,
    reader: RouteReader,
    Query(query): Query<WatchQuery>,
) -> Result<Response, ApiError> {
    let by = reader
        .admin
        .as_ref()
        .map_or("a router token", |name| name.as_str());
    tracing::info!(by, since = ?query.since, "route watch started");
    let lines = futures_util::stream::unfold(
        Watcher::new(state.routes.clone(), query.since, state.route_heartbeat),
        |mut watcher| async move {
            let line = watcher.next_line().await?;
            Some((Ok::<_, std::convert::Infallible>(line), watcher))
        },
    );
    Ok(super::line_stream(
        Body::from_stream(lines),
        "application/x-ndjson",
    ))
}

/// One stream's position: what it last sent, and when the next heartbeat is due.
struct Watcher {
    routes: watch::Receiver<Arc<RouteTable>>,
    sent: Option<u64>,
    heartbeat: Interval,
}

impl Watcher {
    fn new(routes: watch::Receiver<Arc<RouteTable>>, since: Option<u64>, period: Duration) -> Self {
        let mut heartbeat = tokio::time::interval_at(Instant::now() + period, period);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self {
            routes,
            sent: since,
            heartbeat,
        }
    }

    /// The next line to send; `None` once the controller is gone (the server is shutting down), which ends
    /// the response so that graceful shutdown is not held up.
    async fn next_line(&mut self) -> Option<Bytes> {
        loop {
            let table = self.routes.borrow_and_update().clone();
            if self.sent != Some(table.version) {
                self.sent = Some(table.version);
                self.heartbeat.reset();
                return Some(encode(&RouteStreamLine::Table((*table).clone())));
            }
            tokio::select! {
                changed = self.routes.changed() => changed.ok()?,
                _ = self.heartbeat.tick() => {
                    return Some(encode(&RouteStreamLine::Heartbeat { version: table.version }));
                }
            }
        }
    }
}

fn encode(line: &RouteStreamLine) -> Bytes {
    let mut bytes = serde_json::to_vec(line).expect("route stream lines always serialize");
    bytes.push(b'\n');
    Bytes::from(bytes)
}
