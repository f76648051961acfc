//! The engine's keep-alive connections to backends: plain TCP streams pooled per backend address, lent to one
//! request at a time and given back once its response was read to the end. A pooled connection the backend
//! closed while it was idle is noticed when it is taken (its socket reads end-of-file or data nobody asked
//! for) and dropped without a system call in the common case (tokio knows the socket was not readable).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

/// Idle connections to every backend.
#[derive(Debug)]
pub(crate) struct Upstreams {
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
    stream: TcpStream,
    since: Instant,
}

/// Why no connection to a backend could be made.
#[derive(Debug)]
pub(crate) struct ConnectFailed {
    pub error: std::io::Error,
    pub timed_out: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every change is a single push, pop or retain: a panic while holding it leaves the map usable.
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether a pooled connection can still carry a request: nothing arrived on it while it was idle (no
/// end-of-file, no stray bytes).
fn still_open(stream: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(stream.try_read(&mut probe), Err(err) if err.kind() == std::io::ErrorKind::WouldBlock)
}

impl Upstreams {
    /// Must be called within a tokio runtime: it starts the task that closes connections idle for longer than
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

    /// The most recently used idle connection to `addr` that is still open.
    pub(crate) fn take(&self, addr: SocketAddr) -> Option<TcpStream> {
        loop {
            let idle = lock(&self.inner.idle).get_mut(&addr)?.pop()?;
            if idle.since.elapsed() < self.inner.idle_timeout && still_open(&idle.stream) {
                return Some(idle.stream);
            }
        }
    }

    /// Gives a connection whose last response was read to its end back to the pool.
    pub(crate) fn give(&self, addr: SocketAddr, stream: TcpStream) {
        let idle = Idle {
            stream,
            since: Instant::now(),
        };
        lock(&self.inner.idle).entry(addr).or_default().push(idle);
    }

    /// A new connection to `addr`, within the connect timeout.
    pub(crate) async fn connect(&self, addr: SocketAddr) -> Result<TcpStream, ConnectFailed> {
        let timeout = self.inner.connect_timeout;
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                let timed_out = error.kind() == std::io::ErrorKind::TimedOut;
                return Err(ConnectFailed { error, timed_out });
            }
            Err(_elapsed) => {
                return Err(ConnectFailed {
                    error: std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no connection within {timeout:?}"),
                    ),
                    timed_out: true,
                })
            }
        };
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(%addr, %err, "setting TCP_NODELAY on a backend connection failed");
        }
        Ok(stream)
    }
}

/// Closes connections idle for longer than `idle_timeout`, until the pool is gone.
async fn reap(pool: Weak<Inner>, idle_timeout: Duration) {
    let period = (idle_timeout / 2).clamp(Duration::from_millis(10), Duration::from_secs(5));
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(pool) = pool.upgrade() else { return };
        let now = Instant::now();
        lock(&pool.idle).retain(|_, idle| {
            idle.retain(|i| now.duration_since(i.since) < idle_timeout);
            !idle.is_empty()
        });
    }
}
