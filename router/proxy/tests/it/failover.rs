//! A backend that refuses connections is skipped; the request goes to the next one.

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;

use crate::support::{dead_addr, request, table, Backend, Router};

#[tokio::test]
async fn refused_backend_is_skipped_and_every_request_succeeds() {
    let live = Backend::start("web-live").await;
    let dead = dead_addr().await;
    let router = Router::start(table(1, &[("web.localhost", "web", vec![dead, live.addr])])).await;

    for i in 0..10 {
        let reply = router.get("web.localhost", "/").await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (200, "web-live"),
            "request {i}"
        );
    }
    // A request body is still delivered whole after the first attempt was refused.
    let payload = "x".repeat(100_000);
    for i in 0..4 {
        let mut conn = router.connect().await;
        let req = Request::post("/echo")
            .header("host", "web.localhost")
            .body(Full::new(Bytes::from(payload.clone())));
        let reply = request(&mut conn, req.unwrap()).await;
        assert_eq!(reply.status, 200, "request {i}");
        assert!(
            reply.body == payload,
            "request {i}: body of {} bytes came back",
            reply.body.len()
        );
    }
}

#[tokio::test]
async fn all_backends_refusing_gives_502() {
    let router = Router::start(table(
        1,
        &[("web.localhost", "web", vec![dead_addr().await, dead_addr().await])],
    ))
    .await;
    let reply = router.get("web.localhost", "/").await;
    assert_eq!(reply.status, 502);
    assert!(reply.body.contains("web could not be reached"), "{}", reply.body);
}

#[tokio::test]
async fn backend_that_stops_is_routed_around() {
    let (one, two) = (Backend::start("web-1").await, Backend::start("web-2").await);
    let router = Router::start(table(1, &[("web.localhost", "web", vec![one.addr, two.addr])])).await;
    assert_eq!(router.get("web.localhost", "/").await.status, 200);
    assert_eq!(router.get("web.localhost", "/").await.status, 200);

    // Its pooled connections die with it; the pool must not hand them out as if alive.
    one.stop().await;
    for i in 0..10 {
        let reply = router.get("web.localhost", "/").await;
        assert_eq!((reply.status, reply.body.as_str()), (200, "web-2"), "request {i}");
    }
}

#[tokio::test]
async fn backend_that_hangs_up_gives_502() {
    // Accepts the connection, then closes it without answering: the request was sent, so no retry.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hangup = tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            drop(stream);
        }
    });
    let router = Router::start(table(1, &[("web.localhost", "web", vec![addr])])).await;
    let reply = router.get("web.localhost", "/").await;
    assert_eq!(reply.status, 502);
    assert!(reply.body.contains("web failed to answer"), "{}", reply.body);
    hangup.abort();
}

#[tokio::test]
async fn backend_that_does_not_answer_in_time_gives_504() {
    let backend = Backend::start("web-1").await;
    let config = proxy::ProxyConfig {
        response_timeout: std::time::Duration::from_millis(200),
        ..proxy::ProxyConfig::new("localhost")
    };
    let router = Router::start_with(table(1, &[("web.localhost", "web", vec![backend.addr])]), config).await;
    let reply = router.get("web.localhost", "/slow").await;
    assert_eq!(reply.status, 504);
    assert!(
        reply.body.contains("web did not answer in time"),
        "{}",
        reply.body
    );
}
