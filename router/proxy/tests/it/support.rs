//! Real backends (small hyper servers), a running router, and a raw HTTP/1.1 client, all on 127.0.0.1.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::channel::Channel;
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use proxy::ProxyConfig;
use route_table::{AppRoute, RouteTable};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::{JoinHandle, JoinSet};

type BackendBody = Either<Full<Bytes>, Channel<Bytes>>;

/// A backend instance. Paths: `/` answers its name, `/headers` the request headers as `name: value` lines,
/// `/echo` the request body, `/stream` a first chunk at once and a second after [`Backend::release`],
/// `/slow` its name after [`Backend::release`].
pub struct Backend {
    pub name: String,
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<String>>>,
    release: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Backend {
    pub async fn start(name: &str) -> Backend {
        Backend::start_at(name, "127.0.0.1:0".parse().unwrap()).await
    }

    /// A backend listening on `addr` (a port that was free).
    pub async fn start_at(name: &str, addr: SocketAddr) -> Backend {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(Notify::new());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (count, gate, own) = (connections.clone(), release.clone(), name.to_owned());
        let record = seen.clone();
        // Connection tasks live in a JoinSet owned by the accept task, so aborting that task closes them all.
        let task = tokio::spawn(async move {
            let mut tasks = JoinSet::new();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                let (gate, own, record) = (gate.clone(), own.clone(), record.clone());
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let line = format!("{} {}", req.method(), req.uri());
                    record.lock().unwrap().push(line);
                    answer(own.clone(), gate.clone(), req)
                });
                tasks.spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Backend {
            name: name.to_owned(),
            addr,
            connections,
            seen,
            release,
            task,
        }
    }

    /// Every request this backend received, as `METHOD URI`.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    /// How many TCP connections this backend accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Lets one waiting `/stream` or `/slow` request finish.
    pub fn release(&self) {
        self.release.notify_one();
    }

    /// Stops the backend and closes its connections.
    pub async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    name: String,
    gate: Arc<Notify>,
    req: Request<Incoming>,
) -> Result<Response<BackendBody>, Infallible> {
    let full = |text: String| Response::new(Either::Left(Full::new(Bytes::from(text))));
    Ok(match req.uri().path() {
        "/headers" => {
            let lines: String = req
                .headers()
                .iter()
                .map(|(k, v)| format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())))
                .collect();
            full(lines)
        }
        "/echo" => {
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Response::new(Either::Left(Full::new(body)))
        }
        "/stream" => {
            let (mut tx, body) = Channel::new(1);
            tokio::spawn(async move {
                let _ = tx.send_data(Bytes::from("first;")).await;
                gate.notified().await;
                let _ = tx.send_data(Bytes::from("second")).await;
            });
            Response::new(Either::Right(body))
        }
        "/slow" => {
            gate.notified().await;
            full(name)
        }
        _ => full(name),
    })
}

/// A port on 127.0.0.1 where nothing listens (bound, then closed).
pub async fn dead_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// Builds a table from `(host, app, backends)`.
pub fn table(version: u64, routes: &[(&str, &str, Vec<SocketAddr>)]) -> Arc<RouteTable> {
    let mut table = RouteTable {
        version,
        ..RouteTable::default()
    };
    for (host, app, backends) in routes {
        table.insert_host(host, app);
        let backends = backends
            .iter()
            .enumerate()
            .map(|(i, addr)| route_table::Backend {
                addr: *addr,
                instance: format!("web.{}", i + 1),
            })
            .collect();
        table.insert_app(
            app,
            AppRoute {
                backends,
                ..AppRoute::default()
            },
        );
    }
    Arc::new(table)
}

/// A router serving on 127.0.0.1, stopped (gracefully) by [`Router::stop`] or on drop.
pub struct Router {
    pub addr: SocketAddr,
    pub routes: watch::Sender<Arc<RouteTable>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), proxy::ProxyError>>>,
}

impl Router {
    pub async fn start(table: Arc<RouteTable>) -> Router {
        Router::start_with(table, ProxyConfig::new("localhost")).await
    }

    pub async fn start_with(table: Arc<RouteTable>, config: ProxyConfig) -> Router {
        init_tracing();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (routes, rx) = watch::channel(table);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(proxy::serve(listener, rx, config, shutdown));
        Router {
            addr,
            routes,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Asks for a graceful stop and waits until `serve` returned.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let task = self.task.take().unwrap();
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("router stops")
            .unwrap()
            .unwrap();
    }

    /// One request on a fresh connection.
    pub async fn get(&self, host: &str, path: &str) -> Reply {
        let mut conn = self.connect().await;
        send(&mut conn, host, path).await
    }

    /// A client connection that can carry several requests (keep-alive).
    pub async fn connect(&self) -> SendRequest<Full<Bytes>> {
        connect(self.addr).await
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

pub async fn connect(addr: SocketAddr) -> SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

/// A response read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: String,
}

impl Reply {
    /// `/headers` output as a map (header names are lowercase; repeated headers keep the last value).
    pub fn seen_headers(&self) -> HashMap<String, String> {
        self.body
            .lines()
            .filter_map(|line| line.split_once(": "))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

pub async fn send(conn: &mut SendRequest<Full<Bytes>>, host: &str, path: &str) -> Reply {
    let req = Request::get(path)
        .header("host", host)
        .body(Full::default())
        .unwrap();
    request(conn, req).await
}

pub async fn request(conn: &mut SendRequest<Full<Bytes>>, req: Request<Full<Bytes>>) -> Reply {
    conn.ready().await.expect("connection still open");
    let response = tokio::time::timeout(Duration::from_secs(10), conn.send_request(req))
        .await
        .expect("answer within 10 s")
        .unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// Logs to the test's captured output, so a failing test shows the access log.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("info")
        .try_init();
}

/// Waits until `condition` holds, polling; panics naming `what` if it has not after 20 s (a hang, not a speed
/// check).
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("gave up waiting: {what}");
}

/// One backend named `web-1` behind a router serving it at `web.localhost` with `config`.
pub async fn web_router(config: ProxyConfig) -> (Backend, Router) {
    let backend = Backend::start("web-1").await;
    let router = Router::start_with(table(1, &[("web.localhost", "web", vec![backend.addr])]), config).await;
    (backend, router)
}
