//! Keep-alive HTTP/1.1 connections to backends, pooled per backend address: one
//! `hyper::client::conn::http1::SendRequest` per connection, taken out of the pool for one request and put back
//! once that request's response body was read to its end ([`Pooled::release`]). Compared with hyper-util's
//! legacy `Client` this saves, per request, the pool's key hashing and checkout future, and the task the
//! legacy client spawns to wait for the connection to become ready again.
//!
//! A pooled connection the backend closed meanwhile is found out when the request comes back unsent: it is
//! then sent on a new connection, as hyper-util does. Idle connections are closed after the idle timeout.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{Builder, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::body::ReclaimBody;

type Sender = SendRequest<ReclaimBody>;

/// Why a request got no response from a backend.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    /// No connection could be made (refused, unreachable, timed out): nothing was sent.
    #[error("connecting to the backend failed")]
    Connect(#[source] std::io::Error),
    /// The connection failed while the request was sent or the response awaited.
    #[error("the backend connection failed")]
    Request(#[source] hyper::Error),
}

impl SendError {
    /// Whether no connection was made, so the request was never sent.
    pub(crate) fn is_connect(&self) -> bool {
        matches!(self, SendError::Connect(_))
    }
}

/// The pools of all backends.
#[derive(Debug)]
pub(crate) struct BackendPool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    idle: Mutex<HashMap<SocketAddr, Vec<Idle>>>,
    connect_timeout: Duration,
    idle_timeout: Duration,
}

#[derive(Debug)]
struct Idle {
    sender: Sender,
    since: Instant,
}

/// A connection lent to one request. [`Pooled::release`] gives it back once the response was read to its end;
/// dropped without that, the connection closes when its exchange is over.
#[derive(Debug)]
pub(crate) struct Pooled {
    sender: Option<Sender>,
    addr: SocketAddr,
    pool: Weak<Inner>,
}

impl Pooled {
    /// Puts the connection back into its backend's pool (unless it closed or the pool is gone).
    pub(crate) fn release(&mut self) {
        let (Some(sender), Some(pool)) = (self.sender.take(), self.pool.upgrade()) else {
            return;
        };
        if sender.is_closed() {
            return;
        }
        let idle = Idle {
            sender,
            since: Instant::now(),
        };
        lock(&pool.idle).entry(self.addr).or_default().push(idle);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The map stays consistent even if a holder panicked: every change is a single push or pop.
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl BackendPool {
    /// Must be called within a tokio runtime: it starts the task that closes idle connections after
    /// `idle_timeout` (the task ends when the pool is dropped).
    pub(crate) fn new(connect_timeout: Duration, idle_timeout: Duration) -> Self {
        let inner = Arc::new(Inner {
            idle: Mutex::new(HashMap::new()),
            connect_timeout,
            idle_timeout,
        });
        tokio::spawn(reap(Arc::downgrade(&inner), idle_timeout));
        Self { inner }
    }

    /// Sends `req` (its URI in origin form) to `addr` on an idle pooled connection, or a new one.
    pub(crate) async fn send(
        &self,
        addr: SocketAddr,
        mut req: Request<ReclaimBody>,
    ) -> Result<(Response<Incoming>, Pooled), SendError> {
        loop {
            let (mut sender, reused) = match self.checkout(addr).await {
                Some(sender) => (sender, true),
                None => (self.connect(addr).await?, false),
            };
            match sender.try_send_request(req).await {
                Ok(response) => {
                    let pooled = Pooled {
                        sender: Some(sender),
                        addr,
                        pool: Arc::downgrade(&self.inner),
                    };
                    return Ok((response, pooled));
                }
                Err(mut err) => match err.take_message() {
                    // A reused connection closed before the request went out: try a new one.
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(SendError::Request(err.into_error())),
                },
            }
        }
    }

    /// The most recently used idle connection to `addr` that is still open, once it is ready for a request.
    async fn checkout(&self, addr: SocketAddr) -> Option<Sender> {
        loop {
            let idle = lock(&self.inner.idle).get_mut(&addr)?.pop()?;
            if idle.since.elapsed() >= self.inner.idle_timeout {
                continue;
            }
            let mut sender = idle.sender;
            if sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    async fn connect(&self, addr: SocketAddr) -> Result<Sender, SendError> {
        let stream = match tokio::time::timeout(self.inner.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(err)) => return Err(SendError::Connect(err)),
            Err(_elapsed) => {
                return Err(SendError::Connect(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no connection within {:?}", self.inner.connect_timeout),
                )))
            }
        };
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(%addr, %err, "setting TCP_NODELAY on a backend connection failed");
        }
        let (sender, connection) = Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(SendError::Request)?;
        tokio::spawn(async move {
            if let Err(err) = connection.with_upgrades().await {
                tracing::debug!(%addr, %err, "backend connection ended with an error");
            }
        });
        Ok(sender)
    }
}

/// Closes connections idle for longer than `idle_timeout` (and forgets closed ones), until the pool is gone.
async fn reap(pool: Weak<Inner>, idle_timeout: Duration) {
    let period = (idle_timeout / 2).clamp(Duration::from_millis(10), Duration::from_secs(5));
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(pool) = pool.upgrade() else { return };
        let now = Instant::now();
        lock(&pool.idle).retain(|_, idle| {
            idle.retain(|i| !i.sender.is_closed() && now.duration_since(i.since) < idle_timeout);
            !idle.is_empty()
        });
    }
}
