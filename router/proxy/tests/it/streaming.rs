//! Bodies stream through the router, and connections are kept alive on both sides.

use std::time::Duration;

use http_body_util::BodyExt;
use hyper::Request;

use crate::support::{send, table, Backend, Router};

#[tokio::test]
async fn response_body_arrives_in_chunks_before_the_backend_finishes() {
    let backend = Backend::start("web-1").await;
    let router = Router::start(table(1, &[("web.localhost", "web", vec![backend.addr])])).await;
    let mut conn = router.connect().await;
    let req = Request::get("/stream")
        .header("host", "web.localhost")
        .body(Default::default())
        .unwrap();
    let response = conn.send_request(req).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();

    // The backend holds its second chunk until released: the first must come through on its own.
    let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("first chunk arrives while the backend is still sending")
        .unwrap()
        .unwrap();
    assert_eq!(first.into_data().unwrap(), "first;");

    backend.release();
    let rest = tokio::time::timeout(Duration::from_secs(5), body.collect())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rest.to_bytes(), "second");
}

#[tokio::test]
async fn keep_alive_is_used_on_both_sides() {
    let backend = Backend::start("web-1").await;
    let router = Router::start(table(1, &[("web.localhost", "web", vec![backend.addr])])).await;

    // One client connection carries every request (send() fails if the router closed it).
    let mut conn = router.connect().await;
    for i in 0..20 {
        let reply = send(&mut conn, "web.localhost", "/").await;
        assert_eq!((reply.status, reply.body.as_str()), (200, "web-1"), "request {i}");
    }
    // And the router reused its pooled connection to the backend instead of opening one per request.
    assert_eq!(backend.connections(), 1);

    // A second client connection shares the same pool.
    let mut other = router.connect().await;
    for _ in 0..5 {
        assert_eq!(send(&mut other, "web.localhost", "/").await.status, 200);
    }
    assert_eq!(backend.connections(), 1);
}
