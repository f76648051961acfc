//! Routing by host, least-loaded choice between backends, live table swaps, and the router's own 404/503/400 pages.

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;

use crate::support::{eventually, request, send, table, Backend, Router};

#[tokio::test]
async fn routes_by_host_to_the_right_app() {
    let (web, api) = (Backend::start("web-1").await, Backend::start("api-1").await);
    let router = Router::start(table(
        1,
        &[
            ("web.localhost", "web", vec![web.addr]),
            ("api.localhost", "api", vec![api.addr]),
        ],
    ))
    .await;

    let cases = [
        ("web.localhost", "web-1"),
        ("api.localhost", "api-1"),
        ("API.LocalHost:8080", "api-1"),
    ];
    for (host, want) in cases {
        let reply = router.get(host, "/").await;
        assert_eq!((reply.status, reply.body.as_str()), (200, want), "{host}");
    }

    // An absolute-form URI names the host even when the Host header says otherwise.
    let mut conn = router.connect().await;
    let req = Request::get("http://api.localhost/")
        .header("host", "web.localhost")
        .body(Full::<Bytes>::default());
    let reply = request(&mut conn, req.unwrap()).await;
    assert_eq!(reply.body, "api-1");
}

#[tokio::test]
async fn requests_go_to_the_backend_with_fewer_in_flight() {
    let (one, two) = (Backend::start("web-1").await, Backend::start("web-2").await);
    let config = proxy::ProxyConfig::new("localhost");
    let traffic = config.traffic.clone();
    let router = Router::start_with(
        table(1, &[("web.localhost", "web", vec![one.addr, two.addr])]),
        config,
    )
    .await;

    // One slow request holds one backend; with two backends P2C compares both, so every other request goes to
    // the idle one.
    let mut slow_conn = router.connect().await;
    let slow = tokio::spawn(async move { send(&mut slow_conn, "web.localhost", "/slow").await });
    eventually("the slow request is in flight", || {
        traffic.in_flight(one.addr) + traffic.in_flight(two.addr) == 1
    })
    .await;
    let (busy, idle) = if traffic.in_flight(one.addr) == 1 {
        (&one, &two)
    } else {
        (&two, &one)
    };
    for i in 0..20 {
        let reply = router.get("web.localhost", "/").await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (200, idle.name.as_str()),
            "request {i}"
        );
    }
    busy.release();
    let reply = slow.await.unwrap();
    assert_eq!((reply.status, reply.body.as_str()), (200, busy.name.as_str()));
    eventually("the slow request is done", || traffic.in_flight(busy.addr) == 0).await;
}

#[tokio::test]
async fn a_new_table_is_used_without_restart() {
    let (one, two) = (Backend::start("web-1").await, Backend::start("web-2").await);
    let router = Router::start(table(1, &[("web.localhost", "web", vec![one.addr])])).await;
    assert_eq!(router.get("new.localhost", "/").await.status, 404);

    router
        .routes
        .send(table(
            2,
            &[
                ("web.localhost", "web", vec![one.addr, two.addr]),
                ("new.localhost", "new", vec![two.addr]),
            ],
        ))
        .unwrap();
    // The swap is asynchronous but quick: poll for it with a deadline rather than sleeping blindly.
    let mut seen = HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while seen.len() < 2 && tokio::time::Instant::now() < deadline {
        seen.insert(router.get("web.localhost", "/").await.body);
    }
    assert_eq!(seen, HashSet::from(["web-1".to_owned(), "web-2".to_owned()]));
    assert_eq!(router.get("new.localhost", "/").await.body, "web-2");

    // Scaling down to nothing turns the app's answers into 503s.
    router
        .routes
        .send(table(3, &[("web.localhost", "web", vec![])]))
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    let mut status = 0;
    while status != 503 && tokio::time::Instant::now() < deadline {
        status = router.get("web.localhost", "/").await.status;
    }
    assert_eq!(status, 503);
}

#[tokio::test]
async fn unknown_host_gets_a_clear_404_page() {
    let router = Router::start(table(1, &[])).await;
    let reply = router.get("nope.localhost", "/some/path").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.headers["content-type"], "text/html; charset=utf-8");
    assert!(
        reply.body.contains("No app is served at nope.localhost"),
        "{}",
        reply.body
    );

    let reply = router.get("<b>evil</b>.localhost", "/").await;
    assert_eq!(reply.status, 404);
    assert!(
        !reply.body.contains("<b>evil"),
        "client text must be escaped: {}",
        reply.body
    );
}

#[tokio::test]
async fn app_without_instances_gets_a_clear_503_page() {
    let router = Router::start(table(1, &[("web.localhost", "web", vec![])])).await;
    let reply = router.get("web.localhost", "/").await;
    assert_eq!(reply.status, 503);
    assert!(
        reply.body.contains("web has no running instances"),
        "{}",
        reply.body
    );
    assert!(reply.body.contains("berth scale web=1 -a web"), "{}", reply.body);
}

#[tokio::test]
async fn request_without_host_gets_400() {
    let router = Router::start(table(1, &[])).await;
    let mut conn = router.connect().await;
    // hyper's client adds no Host on its own for an origin-form URI.
    let reply = request(&mut conn, Request::get("/").body(Full::default()).unwrap()).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
}
