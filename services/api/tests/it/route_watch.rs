//! The route watch stream, read line by line from the in-process router.

use std::sync::Arc;

use api_contract::RouteStreamLine;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use route_table::{AppRoute, RouteTable};
use tower::ServiceExt;

use crate::Harness;

/// An open stream and the bytes read past the last full line.
struct Lines {
    body: Body,
    buffer: Vec<u8>,
}

impl Lines {
    async fn open(h: &Harness, uri: &str, token: &str) -> (StatusCode, String, Self) {
        let req = Request::get(uri)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        let response = h.router.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let lines = Self {
            body: response.into_body(),
            buffer: Vec::new(),
        };
        (status, content_type, lines)
    }

    async fn next(&mut self) -> RouteStreamLine {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return serde_json::from_slice(&line)
                    .unwrap_or_else(|e| panic!("bad line {:?}: {e}", String::from_utf8_lossy(&line)));
            }
            let frame = self.body.frame().await.expect("stream ended").unwrap();
            if let Ok(data) = frame.into_data() {
                self.buffer.extend_from_slice(&data);
            }
        }
    }
}

fn table(version: u64, app: &str) -> Arc<RouteTable> {
    let mut table = RouteTable {
        version,
        ..RouteTable::default()
    };
    table.insert_host(&format!("{app}.berth.test"), app);
    table.insert_app(app, AppRoute::default());
    Arc::new(table)
}

fn expect_table(line: RouteStreamLine) -> RouteTable {
    match line {
        RouteStreamLine::Table(table) => table,
        other => panic!("expected a table, got {other:?}"),
    }
}

#[tokio::test]
async fn streams_the_table_then_each_change_then_heartbeats() {
    let h = Harness::new().await;
    h.routes.send_replace(table(10, "shop"));
    let (status, content_type, mut lines) = Lines::open(&h, "/v1/routes/watch", &h.admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/x-ndjson");
    let first = expect_table(lines.next().await);
    assert_eq!(first, *table(10, "shop"));

    h.routes.send_replace(table(11, "blog"));
    let second = expect_table(lines.next().await);
    assert_eq!(second.version, 11);
    assert!(second.lookup("blog.berth.test").is_some());

    // Nothing changes: heartbeats name the current version.
    assert_eq!(lines.next().await, RouteStreamLine::Heartbeat { version: 11 });
    assert_eq!(lines.next().await, RouteStreamLine::Heartbeat { version: 11 });

    h.routes.send_replace(table(12, "shop"));
    assert_eq!(expect_table(lines.next().await).version, 12);
}

#[tokio::test]
async fn resuming_at_the_current_version_sends_no_table_until_a_change() {
    let h = Harness::new().await;
    h.routes.send_replace(table(20, "shop"));
    let (status, _, mut lines) = Lines::open(&h, "/v1/routes/watch?since=20", &h.admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(lines.next().await, RouteStreamLine::Heartbeat { version: 20 });
    h.routes.send_replace(table(21, "blog"));
    assert_eq!(expect_table(lines.next().await).version, 21);

    // A client that has an older (or unknown) version gets the current table at once.
    let (_, _, mut lines) = Lines::open(&h, "/v1/routes/watch?since=5", &h.admin).await;
    assert_eq!(expect_table(lines.next().await).version, 21);
}

#[tokio::test]
async fn only_admins_may_watch() {
    let h = Harness::new().await;
    let alice = h.tenant("alice").await;
    let reply = h.get("/v1/routes/watch", &alice).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.error(), "only an admin account may watch the route table");
    let reply = h.get("/v1/routes/watch", "berth_nope").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let reply = h.get("/v1/routes/watch?since=abc", &h.admin).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_stream_ends_when_the_controller_is_gone() {
    let h = Harness::new().await;
    let (_, _, mut lines) = Lines::open(&h, "/v1/routes/watch", &h.admin).await;
    expect_table(lines.next().await);
    let Harness { routes, .. } = h;
    drop(routes);
    assert!(lines.body.frame().await.is_none());
}
