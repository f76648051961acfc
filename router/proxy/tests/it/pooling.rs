//! The router's own pool of keep-alive connections to backends: reuse is covered in `streaming`, dead pooled
//! connections in `failover`; here the idle timeout.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{table, Backend, Router};

fn short_idle() -> proxy::ProxyConfig {
    proxy::ProxyConfig {
        pool_idle_timeout: Duration::from_millis(100),
        ..proxy::ProxyConfig::new("localhost")
    }
}

#[tokio::test]
async fn a_connection_idle_past_the_timeout_is_not_reused() {
    let backend = Backend::start("web-1").await;
    let router = Router::start_with(
        table(1, &[("web.localhost", "web", vec![backend.addr])]),
        short_idle(),
    )
    .await;
    assert_eq!(router.get("web.localhost", "/").await.status, 200);
    assert_eq!(router.get("web.localhost", "/").await.status, 200);
    assert_eq!(backend.connections(), 1);

    // Idle for longer than the pool keeps a connection: the next request opens a new one.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reply = router.get("web.localhost", "/").await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "web-1"));
    assert_eq!(backend.connections(), 2);
}

#[tokio::test]
async fn an_idle_pooled_connection_is_closed_after_the_timeout() {
    // A backend by hand: answers one request on its connection, then waits to see the router close it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let backend = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "the router closed the connection before sending its request"
            );
            head.extend_from_slice(&buf[..n]);
        }
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .await
            .unwrap();
        // Keep-alive: the router keeps the connection until its idle timeout, then closes it (EOF here).
        stream.read(&mut buf).await.unwrap()
    });
    let router = Router::start_with(table(1, &[("web.localhost", "web", vec![addr])]), short_idle()).await;
    let reply = router.get("web.localhost", "/").await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "ok"));
    // A bound so that a broken pool fails the test instead of hanging it; the timeout is 100 ms.
    let read = tokio::time::timeout(Duration::from_secs(30), backend)
        .await
        .expect("the router never closed its idle backend connection")
        .unwrap();
    assert_eq!(read, 0, "the router sent more on an idle connection");
}
