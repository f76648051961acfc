//! The accept loop: one hyper connection task per client (HTTP/1.1 with keep-alive, or HTTP/2 with prior
//! knowledge), and a graceful stop: stop accepting, let in-flight requests finish for a bounded time, then
//! close whatever is left.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use route_table::RouteTable;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::forward::{self, Shared};
use crate::routes::Routes;
use crate::tls::Terminator;
use crate::{ProxyConfig, ProxyError};

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
/// on the same route channel, with the same `shutdown`; each listener keeps its own backend pool.
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
    let table = Arc::new(Routes::new(routes.borrow().clone()));
    let follower = tokio::spawn(table.clone().follow(routes));
    let shared = Arc::new(Shared {
        routes: table,
        client: forward::backend_client(&config),
        local_port: local.port(),
        tls: tls.is_some(),
        config,
    });

    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.config.header_read_timeout);
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    tracing::info!(addr = %local, domain = %shared.config.domain, tls = shared.tls, "router listening");

    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
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
                let shared = shared.clone();
                let service = service_fn(move |req| forward::handle(shared.clone(), peer, req));
                if let Some(tls) = &tls {
                    // The handshake runs in the connection's task, so a slow client never holds up accepting.
                    let (tls, builder, watcher) = (tls.clone(), builder.clone(), graceful.watcher());
                    connections.spawn(async move {
                        let Some(stream) = tls.accept(stream, peer).await else { return };
                        let connection = builder.serve_connection(TokioIo::new(stream), service);
                        if let Err(err) = watcher.watch(connection.into_owned()).await {
                            tracing::debug!(%peer, %err, "client connection ended with an error");
                        }
                    });
                    continue;
                }
                let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                let connection = graceful.watch(connection);
                connections.spawn(async move {
                    if let Err(err) = connection.await {
                        tracing::debug!(%peer, %err, "client connection ended with an error");
                    }
                });
            }
        }
    }

    drop(listener);
    follower.abort();
    if let Some(task) = cert_follower {
        task.abort();
    }
    let open = connections.len();
    tracing::info!(
        open,
        "router stopping: no new connections, letting in-flight requests finish"
    );
    if tokio::time::timeout(shared.config.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "in-flight requests outlived the shutdown grace; closing them"
        );
    }
    connections.shutdown().await;
    tracing::info!("router stopped");
    Ok(())
}
