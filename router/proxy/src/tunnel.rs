//! Upgraded connections (WebSocket and other `Upgrade:` protocols): once the backend answered 101, the client's
//! and the backend's connections are joined and bytes copied both ways until either side closes or nothing
//! moved for the tunnel idle timeout. The tunnel counts as in flight to its backend while it is open.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::balance::InFlight;

/// The two connections a tunnel joins, and whose they are.
pub(crate) struct Ends {
    pub client: OnUpgrade,
    pub backend: OnUpgrade,
    pub backend_addr: SocketAddr,
    pub app: String,
}

/// Joins the two sides once both upgrades completed; returns when the tunnel closed, went idle, or `stop`
/// became true.
pub(crate) async fn run(
    ends: Ends,
    idle_timeout: Duration,
    in_flight: InFlight,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let Ends {
        client,
        backend,
        backend_addr,
        app,
    } = ends;
    let (client, upstream) = match tokio::try_join!(client, backend) {
        Ok(both) => both,
        Err(err) => {
            tracing::warn!(%app, backend = %backend_addr, %err, "upgrade failed; no tunnel");
            return;
        }
    };
    let start = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let mut client = Watched::new(TokioIo::new(client), start, last.clone());
    let mut upstream = Watched::new(TokioIo::new(upstream), start, last.clone());
    let copy = tokio::io::copy_bidirectional(&mut client, &mut upstream);
    tokio::pin!(copy);
    let reason = loop {
        let deadline = start + Duration::from_millis(last.load(Ordering::Relaxed)) + idle_timeout;
        tokio::select! {
            result = &mut copy => break match result {
                Ok(_) => "closed",
                Err(_) => "connection error",
            },
            _ = stop.wait_for(|stop| *stop) => break "router stopping",
            () = tokio::time::sleep_until(deadline) => {
                let idle_since = start + Duration::from_millis(last.load(Ordering::Relaxed));
                if Instant::now() >= idle_since + idle_timeout {
                    break "idle timeout";
                }
            }
        }
    };
    tracing::info!(
        target: "berth::access",
        %app,
        backend = %backend_addr,
        duration_ms = start.elapsed().as_secs_f64() * 1e3,
        reason,
        "tunnel closed"
    );
    drop(in_flight);
}

/// An IO that records when bytes last moved through it (milliseconds since `start`).
struct Watched<T> {
    io: T,
    start: Instant,
    last: Arc<AtomicU64>,
}

impl<T> Watched<T> {
    fn new(io: T, start: Instant, last: Arc<AtomicU64>) -> Self {
        Self { io, start, last }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.fetch_max(ms, Ordering::Relaxed);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
