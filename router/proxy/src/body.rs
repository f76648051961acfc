//! Body wrappers: [`ReclaimBody`] lets a request body that was never read go to another backend, and
//! [`LoggedBody`] writes the access-log line when the response body is finished (or dropped).

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::sync::oneshot;

use crate::balance::InFlight;

/// A client's request body on its way to one backend. If the attempt is dropped before the body was ever
/// polled (the connection failed), the body is sent back through `reclaim` so the next backend can get it.
#[derive(Debug)]
pub(crate) struct ReclaimBody {
    inner: Option<Incoming>,
    polled: bool,
    reclaim: Option<oneshot::Sender<Incoming>>,
}

impl ReclaimBody {
    /// `inner` is `None` for a request without a body.
    pub(crate) fn new(inner: Option<Incoming>, reclaim: Option<oneshot::Sender<Incoming>>) -> Self {
        Self {
            inner,
            polled: false,
            reclaim,
        }
    }
}

impl Body for ReclaimBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        self.polled = true;
        match self.inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl Drop for ReclaimBody {
    fn drop(&mut self) {
        if self.polled {
            return;
        }
        if let (Some(inner), Some(reclaim)) = (self.inner.take(), self.reclaim.take()) {
            let _ = reclaim.send(inner);
        }
    }
}

/// Everything the access-log line says about one request.
#[derive(Debug)]
pub(crate) struct AccessLog {
    pub start: Instant,
    pub method: Method,
    /// The path only: query strings may carry secrets.
    pub path: String,
    pub host: String,
    pub status: StatusCode,
    pub app: Option<String>,
    pub backend: Option<SocketAddr>,
    pub request_id: Option<HeaderValue>,
    /// The failure code when the router answered itself.
    pub error: Option<&'static str>,
    /// Time until the backend's response head arrived.
    pub upstream: Option<Duration>,
    /// How many backends were tried.
    pub attempts: u32,
}

impl AccessLog {
    fn emit(&self, bytes: u64, complete: bool) {
        let request_id = self
            .request_id
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        let backend = self.backend.map(|b| b.to_string());
        tracing::info!(
            target: "berth::access",
            method = %self.method,
            host = %self.host,
            path = %self.path,
            status = self.status.as_u16(),
            app = self.app.as_deref().unwrap_or("-"),
            backend = backend.as_deref().unwrap_or("-"),
            attempts = self.attempts,
            upstream_ms = self.upstream.map(|d| d.as_secs_f64() * 1e3),
            duration_ms = self.start.elapsed().as_secs_f64() * 1e3,
            bytes,
            complete,
            error = self.error.unwrap_or("-"),
            request_id,
            "request"
        );
    }
}

/// A backend's streamed body, or a page the router wrote.
pub(crate) type Inner = Either<Incoming, Full<Bytes>>;

/// A response body that logs its request once it has been sent or abandoned.
#[derive(Debug)]
pub(crate) struct LoggedBody {
    inner: Inner,
    log: AccessLog,
    bytes: u64,
    complete: bool,
    /// Keeps the backend's in-flight count raised until the response was sent or abandoned.
    _in_flight: Option<InFlight>,
}

impl LoggedBody {
    pub(crate) fn new(inner: Inner, log: AccessLog, in_flight: Option<InFlight>) -> Self {
        Self {
            inner,
            log,
            bytes: 0,
            complete: false,
            _in_flight: in_flight,
        }
    }
}

impl Body for LoggedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let polled = match &mut this.inner {
            Either::Left(incoming) => Pin::new(incoming).poll_frame(cx),
            Either::Right(full) => Pin::new(full).poll_frame(cx).map_err(|never| match never {}),
        };
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                this.bytes += frame.data_ref().map_or(0, |d| d.len() as u64);
            }
            Poll::Ready(None) => this.complete = true,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        // hyper may never poll a body that is empty from the start (a 204, a HEAD answer).
        let complete = self.complete || self.inner.is_end_stream();
        self.log.emit(self.bytes, complete);
    }
}
