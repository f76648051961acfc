//! Protocol switches through the router: WebSocket tunnels (only after a 101), their idle timeout, and HTTP/2
//! with prior knowledge from clients.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::support::{eventually, request, table, Backend, Router};

/// A WebSocket backend that echoes every text or binary message.
struct EchoBackend {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl EchoBackend {
    async fn start() -> EchoBackend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                connections.spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                        return;
                    };
                    while let Some(Ok(message)) = ws.next().await {
                        if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        EchoBackend { addr, task }
    }
}

impl Drop for EchoBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn ws_connect(router: SocketAddr, host: &str) -> WebSocketStream<TcpStream> {
    let stream = TcpStream::connect(router).await.unwrap();
    let (ws, response) = tokio_tungstenite::client_async(format!("ws://{host}/socket"), stream)
        .await
        .expect("websocket handshake through the router");
    assert_eq!(response.status(), 101);
    ws
}

async fn echo(ws: &mut WebSocketStream<TcpStream>, text: &str) {
    ws.send(Message::text(text)).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("an answer within 10 s")
        .expect("the tunnel is open")
        .unwrap();
    assert_eq!(reply.to_text().unwrap(), text);
}

/// The router ends the tunnel (no more messages) and it stops counting as in flight.
async fn assert_router_closes(
    ws: &mut WebSocketStream<TcpStream>,
    traffic: &proxy::Traffic,
    backend: SocketAddr,
) {
    let next = tokio::time::timeout(Duration::from_secs(20), ws.next())
        .await
        .expect("the router closes the tunnel");
    assert!(
        !matches!(next, Some(Ok(Message::Text(_)))),
        "no message, the tunnel ends: {next:?}"
    );
    eventually("the closed tunnel stops counting", || {
        traffic.in_flight(backend) == 0
    })
    .await;
}

#[tokio::test]
async fn websocket_echo_works_after_a_minute_of_silence() {
    let backend = EchoBackend::start().await;
    let config = proxy::ProxyConfig::new("localhost");
    let traffic = config.traffic.clone();
    let router = Router::start_with(table(1, &[("ws.localhost", "ws", vec![backend.addr])]), config).await;

    let mut ws = ws_connect(router.addr, "ws.localhost").await;
    echo(&mut ws, "hello").await;
    assert_eq!(
        traffic.in_flight(backend.addr),
        1,
        "an open tunnel counts as in flight"
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    echo(&mut ws, "still here").await;
    ws.close(None).await.unwrap();
    // The backend answers the close and hangs up; the router passes that on, then the client hangs up too.
    while let Some(Ok(_)) = ws.next().await {}
    drop(ws);
    eventually("the closed tunnel stops counting", || {
        traffic.in_flight(backend.addr) == 0
    })
    .await;
}

#[tokio::test]
async fn idle_tunnel_is_closed_after_the_configured_timeout() {
    let backend = EchoBackend::start().await;
    let config = proxy::ProxyConfig {
        tunnel_idle_timeout: Duration::from_millis(300),
        ..proxy::ProxyConfig::new("localhost")
    };
    let traffic = config.traffic.clone();
    let router = Router::start_with(table(1, &[("ws.localhost", "ws", vec![backend.addr])]), config).await;

    let mut ws = ws_connect(router.addr, "ws.localhost").await;
    echo(&mut ws, "hello").await;
    assert_router_closes(&mut ws, &traffic, backend.addr).await;
}

#[tokio::test]
async fn upgrade_answered_with_200_is_an_ordinary_response() {
    let backend = Backend::start("web-1").await;
    let config = proxy::ProxyConfig::new("localhost");
    let traffic = config.traffic.clone();
    let router = Router::start_with(table(1, &[("web.localhost", "web", vec![backend.addr])]), config).await;

    let mut conn = router.connect().await;
    let req = Request::get("/")
        .header("host", "web.localhost")
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(Full::default())
        .unwrap();
    let reply = request(&mut conn, req).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "web-1"));
    assert!(reply.headers.get("upgrade").is_none(), "{:?}", reply.headers);
    eventually("no tunnel holds the backend", || {
        traffic.in_flight(backend.addr) == 0
    })
    .await;
    // The client connection is still plain HTTP.
    let again = crate::support::send(&mut conn, "web.localhost", "/").await;
    assert_eq!((again.status, again.body.as_str()), (200, "web-1"));
}

#[tokio::test]
async fn http2_prior_knowledge_is_served() {
    let backend = Backend::start("web-1").await;
    let router = Router::start(table(1, &[("web.localhost", "web", vec![backend.addr])])).await;

    let stream = TcpStream::connect(router.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2c handshake");
    tokio::spawn(connection);
    for path in ["/", "/headers"] {
        let req = Request::get(format!("http://web.localhost{path}"))
            .body(Full::<Bytes>::default())
            .unwrap();
        let response = sender.send_request(req).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.version(), hyper::Version::HTTP_2);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8_lossy(&body);
        match path {
            "/" => assert_eq!(body, "web-1"),
            _ => assert!(body.contains("x-forwarded-proto: http\n"), "{body}"),
        }
    }
}

#[tokio::test]
async fn open_tunnels_are_closed_when_the_grace_ends_at_shutdown() {
    let backend = EchoBackend::start().await;
    let config = proxy::ProxyConfig {
        shutdown_grace: Duration::from_millis(300),
        ..proxy::ProxyConfig::new("localhost")
    };
    let traffic = config.traffic.clone();
    let router = Router::start_with(table(1, &[("ws.localhost", "ws", vec![backend.addr])]), config).await;
    let mut ws = ws_connect(router.addr, "ws.localhost").await;
    echo(&mut ws, "before shutdown").await;

    router.stop().await;
    assert_router_closes(&mut ws, &traffic, backend.addr).await;
}
