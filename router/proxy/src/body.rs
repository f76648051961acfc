//! Body wrappers: [`ReclaimBody`] lets a request body that was never read go to another backend, and
//! [`LoggedBody`] counts what was sent and finishes the access-log record. Both end a body that stays idle for
//! longer than the configured rolling timeout ([`BodyIdle`]). [`AccessLog`] writes its line when dropped, so a
//! request whose client went away is logged too.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::PathAndQuery;
use http::{HeaderValue, Method, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::sync::oneshot;
use tokio::time::Sleep;

use crate::balance::InFlight;
use crate::observe::{AccessRecord, AppHandle, Observer};
use crate::pages::codes;
use crate::pool::Pooled;

/// The error type of the bodies the router passes on.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A body sent no bytes for the rolling idle timeout.
#[derive(Debug, thiserror::Error)]
#[error("body idle for {0:?}")]
pub(crate) struct BodyIdle(pub Duration);

/// A rolling deadline, armed only once a body actually has to wait (most bodies never do, and then no timer
/// is made).
#[derive(Debug)]
struct IdleTimer {
    timeout: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl IdleTimer {
    fn new(timeout: Duration) -> Self {
        Self { timeout, sleep: None }
    }

    /// Call when the body produced something: the deadline moves.
    fn progress(&mut self) {
        if let Some(sleep) = self.sleep.as_mut() {
            sleep.as_mut().reset(tokio::time::Instant::now() + self.timeout);
        }
    }

    /// Call when the body is pending: true once the deadline passed.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let timeout = self.timeout;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        sleep.as_mut().poll(cx).is_ready()
    }
}

/// A client's request body on its way to one backend. If the attempt is dropped before the body was ever
/// polled (the connection failed), the body is sent back through `reclaim` so the next backend can get it.
#[derive(Debug)]
pub(crate) struct ReclaimBody {
    inner: Option<Incoming>,
    polled: bool,
    reclaim: Option<oneshot::Sender<Incoming>>,
    idle: IdleTimer,
}

impl ReclaimBody {
    /// `inner` is `None` for a request without a body.
    pub(crate) fn new(
        inner: Option<Incoming>,
        reclaim: Option<oneshot::Sender<Incoming>>,
        idle_timeout: Duration,
    ) -> Self {
        Self {
            inner,
            polled: false,
            reclaim,
            idle: IdleTimer::new(idle_timeout),
        }
    }
}

impl Body for ReclaimBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        this.polled = true;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Pending if this.idle.expired(cx) => {
                Poll::Ready(Some(Err(BodyIdle(this.idle.timeout).into())))
            }
            Poll::Pending => Poll::Pending,
            Poll::Ready(frame) => {
                this.idle.progress();
                Poll::Ready(frame.map(|f| f.map_err(BoxError::from)))
            }
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

/// Everything the access-log line says about one request. The line is written when this is dropped: after the
/// response body was sent or abandoned, or when the client went away before any response.
#[derive(Debug)]
pub(crate) struct AccessLog {
    pub start: Instant,
    pub method: Method,
    /// The request target; only its path is logged (query strings may carry secrets). Kept as the parsed
    /// target (a reference-counted buffer), so that a request copies no string for its log line.
    pub target: PathAndQuery,
    /// The host the request named; empty until known.
    pub host: HeaderValue,
    /// `None` until a response (the backend's or the router's own) was made.
    pub status: Option<StatusCode>,
    pub app: Option<Arc<AppHandle>>,
    pub backend: Option<SocketAddr>,
    /// The instance name of `backend` (`web.1`).
    pub instance: Option<Arc<str>>,
    pub request_id: Option<HeaderValue>,
    /// The failure code (see `pages`) when the request did not end normally.
    pub error: Option<&'static str>,
    /// Time until the backend's response head arrived.
    pub upstream: Option<Duration>,
    /// How many backends were tried.
    pub attempts: u32,
    /// Response body bytes sent.
    pub bytes: u64,
    /// Whether the whole response body was sent.
    pub complete: bool,
    observer: Arc<Observer>,
}

impl AccessLog {
    pub(crate) fn new(method: Method, target: PathAndQuery, observer: Arc<Observer>) -> Self {
        Self {
            start: Instant::now(),
            method,
            target,
            host: HeaderValue::from_static(""),
            status: None,
            app: None,
            backend: None,
            instance: None,
            request_id: None,
            error: None,
            upstream: None,
            attempts: 0,
            bytes: 0,
            complete: false,
            observer,
        }
    }

    /// The host as text (it was checked to be text when set).
    pub(crate) fn host(&self) -> &str {
        self.host.to_str().unwrap_or("")
    }
}

/// Formats an optional value as itself or `-`, only when a log line is actually written.
struct OrDash<T>(Option<T>);

impl<T: std::fmt::Display> std::fmt::Display for OrDash<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(value) => value.fmt(f),
            None => f.write_str("-"),
        }
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        if self.status.is_none() && self.error.is_none() {
            self.error = Some(codes::CLIENT_INTERRUPTED);
        }
        // 499: the client closed the connection before a response (nginx's convention).
        let status = self.status.map_or(499, |s| s.as_u16());
        let total = self.start.elapsed();
        let request_id = self.request_id.as_ref().and_then(|v| v.to_str().ok());
        tracing::info!(
            target: "berth::access",
            method = %self.method,
            host = %self.host(),
            path = %self.target.path(),
            status,
            app = self.app.as_ref().map_or("-", |a| &*a.name),
            instance = self.instance.as_deref().unwrap_or("-"),
            backend = %OrDash(self.backend),
            attempts = self.attempts,
            upstream_ms = self.upstream.map(|d| d.as_secs_f64() * 1e3),
            duration_ms = total.as_secs_f64() * 1e3,
            bytes = self.bytes,
            complete = self.complete,
            error = self.error.unwrap_or("-"),
            request_id = request_id.unwrap_or("-"),
            "request"
        );
        let observer = self.observer.clone();
        let app = self.app.take();
        let record = || AccessRecord {
            app: app.as_ref().map(|a| a.name.to_string()),
            instance: self.instance.as_deref().map(str::to_owned),
            backend: self.backend,
            method: self.method.to_string(),
            host: self.host().to_owned(),
            path: self.target.path().to_owned(),
            status,
            bytes: self.bytes,
            upstream: self.upstream,
            total,
            request_id: request_id.map(str::to_owned),
            error: self.error,
        };
        observer.finished(record, app.as_deref(), status, total);
    }
}

/// A backend's streamed body, or a page the router wrote.
pub(crate) type Inner = Either<Incoming, Full<Bytes>>;

/// A response body that counts its bytes into its request's access log.
#[derive(Debug)]
pub(crate) struct LoggedBody {
    inner: Inner,
    log: AccessLog,
    idle: IdleTimer,
    /// Keeps the backend's in-flight count raised until the response was sent or abandoned.
    _in_flight: Option<InFlight>,
    /// The backend connection the response came on, given back to its pool once the body was read to the end.
    pooled: Option<Pooled>,
}

impl LoggedBody {
    pub(crate) fn new(
        inner: Inner,
        log: AccessLog,
        in_flight: Option<InFlight>,
        idle_timeout: Duration,
    ) -> Self {
        Self {
            inner,
            log,
            idle: IdleTimer::new(idle_timeout),
            _in_flight: in_flight,
            pooled: None,
        }
    }

    /// Gives `pooled` back to its pool when this body was read to its end.
    pub(crate) fn with_pooled(mut self, pooled: Pooled) -> Self {
        self.pooled = Some(pooled);
        self
    }

    fn release(&mut self) {
        if let Some(pooled) = self.pooled.as_mut() {
            pooled.release();
        }
    }
}

impl Body for LoggedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = match &mut this.inner {
            Either::Left(incoming) => Pin::new(incoming).poll_frame(cx),
            Either::Right(full) => Pin::new(full).poll_frame(cx).map_err(|never| match never {}),
        };
        match polled {
            Poll::Pending if this.idle.expired(cx) => {
                this.log.error = Some(codes::IDLE_CONNECTION);
                Poll::Ready(Some(Err(BodyIdle(this.idle.timeout).into())))
            }
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(frame))) => {
                this.idle.progress();
                this.log.bytes += frame.data_ref().map_or(0, |d| d.len() as u64);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => {
                this.log.error = Some(codes::CONNECTION_CLOSED);
                Poll::Ready(Some(Err(err.into())))
            }
            Poll::Ready(None) => {
                this.log.complete = true;
                this.release();
                Poll::Ready(None)
            }
        }
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
        if self.inner.is_end_stream() {
            self.log.complete = true;
            self.release();
        }
        if !self.log.complete && self.log.error.is_none() {
            self.log.error = Some(codes::CLIENT_INTERRUPTED);
        }
    }
}
