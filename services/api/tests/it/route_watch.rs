//! The route watch stream, read line by line from the in-process router.

use std::future::IntoFuture;
use std::sync::Arc;

use api_contract::RouteStreamLine;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use route_table::{AppRoute, RouteTable};
use tower::ServiceExt;

use crate::Harness;

/// An open stream and the bytes read past the last full line.
pub(crate) struct Lines {
    pub(crate) body: Body,
    buffer: Vec<u8>,
}

impl Lines {
    pub(crate) async fn open(h: &Harness, uri: &str, token: &str) -> (StatusCode, String, Self) {
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
        let line = self.next_raw().await;
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad line {line:?}: {e}"))
    }

    /// The next line, without its newline.
    pub(crate) async fn next_raw(&mut self) -> String {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return String::from_utf8_lossy(&line[..end]).into_owned();
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
async fn router_tokens_read_the_route_stream_and_nothing_else() {
    let h = Harness::new().await;
    let alice = h.tenant("alice").await;
    let reply = h
        .call(Method::POST, "/v1/router-tokens", Some(&alice), None)
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.error(), "only an admin account may create router tokens");

    let reply = h
        .call(Method::POST, "/v1/router-tokens", Some(&h.admin), None)
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let token = reply.body["token"].as_str().unwrap().to_owned();
    h.routes.send_replace(table(40, "shop"));
    let (status, _, mut lines) = Lines::open(&h, "/v1/routes/watch", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(expect_table(lines.next().await).version, 40);

    for (method, uri) in [
        (Method::GET, "/v1/account"),
        (Method::GET, "/v1/apps"),
        (Method::POST, "/v1/router-tokens"),
    ] {
        let reply = h.call(method, uri, Some(&token), None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{uri}");
    }
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

/// The standalone router's follower (with a router token) against the real API on a real socket: tables
/// arrive with certificates intact, and a tenant's token gets nothing.
#[tokio::test]
async fn the_route_follower_follows_the_real_api() {
    let h = Harness::new().await;
    let alice = h.tenant("alice").await;
    h.routes.send_replace(table(30, "shop"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(axum::serve(listener, h.router.clone()).into_future());

    let follow = |token: &str| {
        let source = route_follower::HttpSource::new(&format!("http://{addr}"), token).unwrap();
        let (tx, rx) = tokio::sync::watch::channel(Arc::new(RouteTable::default()));
        let task = tokio::spawn(route_follower::follow(
            source,
            None,
            tx,
            route_follower::FollowConfig::default(),
            std::future::pending(),
        ));
        (rx, task)
    };
    let router_token = h
        .call(Method::POST, "/v1/router-tokens", Some(&h.admin), None)
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (mut rx, admin_task) = follow(&router_token);
    let (tenant_rx, tenant_task) = follow(&alice);
    let patience = std::time::Duration::from_secs(20);
    tokio::time::timeout(patience, rx.wait_for(|t| t.version == 30))
        .await
        .unwrap()
        .unwrap();
    let mut next = (*table(31, "blog")).clone();
    next.certificates.push(route_table::Certificate {
        hosts: vec!["*.berth.test".into()],
        cert_pem: "CERT".into(),
        key_pem: "KEY".into(),
    });
    h.routes.send_replace(Arc::new(next.clone()));
    let got = tokio::time::timeout(patience, rx.wait_for(|t| t.version == 31))
        .await
        .unwrap()
        .unwrap()
        .clone();
    assert_eq!(*got, next);
    assert_eq!(
        tenant_rx.borrow().version,
        0,
        "a tenant's token must not get routes"
    );
    admin_task.abort();
    tenant_task.abort();
    server.abort();
}
