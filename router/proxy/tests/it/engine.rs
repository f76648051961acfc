//! The router's HTTP/1.1 engine over raw TCP: pipelined requests, bodies larger than a read, HEAD, responses
//! framed by the connection's close, and a connection handed to hyper in the middle (a chunked request body)
//! that goes on serving.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{table, web_router, Router};

/// Reads one response from `stream` (its head, then a `content-length` or chunked body), returning its status
/// and body. `head_only` for an answer to HEAD.
async fn read_response(stream: &mut TcpStream, pending: &mut Vec<u8>, head_only: bool) -> (u16, Vec<u8>) {
    let read = async {
        loop {
            if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&pending[..end]).to_ascii_lowercase();
                let status: u16 = head[9..12].parse().unwrap();
                let body_start = end + 4;
                if head_only {
                    pending.drain(..body_start);
                    return (status, Vec::new());
                }
                if let Some(len) = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .map(|v| v.trim().parse::<usize>().unwrap())
                {
                    while pending.len() < body_start + len {
                        fill(stream, pending).await;
                    }
                    let body = pending[body_start..body_start + len].to_vec();
                    pending.drain(..body_start + len);
                    return (status, body);
                }
                assert!(head.contains("transfer-encoding: chunked"), "{head}");
                // Decode the chunks (sizes only, no extensions from our backends).
                let mut at = body_start;
                let mut body = Vec::new();
                loop {
                    while !pending[at..].windows(2).any(|w| w == b"\r\n") {
                        fill(stream, pending).await;
                    }
                    let line_end = at + pending[at..].windows(2).position(|w| w == b"\r\n").unwrap();
                    let size =
                        usize::from_str_radix(std::str::from_utf8(&pending[at..line_end]).unwrap(), 16)
                            .unwrap();
                    at = line_end + 2;
                    while pending.len() < at + size + 2 {
                        fill(stream, pending).await;
                    }
                    body.extend_from_slice(&pending[at..at + size]);
                    at += size + 2;
                    if size == 0 {
                        pending.drain(..at);
                        return (status, body);
                    }
                }
            }
            fill(stream, pending).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("a whole response")
}

async fn fill(stream: &mut TcpStream, pending: &mut Vec<u8>) {
    let mut buf = [0u8; 16 * 1024];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(
        n > 0,
        "the router closed the connection; had {:?}",
        String::from_utf8_lossy(pending)
    );
    pending.extend_from_slice(&buf[..n]);
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let (backend, router) = web_router(proxy::ProxyConfig::new("localhost")).await;
    let mut stream = TcpStream::connect(router.addr).await.unwrap();
    let body = "x".repeat(300);
    // Three requests in one write: a GET, a POST with a body, another GET.
    let requests = format!(
        "GET /one HTTP/1.1\r\nHost: web.localhost\r\n\r\n\
         POST /echo HTTP/1.1\r\nHost: web.localhost\r\nContent-Length: {}\r\n\r\n{body}\
         GET /three HTTP/1.1\r\nHost: web.localhost\r\n\r\n",
        body.len()
    );
    stream.write_all(requests.as_bytes()).await.unwrap();
    let mut pending = Vec::new();
    assert_eq!(
        read_response(&mut stream, &mut pending, false).await,
        (200, b"web-1".to_vec())
    );
    assert_eq!(
        read_response(&mut stream, &mut pending, false).await,
        (200, body.into_bytes())
    );
    assert_eq!(
        read_response(&mut stream, &mut pending, false).await,
        (200, b"web-1".to_vec())
    );
    let seen = backend.seen();
    assert_eq!(seen, ["GET /one", "POST /echo", "GET /three"], "{seen:?}");
}

#[tokio::test]
async fn large_bodies_stream_both_ways_and_head_has_no_body() {
    let (backend, router) = web_router(proxy::ProxyConfig::new("localhost")).await;
    let mut stream = TcpStream::connect(router.addr).await.unwrap();
    // Far larger than one read of the router, sent in pieces.
    let body: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let head = format!(
        "POST /echo HTTP/1.1\r\nHost: web.localhost\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for piece in body.chunks(50_000) {
        stream.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut pending = Vec::new();
    let (status, echoed) = read_response(&mut stream, &mut pending, false).await;
    assert_eq!(status, 200);
    assert!(echoed == body, "the echoed body differs ({} bytes)", echoed.len());

    // HEAD: a head only, and the connection goes on.
    stream
        .write_all(
            b"HEAD / HTTP/1.1\r\nHost: web.localhost\r\n\r\nGET / HTTP/1.1\r\nHost: web.localhost\r\n\r\n",
        )
        .await
        .unwrap();
    assert_eq!(read_response(&mut stream, &mut pending, true).await.0, 200);
    assert_eq!(
        read_response(&mut stream, &mut pending, false).await,
        (200, b"web-1".to_vec())
    );
    assert_eq!(
        backend.connections(),
        1,
        "one pooled backend connection carried everything"
    );
}

#[tokio::test]
async fn a_connection_handed_to_hyper_keeps_serving() {
    let (backend, router) = web_router(proxy::ProxyConfig::new("localhost")).await;
    let mut stream = TcpStream::connect(router.addr).await.unwrap();
    let mut pending = Vec::new();
    stream
        .write_all(b"GET /first HTTP/1.1\r\nHost: web.localhost\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(
        read_response(&mut stream, &mut pending, false).await,
        (200, b"web-1".to_vec())
    );
    // A chunked request body is hyper's to read: the engine hands the connection over with these bytes.
    stream
        .write_all(
            b"POST /echo HTTP/1.1\r\nHost: web.localhost\r\nTransfer-Encoding: chunked\r\n\r\n\
              5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        )
        .await
        .unwrap();
    assert_eq!(
        read_response(&mut stream, &mut pending, false).await,
        (200, b"hello world".to_vec())
    );
    // An unknown host on the same connection gets hyper's page, and the connection still serves.
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: nope.localhost\r\n\r\nGET /last HTTP/1.1\r\nHost: web.localhost\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut stream, &mut pending, false).await.0, 404);
    assert_eq!(
        read_response(&mut stream, &mut pending, false).await,
        (200, b"web-1".to_vec())
    );
    let seen = backend.seen();
    assert_eq!(seen, ["GET /first", "POST /echo", "GET /last"], "{seen:?}");
}

/// A backend by hand that answers each connection's first request with `answer`, then closes.
async fn raw_backend(answer: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream.write_all(answer).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_response_framed_by_close_reaches_the_client_whole() {
    let addr = raw_backend(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end").await;
    let router = Router::start(table(1, &[("web.localhost", "web", vec![addr])])).await;
    let mut stream = TcpStream::connect(router.addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: web.localhost\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut reply))
        .await
        .expect("the router closes the connection after a body framed by close")
        .unwrap();
    let reply = String::from_utf8(reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(
        reply.to_ascii_lowercase().contains("\r\nconnection: close\r\n"),
        "{reply}"
    );
    assert!(reply.ends_with("\r\n\r\nuntil the end"), "{reply}");
}

#[tokio::test]
async fn a_broken_backend_answer_is_a_502_not_a_confused_client() {
    // Broken framing in the backend's first bytes: the client gets a 502 page instead, never the garbage (nor
    // the garbage read as a next response).
    let answers: [&[u8]; 2] = [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nboom\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    ];
    for answer in answers {
        let addr = raw_backend(answer).await;
        let router = Router::start(table(1, &[("web.localhost", "web", vec![addr])])).await;
        let mut stream = TcpStream::connect(router.addr).await.unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: web.localhost\r\n\r\n")
            .await
            .unwrap();
        let mut pending = Vec::new();
        let (status, body) = read_response(&mut stream, &mut pending, false).await;
        assert_eq!(status, 502);
        let body = String::from_utf8_lossy(&body).into_owned();
        assert!(
            body.contains("web failed to answer") && !body.contains("boom"),
            "{body}"
        );
        // The connection goes on serving (its request was read whole), and nothing else was sent on it.
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: nope.localhost\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(read_response(&mut stream, &mut pending, false).await.0, 404);
        assert!(pending.is_empty(), "{:?}", String::from_utf8_lossy(&pending));
    }
}
