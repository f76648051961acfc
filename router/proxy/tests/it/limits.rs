//! Hostile and broken clients, over raw TCP: smuggling attempts never reach a backend as a second request,
//! oversized heads get 431, slow clients are cut off, and slow backends are answered with clear codes.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use proxy::ProxyConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{connect, table, web_router, Backend, Router};

/// Writes `request` as is and reads until the router closes the connection.
async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut reply))
        .await
        .expect("the router closes the connection")
        .ok();
    String::from_utf8_lossy(&reply).into_owned()
}

/// The status codes of every response in a raw reply, in order.
fn statuses(reply: &str) -> Vec<u16> {
    reply
        .split("HTTP/1.1 ")
        .skip(1)
        .filter_map(|rest| rest.get(..3)?.parse().ok())
        .collect()
}

const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: web.localhost\r\n\r\n";

#[tokio::test]
async fn smuggling_corpus_never_reaches_the_backend_as_a_second_request() {
    let (backend, router) = web_router(ProxyConfig::new("localhost")).await;
    let smuggled_len = SMUGGLED.len() + 5;
    let cases: Vec<(&str, String, &[u16])> = vec![
        // Both framings: refused outright (RFC 9112 §6.1 allows it), so nothing reaches the backend and the
        // bytes after the empty chunked body are never a request.
        (
            "content-length then transfer-encoding",
            format!(
                "POST /echo HTTP/1.1\r\nHost: web.localhost\r\nContent-Length: {smuggled_len}\r\n\
                 Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n{SMUGGLED}"
            ),
            &[400],
        ),
        (
            "transfer-encoding then content-length",
            format!(
                "POST /echo HTTP/1.1\r\nHost: web.localhost\r\nTransfer-Encoding: chunked\r\n\
                 Content-Length: {smuggled_len}\r\n\r\n0\r\n\r\n{SMUGGLED}"
            ),
            &[400],
        ),
        (
            "conflicting content-lengths",
            format!(
                "POST /echo HTTP/1.1\r\nHost: web.localhost\r\nContent-Length: 0\r\n\
                 Content-Length: {}\r\n\r\n{SMUGGLED}",
                SMUGGLED.len()
            ),
            &[400],
        ),
        (
            "content-length with a sign",
            format!("POST /echo HTTP/1.1\r\nHost: web.localhost\r\nContent-Length: +5\r\n\r\nhello{SMUGGLED}"),
            &[400],
        ),
        (
            "obs-fold",
            format!("GET / HTTP/1.1\r\nHost: web.localhost\r\nX-Folded: a\r\n b\r\n\r\n{SMUGGLED}"),
            &[400],
        ),
        (
            "transfer-encoding that is not chunked",
            format!(
                "POST /echo HTTP/1.1\r\nHost: web.localhost\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n{SMUGGLED}"
            ),
            &[400],
        ),
        (
            "obfuscated transfer-encoding",
            format!(
                "POST /echo HTTP/1.1\r\nHost: web.localhost\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n{SMUGGLED}"
            ),
            &[400],
        ),
        (
            "bad chunk size",
            format!(
                "POST /echo HTTP/1.1\r\nHost: web.localhost\r\nTransfer-Encoding: chunked\r\n\r\n\
                 zz\r\nhello\r\n0\r\n\r\n{SMUGGLED}"
            ),
            &[400],
        ),
        (
            "chunk size overflow",
            format!(
                "POST /echo HTTP/1.1\r\nHost: web.localhost\r\nTransfer-Encoding: chunked\r\n\r\n\
                 ffffffffffffffffff1\r\nhello\r\n0\r\n\r\n{SMUGGLED}"
            ),
            &[400],
        ),
        // The backend refuses the switch: the next bytes are an ordinary request, routed by its own Host
        // (unknown here), never a tunnel to the backend.
        (
            "upgrade without 101",
            "GET / HTTP/1.1\r\nHost: web.localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\
             GET /smuggled HTTP/1.1\r\nHost: internal.localhost\r\nConnection: close\r\n\r\n"
                .to_owned(),
            &[200, 404],
        ),
    ];
    for (name, request, want) in cases {
        let reply = raw(router.addr, request.as_bytes()).await;
        assert_eq!(statuses(&reply), want, "{name}: {reply}");
        let seen = backend.seen();
        assert!(
            !seen.iter().any(|line| line.contains("/smuggled")),
            "{name}: the backend saw {seen:?}"
        );
    }
}

#[tokio::test]
async fn oversized_heads_get_431() {
    let (_backend, router) = web_router(ProxyConfig {
        max_header_count: 50,
        max_header_bytes: 16 * 1024,
        ..ProxyConfig::new("localhost")
    })
    .await;
    let many: String = (0..60).map(|i| format!("X-H{i}: {i}\r\n")).collect();
    let big = format!("X-Big: {}\r\n", "a".repeat(20 * 1024));
    let fine: String = (0..40).map(|i| format!("X-H{i}: {i}\r\n")).collect();
    let cases = [
        ("too many", many, 431),
        ("too big", big, 431),
        ("within limits", fine, 200),
    ];
    for (name, headers, want) in cases {
        let request = format!("GET / HTTP/1.1\r\nHost: web.localhost\r\nConnection: close\r\n{headers}\r\n");
        let reply = raw(router.addr, request.as_bytes()).await;
        assert_eq!(statuses(&reply), [want], "{name}: {reply}");
    }
}

#[tokio::test]
async fn slowloris_is_cut_off_by_the_header_read_timeout() {
    let (_backend, router) = web_router(ProxyConfig {
        header_read_timeout: Duration::from_millis(500),
        ..ProxyConfig::new("localhost")
    })
    .await;
    let mut stream = TcpStream::connect(router.addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: web.localhost\r\n")
        .await
        .unwrap();
    // One more header line every 100 ms would keep the head open forever without the timeout.
    let mut buf = [0u8; 1024];
    for i in 0..200 {
        tokio::select! {
            read = stream.read(&mut buf) => {
                match read {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue, // a 408 page, then the close
                }
            }
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                if stream.write_all(format!("X-Slow-{i}: 1\r\n").as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    }
    panic!("the router kept a trickling head open for 20 s");
}

#[tokio::test]
async fn stalled_request_body_gets_408() {
    let (_backend, router) = web_router(ProxyConfig {
        body_idle_timeout: Duration::from_millis(300),
        ..ProxyConfig::new("localhost")
    })
    .await;
    let mut stream = TcpStream::connect(router.addr).await.unwrap();
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: web.localhost\r\nContent-Length: 10\r\n\r\nhello")
        .await
        .unwrap();
    let mut reply = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut reply))
        .await
        .expect("an answer")
        .unwrap();
    let reply = String::from_utf8_lossy(&reply[..n]);
    assert_eq!(statuses(&reply), [408], "{reply}");
}

#[tokio::test]
async fn stalled_response_body_is_cut() {
    let (_backend, router) = web_router(ProxyConfig {
        body_idle_timeout: Duration::from_millis(300),
        ..ProxyConfig::new("localhost")
    })
    .await;
    let mut conn = connect(router.addr).await;
    let req = Request::get("/stream")
        .header("host", "web.localhost")
        .body(Full::<Bytes>::default())
        .unwrap();
    let response = conn.send_request(req).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = tokio::time::timeout(Duration::from_secs(20), response.into_body().collect())
        .await
        .expect("the router cuts the stalled body");
    assert!(body.is_err(), "the body must not look complete");
}

#[tokio::test]
async fn first_byte_timeout_is_per_app() {
    let backend = Backend::start("web-1").await;
    let mut routes = (*table(
        1,
        &[
            ("quick.localhost", "quick", vec![backend.addr]),
            ("patient.localhost", "patient", vec![backend.addr]),
        ],
    ))
    .clone();
    routes.apps.get_mut("quick").unwrap().first_byte_timeout_ms = Some(200);
    let router = Router::start(std::sync::Arc::new(routes)).await;

    let reply = router.get("quick.localhost", "/slow").await;
    assert_eq!(reply.status, 504);
    assert!(
        reply.body.contains("quick did not answer in time"),
        "{}",
        reply.body
    );

    let mut conn = router.connect().await;
    let patient =
        tokio::spawn(async move { crate::support::send(&mut conn, "patient.localhost", "/slow").await });
    crate::support::eventually("the patient request waits at the backend", || {
        backend.seen().iter().filter(|l| l.contains("/slow")).count() == 2
    })
    .await;
    // Longer than the quick app's timeout, which must not apply here.
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Twice: the timed-out request may still hold the backend's first turn.
    backend.release();
    backend.release();
    let reply = patient.await.unwrap();
    assert_eq!((reply.status, reply.body.as_str()), (200, "web-1"));
}
