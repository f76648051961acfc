//! The accept loop: one hyper connection task per client (HTTP/1.1 with keep-alive, or HTTP/2 with prior
//! knowledge), and a graceful stop: stop accepting, let in-flight requests finish for a bounded time, then
//! close whatever is left.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use route_table::RouteTable;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::forward::{self, Shared};
use crate::h1;
use crate::observe::Observer;
use crate::routes::Routes;
use crate::tls::Terminator;
use crate::{ProxyConfig, ProxyError};

/// The number of request headers hyper's HTTP/1 server accepts when not told otherwise.
const HYPER_MAX_HEADERS: usize = 100;

/// How a client reached the router, for `X-Forwarded-Proto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// The client connections being served, and how to serve one more.
struct Clients {
    shared: Arc<Shared>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    graceful: GracefulShutdown,
    connections: JoinSet<()>,
    /// Set on the TLS listener: every connection is a TLS handshake first.
    tls: Option<Arc<Terminator>>,
    /// Becomes true when the router stops: the HTTP/1.1 engine's connections close once idle.
    stop: watch::Receiver<bool>,
}

impl Clients {
    /// Serves one accepted client connection in its own task until it closes or shutdown ends it. On the TLS
    /// listener the handshake runs in that task too, so a slow client never holds up accepting.
    fn accept(&mut self, stream: TcpStream, peer: SocketAddr) {
        let (shared, builder, watcher) = (self.shared.clone(), self.builder.clone(), self.graceful.watcher());
        match self.tls.clone() {
            None => {
                self.connections.spawn(h1::serve(
                    shared,
                    builder,
                    watcher,
                    self.stop.clone(),
                    stream,
                    peer,
                ));
            }
            Some(tls) => {
                self.connections.spawn(async move {
                    let Some(stream) = tls.accept(stream, peer).await else {
                        return;
                    };
                    serve_connection(shared, builder, watcher, stream, peer, Scheme::Https).await;
                });
            }
        }
    }
}

/// Serves one client connection (TLS, or plain TCP handed over by the HTTP/1.1 engine) with hyper, with
/// upgrades, until it closes or shutdown ends it.
pub(crate) async fn serve_connection<I>(
    shared: Arc<Shared>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    watcher: Watcher,
    io: I,
    peer: SocketAddr,
    scheme: Scheme,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| forward::handle(shared.clone(), peer, scheme, req));
    let connection = builder
        .serve_connection_with_upgrades(TokioIo::new(io), service)
        .into_owned();
    if let Err(err) = watcher.watch(connection).await {
        tracing::debug!(%peer, %err, "client connection ended with an error");
    }
}

/// Serves HTTP on `listener`, routing by the latest table from `routes`, until `shutdown` resolves; then stops
/// accepting and gives in-flight requests up to `config.shutdown_grace` to finish.
///
/// A new table sent on `routes` is used from the next request on, without a restart. If the sender is dropped,
/// the last table keeps being served.
pub async fn serve(
    listener: TcpListener,
    routes: watch::Receiver<Arc<RouteTable>>,
    config: ProxyConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ProxyError> {
    run(listener, routes, config, shutdown, None).await
}

/// Serves HTTPS on `listener` like [`serve`] serves HTTP: TLS with the certificate the table has for each
/// client's SNI (else the `*.DOMAIN` platform wildcard, else the handshake fails), ALPN `h2` and `http/1.1`,
/// then the same routing. Requests get `X-Forwarded-Proto: https` and are never redirected.
///
/// Certificates changed in a new table are used for new handshakes without a restart. Run it beside [`serve`]
/// on the same route channel with a clone of the same config (so both share the backends' in-flight counts,
/// ejections and metrics) and the same `shutdown`.
pub async fn serve_tls(
    listener: TcpListener,
    routes: watch::Receiver<Arc<RouteTable>>,
    config: ProxyConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ProxyError> {
    let terminator = Terminator::new(&routes, &config)?;
    run(listener, routes, config, shutdown, Some(Arc::new(terminator))).await
}

async fn run(
    listener: TcpListener,
    routes: watch::Receiver<Arc<RouteTable>>,
    config: ProxyConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    tls: Option<Arc<Terminator>>,
) -> Result<(), ProxyError> {
    let local = listener.local_addr().map_err(ProxyError::LocalAddr)?;
    let cert_follower = tls.as_ref().map(|tls| tls.follow(routes.clone()));
    config.metrics.watch(config.traffic.clone());
    let (stop_tunnels, tunnels_stop) = watch::channel(false);
    let table = Arc::new(Routes::new(
        routes.borrow().clone(),
        config.traffic.clone(),
        config.metrics.clone(),
    ));
    let follower = tokio::spawn(table.clone().follow(routes));
    let shared = Arc::new(Shared {
        routes: table,
        backends: forward::backend_pool(&config),
        upstreams: h1::Upstreams::new(config.connect_timeout, config.pool_idle_timeout),
        observer: Arc::new(Observer {
            metrics: config.metrics.clone(),
            sink: config.access_log.clone(),
        }),
        local_port: http::HeaderValue::from(local.port()),
        tunnels_stop,
        config,
    });

    let mut builder = auto::Builder::new(TokioExecutor::new());
    let mut http1 = builder.http1();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(shared.config.header_read_timeout)
        .max_buf_size(shared.config.max_header_bytes.max(8192));
    // hyper's own limit is the same 100 headers; left unset, hyper parses into arrays it does not have to fill
    // first (set, it initialises room for every allowed header at each request head).
    if shared.config.max_header_count != HYPER_MAX_HEADERS {
        http1.max_headers(shared.config.max_header_count);
    }
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(shared.config.max_header_bytes).unwrap_or(u32::MAX));
    let (stop_engine, engine_stop) = watch::channel(false);
    let mut clients = Clients {
        shared: shared.clone(),
        builder: Arc::new(builder),
        graceful: GracefulShutdown::new(),
        connections: JoinSet::new(),
        tls,
        stop: engine_stop,
    };
    tracing::info!(addr = %local, domain = %shared.config.domain, tls = clients.tls.is_some(), "router listening");

    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = clients.connections.join_next(), if !clients.connections.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Usually out of file descriptors: back off instead of spinning; connections that
                        // finish free some.
                        tracing::warn!(%err, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if let Err(err) = stream.set_nodelay(true) {
                    tracing::debug!(%peer, %err, "setting TCP_NODELAY failed");
                }
                clients.accept(stream, peer);
            }
        }
    }

    drop(listener);
    follower.abort();
    if let Some(task) = cert_follower {
        task.abort();
    }
    let Clients {
        graceful,
        mut connections,
        ..
    } = clients;
    let open = connections.len();
    tracing::info!(
        open,
        "router stopping: no new connections, letting in-flight requests finish"
    );
    let deadline = tokio::time::Instant::now() + shared.config.shutdown_grace;
    // The engine's connections hold a graceful-shutdown watcher (to hand it to hyper if they must): they drop
    // it when they close, which they do once idle after this.
    let _ = stop_engine.send(true);
    if tokio::time::timeout_at(deadline, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "in-flight requests outlived the shutdown grace; closing them"
        );
    }
    connections.shutdown().await;
    // Upgraded tunnels (WebSockets) are no longer hyper connections: they get what is left of the grace, then
    // are closed.
    while shared.config.traffic.total_in_flight() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tunnels.send(true);
    tracing::info!("router stopped");
    Ok(())
}
