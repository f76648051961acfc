//! The router's own HTTP/1.1 engine for plain-HTTP client connections: the common case (keep-alive requests
//! with no body or a `Content-Length` body, to an app with backends) is parsed, rewritten and forwarded in the
//! client connection's own task, over pooled plain TCP connections to the backends, with no per-request
//! allocation of headers, no channel between tasks and no buffer held by an idle connection. That is what
//! makes the router cheaper per request than nginx (see docs/benchmarks.md); hyper's server and client, used
//! for everything else, cost about a third more CPU per request.
//!
//! Everything else is handed to hyper with the bytes read so far ([`Rewind`]), and hyper serves the rest of
//! that connection exactly as it serves TLS connections: the HTTP/2 preface (h2c), HTTP/1.0, chunked or
//! `Expect: 100-continue` request bodies, upgrades (WebSockets), absolute-form targets, heads without exactly
//! one `Host`, unknown hosts, apps without instances or redirected to HTTPS (their pages), and heads httparse
//! refuses. The engine itself refuses, with a page and a closed connection, what would let a request be read
//! two ways (both `Transfer-Encoding` and `Content-Length`, conflicting or invalid lengths: 400) and heads over
//! the limits (431).
//!
//! Load balancing, ejection, retries, the access log, metrics and in-flight counts (for draining) are the same
//! as for hyper's requests (`balance`, `body::AccessLog`, `Traffic`): only the bytes move differently.

mod chunked;
mod head;
mod rewind;
mod upstream;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use http::uri::PathAndQuery;
use http::HeaderValue;
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::Watcher;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use self::chunked::ChunkedTracker;
use self::head::{Forwarding, Framing, RequestHead, RequestVerdict, ResponseHead, ResponseVerdict};
use self::rewind::Rewind;
pub(crate) use self::upstream::Upstreams;
use crate::balance;
use crate::body::AccessLog;
use crate::forward::Shared;
use crate::pages::{codes, Failure};
use crate::routes::Resolved;
use crate::server::{serve_connection, Scheme};

/// How many bytes a read asks for at least.
const READ_SIZE: usize = 8 * 1024;

/// How long a connection that refused a request keeps reading (and discarding) what the client still sends,
/// so that closing it does not reset the connection before the client read the answer.
const LINGER: Duration = Duration::from_secs(2);

/// Serves one plain-HTTP client connection until it closes, the router stops, or hyper takes it over.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    watcher: Watcher,
    mut stop: watch::Receiver<bool>,
    stream: TcpStream,
    peer: SocketAddr,
) {
    let mut conn = Conn {
        shared,
        stream,
        peer,
        requests: 0,
    };
    let timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(timer);
    if let Some(read) = conn.run(&mut stop, timer.as_mut()).await {
        let Conn {
            shared, stream, peer, ..
        } = conn;
        let io = Rewind::new(read.freeze(), stream);
        // Boxed: hyper's connection state is large, and most connections never need it.
        Box::pin(serve_connection(shared, builder, watcher, io, peer, Scheme::Http)).await;
    }
}

/// The buffers one request uses, lent from a per-thread stash so that idle connections hold none.
#[derive(Debug, Default)]
struct Buffers {
    /// Bytes from the client not yet handled (a head, body bytes, the next pipelined request).
    client: BytesMut,
    /// Bytes from the backend not yet passed on.
    backend: BytesMut,
    /// The head being written (to the backend, then to the client).
    out: Vec<u8>,
}

thread_local! {
    static SPARE: std::cell::RefCell<Vec<Buffers>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// How many spare buffer sets a thread keeps.
const MAX_SPARE: usize = 64;

impl Buffers {
    fn take() -> Buffers {
        SPARE.with_borrow_mut(Vec::pop).unwrap_or_else(|| Buffers {
            client: BytesMut::with_capacity(READ_SIZE),
            backend: BytesMut::with_capacity(READ_SIZE),
            out: Vec::with_capacity(1024),
        })
    }

    /// Puts the buffers back into the stash (when their content is no longer needed).
    fn give(mut self) {
        if self.client.capacity() > 4 * READ_SIZE || self.backend.capacity() > 4 * READ_SIZE {
            return;
        }
        self.client.clear();
        self.backend.clear();
        self.out.clear();
        SPARE.with_borrow_mut(|spare| {
            if spare.len() < MAX_SPARE {
                spare.push(self);
            }
        });
    }
}

/// How a read ended.
enum Read {
    Data,
    Closed,
    TimedOut,
}

/// Waits for `fut` until `deadline`. The timer is armed only when `fut` is not ready at once, and then moved,
/// not re-made: most reads and writes never touch it.
async fn until<F: Future>(mut timer: Pin<&mut Sleep>, deadline: Instant, fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut armed = false;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        if !armed {
            timer.as_mut().reset(deadline);
            armed = true;
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Reads more bytes from `stream` into `buf`, until `deadline`.
async fn read_into(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    timer: Pin<&mut Sleep>,
    deadline: Instant,
) -> Read {
    buf.reserve(READ_SIZE);
    match until(timer, deadline, stream.read_buf(buf)).await {
        Some(Ok(0) | Err(_)) => Read::Closed,
        Some(Ok(_)) => Read::Data,
        None => Read::TimedOut,
    }
}

/// Reads more of a backend's answer from `upstream` into `backend_buf`, until `deadline`, watching the client
/// meanwhile: `None` if the client hung up (then nobody waits for the answer). Bytes the client sends meanwhile
/// (a pipelined request) are kept in `client_buf`, up to a few reads' worth.
async fn read_answer(
    client: &TcpStream,
    client_buf: &mut BytesMut,
    upstream: &mut TcpStream,
    backend_buf: &mut BytesMut,
    mut timer: Pin<&mut Sleep>,
    deadline: Instant,
) -> Option<Read> {
    backend_buf.reserve(READ_SIZE);
    loop {
        let watch_client = client_buf.len() < 4 * READ_SIZE;
        tokio::select! {
            biased;
            read = until(timer.as_mut(), deadline, upstream.read_buf(backend_buf)) => {
                return Some(match read {
                    Some(Ok(0) | Err(_)) => Read::Closed,
                    Some(Ok(_)) => Read::Data,
                    None => Read::TimedOut,
                });
            }
            _ = client.readable(), if watch_client => {
                client_buf.reserve(READ_SIZE);
                match client.try_read_buf(client_buf) {
                    Ok(0) => return None,
                    Ok(_) => {}
                    Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => return None,
                }
            }
        }
    }
}

/// Writes all of `bytes` to `stream`, until `deadline`. False if it could not.
async fn write_all(stream: &mut TcpStream, bytes: &[u8], timer: Pin<&mut Sleep>, deadline: Instant) -> bool {
    matches!(
        until(timer, deadline, stream.write_all(bytes)).await,
        Some(Ok(()))
    )
}

/// What became of one request.
enum Done {
    /// The connection may carry another request.
    KeepAlive,
    /// The connection must close (after lingering, if the client may still be sending).
    Close { linger: bool },
    /// hyper serves the connection from here, starting with these bytes.
    HandOver(BytesMut),
}

/// One client connection served by the engine.
struct Conn {
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    requests: u64,
}

impl Conn {
    /// Serves requests until the connection ends (`None`) or hyper must take over with the returned bytes.
    async fn run(
        &mut self,
        stop: &mut watch::Receiver<bool>,
        mut timer: Pin<&mut Sleep>,
    ) -> Option<BytesMut> {
        let mut bufs: Option<Buffers> = None;
        loop {
            let pending = bufs.as_ref().is_some_and(|b| !b.client.is_empty());
            if !pending {
                // Idle between requests: give the buffers back and wait for bytes without holding any.
                if let Some(spare) = bufs.take() {
                    spare.give();
                }
                let config = &self.shared.config;
                let wait = if self.requests == 0 {
                    config.header_read_timeout
                } else {
                    config.body_idle_timeout
                };
                if *stop.borrow() {
                    return None;
                }
                let deadline = Instant::now() + wait;
                tokio::select! {
                    biased;
                    _ = stop.changed() => return None,
                    ready = until(timer.as_mut(), deadline, self.stream.readable()) => {
                        if !matches!(ready, Some(Ok(()))) {
                            return None;
                        }
                    }
                }
            }
            let mut current = bufs.take().unwrap_or_else(Buffers::take);
            // Boxed: the request's state (a few KiB) exists only while a request does, not in every idle
            // connection's task.
            match Box::pin(self.request(&mut current, stop, timer.as_mut())).await {
                Done::KeepAlive => bufs = Some(current),
                Done::Close { linger } => {
                    current.give();
                    if linger {
                        self.linger(timer.as_mut()).await;
                    }
                    return None;
                }
                Done::HandOver(read) => return Some(read),
            }
            self.requests += 1;
        }
    }

    /// Reads, forwards and answers one request.
    async fn request(
        &mut self,
        bufs: &mut Buffers,
        stop: &watch::Receiver<bool>,
        mut timer: Pin<&mut Sleep>,
    ) -> Done {
        let shared = self.shared.clone();
        let config = &shared.config;
        let client_ip = self.peer.ip().to_canonical();
        let fwd = Forwarding {
            client_ip,
            peer_trusted: config.trusted_proxies.iter().any(|net| net.contains(&client_ip)),
            port: shared.local_port.as_bytes(),
            proto: Scheme::Http.as_str(),
            start_unix_ms: crate::forward::unix_ms(),
        };
        let max_bytes = config.max_header_bytes.max(READ_SIZE);
        let head_deadline = Instant::now() + config.header_read_timeout;
        let head = loop {
            if !bufs.client.is_empty() {
                match head::parse_request(&bufs.client, config.max_header_count, &fwd, &mut bufs.out) {
                    RequestVerdict::Forward(head) => break head,
                    RequestVerdict::Partial if bufs.client.len() < max_bytes => {}
                    RequestVerdict::Partial | RequestVerdict::TooManyHeaders => {
                        return self.refuse(bufs, Failure::HeadTooLarge, timer).await;
                    }
                    RequestVerdict::Malformed(why) => {
                        return self.refuse(bufs, Failure::BadHead { why }, timer).await;
                    }
                    RequestVerdict::HandOver => return Done::HandOver(std::mem::take(&mut bufs.client)),
                }
            }
            match read_into(&mut self.stream, &mut bufs.client, timer.as_mut(), head_deadline).await {
                Read::Data => {}
                Read::Closed | Read::TimedOut => return Done::Close { linger: false },
            }
        };

        // Only an app with backends is forwarded here; hyper answers everything else with its page.
        let snapshot = shared.routes.load();
        let host = std::str::from_utf8(&bufs.client[head.host.clone()]).unwrap_or("");
        let Resolved::Backends {
            app,
            route,
            backends,
            states,
            instances,
        } = snapshot.resolve(host)
        else {
            return Done::HandOver(std::mem::take(&mut bufs.client));
        };
        if route.redirect_https {
            return Done::HandOver(std::mem::take(&mut bufs.client));
        }
        let Ok(target) = PathAndQuery::try_from(&bufs.client[head.target.clone()]) else {
            return Done::HandOver(std::mem::take(&mut bufs.client));
        };
        let mut log = AccessLog::new(head.method.clone(), target, shared.observer.clone());
        log.host =
            HeaderValue::from_bytes(&bufs.client[head.host.clone()]).unwrap_or(HeaderValue::from_static(""));
        log.app = Some(app.clone());
        log.request_id = Some(head.request_id.clone());

        // The backend's head and whatever part of the body came with the client's head go out in one write.
        let buffered = usize::try_from(head.body)
            .unwrap_or(usize::MAX)
            .min(bufs.client.len() - head.len);
        bufs.out
            .extend_from_slice(&bufs.client[head.len..head.len + buffered]);
        bufs.client.advance(head.len + buffered);
        let unread_body = head.body - buffered as u64;

        let exchange = Exchange {
            head: &head,
            app: &app.name,
            first_byte_timeout: route
                .first_byte_timeout_ms
                .map_or(config.response_timeout, Duration::from_millis),
            unread_body,
        };
        let policy = &config.ejection;
        let mut index = balance::pick(states, policy);
        let mut retries: Option<std::vec::IntoIter<usize>> = None;
        // Why the last backend tried failed: the answer when none is left.
        let mut outcome;
        // Set to skip the pool once: its connection had been closed by the backend.
        let mut fresh = false;
        loop {
            let addr = backends[index].addr;
            log.backend = Some(addr);
            log.instance = Some(instances[index].clone());
            log.attempts += 1;
            let in_flight = states[index].start();
            let sent = std::time::Instant::now();
            let pooled = if fresh { None } else { shared.upstreams.take(addr) };
            fresh = false;
            let (upstream, reused) = match pooled {
                Some(stream) => (stream, true),
                None => match shared.upstreams.connect(addr).await {
                    Ok(stream) => (stream, false),
                    Err(failed) => {
                        drop(in_flight);
                        let ejected = balance::refused(states, index, policy);
                        tracing::warn!(
                            app = %app.name,
                            backend = %addr,
                            ejected_s = ejected.map(|d| d.as_secs()),
                            err = %failed.error,
                            "backend refused the connection"
                        );
                        outcome = Failure::Unreachable {
                            app: &app.name,
                            timed_out: failed.timed_out,
                        };
                        let first = index;
                        match retries
                            .get_or_insert_with(|| balance::retries(states, first))
                            .next()
                        {
                            Some(next) => {
                                index = next;
                                continue;
                            }
                            None => break,
                        }
                    }
                },
            };
            let attempt = self
                .exchange(bufs, &exchange, upstream, addr, timer.as_mut())
                .await;
            match attempt {
                Attempt::Answered {
                    head: response,
                    upstream,
                } => {
                    let upstream_time = sent.elapsed();
                    states[index].succeed(upstream_time, std::time::Instant::now());
                    log.upstream = Some(upstream_time);
                    log.status = Some(response.status);
                    let stopping = *stop.borrow();
                    let done = self
                        .respond(
                            bufs,
                            response,
                            upstream,
                            addr,
                            &app.name,
                            &mut log,
                            stopping,
                            timer.as_mut(),
                        )
                        .await;
                    drop(in_flight);
                    return done;
                }
                // A pooled connection the backend had closed, and the whole request is still at hand: the same
                // backend, on a new connection.
                Attempt::Stale if reused && unread_body == 0 => {
                    drop(in_flight);
                    log.attempts -= 1;
                    fresh = true;
                }
                Attempt::Stale | Attempt::Broken if head.repeatable() => {
                    tracing::warn!(app = %app.name, backend = %addr, "backend failed; trying another");
                    outcome = Failure::UpstreamBroken { app: &app.name };
                    let first = index;
                    match retries
                        .get_or_insert_with(|| balance::retries(states, first))
                        .next()
                    {
                        Some(next) => index = next,
                        None => break,
                    }
                }
                Attempt::Stale | Attempt::Broken => {
                    tracing::warn!(app = %app.name, backend = %addr, "backend failed");
                    return self
                        .fail(
                            bufs,
                            Failure::UpstreamBroken { app: &app.name },
                            log,
                            false,
                            timer,
                        )
                        .await;
                }
                Attempt::TimedOut => {
                    tracing::warn!(app = %app.name, backend = %addr, "backend sent no response in time");
                    return self
                        .fail(
                            bufs,
                            Failure::UpstreamTimeout { app: &app.name },
                            log,
                            false,
                            timer,
                        )
                        .await;
                }
                Attempt::ClientIdle => {
                    return self.fail(bufs, Failure::ClientIdle, log, true, timer).await;
                }
                Attempt::ClientGone => return Done::Close { linger: false },
            }
        }
        self.fail(bufs, outcome, log, false, timer).await
    }

    /// Sends the request (head, then the rest of its body from the client) on `upstream` and reads the
    /// response head.
    async fn exchange(
        &mut self,
        bufs: &mut Buffers,
        request: &Exchange<'_>,
        mut upstream: TcpStream,
        addr: SocketAddr,
        mut timer: Pin<&mut Sleep>,
    ) -> Attempt {
        let config = &self.shared.config;
        let first_byte = Instant::now() + request.first_byte_timeout;
        if !write_all(&mut upstream, &bufs.out, timer.as_mut(), first_byte).await {
            return Attempt::Stale;
        }
        let mut unread = request.unread_body;
        while unread > 0 {
            if bufs.client.is_empty() {
                let idle = Instant::now() + config.body_idle_timeout;
                match read_into(&mut self.stream, &mut bufs.client, timer.as_mut(), idle).await {
                    Read::Data => {}
                    Read::Closed => return Attempt::ClientGone,
                    Read::TimedOut => return Attempt::ClientIdle,
                }
            }
            let n = usize::try_from(unread)
                .unwrap_or(usize::MAX)
                .min(bufs.client.len());
            let idle = Instant::now() + config.body_idle_timeout;
            if !write_all(&mut upstream, &bufs.client[..n], timer.as_mut(), idle).await {
                tracing::debug!(%addr, app = request.app, "backend stopped reading the request body");
                return Attempt::Broken;
            }
            bufs.client.advance(n);
            unread -= n as u64;
        }
        let first_byte = Instant::now().max(first_byte);
        loop {
            if !bufs.backend.is_empty() {
                match head::parse_response(
                    &bufs.backend,
                    &request.head.method,
                    request.head.close,
                    &mut bufs.out,
                ) {
                    ResponseVerdict::Respond(head) => return Attempt::Answered { head, upstream },
                    ResponseVerdict::Informational(len) => {
                        bufs.backend.advance(len);
                        continue;
                    }
                    ResponseVerdict::Invalid(why) => {
                        tracing::warn!(%addr, app = request.app, why, "backend sent an invalid response");
                        bufs.backend.clear();
                        return Attempt::Broken;
                    }
                    ResponseVerdict::Partial => {}
                }
            }
            let nothing_yet = bufs.backend.is_empty();
            let read = read_answer(
                &self.stream,
                &mut bufs.client,
                &mut upstream,
                &mut bufs.backend,
                timer.as_mut(),
                first_byte,
            )
            .await;
            let Some(read) = read else {
                return Attempt::ClientGone;
            };
            match read {
                Read::Data => {}
                Read::Closed if nothing_yet => return Attempt::Stale,
                Read::Closed => {
                    bufs.backend.clear();
                    return Attempt::Broken;
                }
                Read::TimedOut => {
                    bufs.backend.clear();
                    return Attempt::TimedOut;
                }
            }
        }
    }

    /// Passes the response on: its head (in `bufs.out`) and body, then gives the backend connection back when
    /// it can carry another request.
    #[allow(clippy::too_many_arguments)]
    async fn respond(
        &mut self,
        bufs: &mut Buffers,
        head: ResponseHead,
        mut upstream: TcpStream,
        addr: SocketAddr,
        app: &str,
        log: &mut AccessLog,
        stopping: bool,
        mut timer: Pin<&mut Sleep>,
    ) -> Done {
        let idle_timeout = self.shared.config.body_idle_timeout;
        bufs.backend.advance(head.len);
        let mut body = BodyFraming::new(head.framing);
        // The head and the body bytes that came with it go out in one write.
        let n = match body.take(&bufs.backend) {
            Ok(n) => n,
            Err(err) => {
                // Nothing went out yet: the client gets a clear 502 instead.
                tracing::warn!(%addr, %err, "backend sent a broken chunked body");
                let failure = Failure::UpstreamBroken { app };
                log.status = Some(failure.status());
                log.error = Some(failure.code());
                return match self.page(bufs, failure, false, timer).await {
                    true => Done::KeepAlive,
                    false => Done::Close { linger: false },
                };
            }
        };
        bufs.out.extend_from_slice(&bufs.backend[..n]);
        bufs.backend.advance(n);
        log.bytes += n as u64;
        let deadline = Instant::now() + idle_timeout;
        if !write_all(&mut self.stream, &bufs.out, timer.as_mut(), deadline).await {
            log.error = Some(codes::CLIENT_INTERRUPTED);
            return Done::Close { linger: false };
        }
        let mut done = body.complete();
        while !done {
            let deadline = Instant::now() + idle_timeout;
            match read_into(&mut upstream, &mut bufs.backend, timer.as_mut(), deadline).await {
                Read::Data => {}
                Read::Closed if head.framing == Framing::UntilClose => {
                    done = true;
                    continue;
                }
                Read::Closed => {
                    log.error = Some(codes::CONNECTION_CLOSED);
                    return Done::Close { linger: false };
                }
                Read::TimedOut => {
                    log.error = Some(codes::IDLE_CONNECTION);
                    return Done::Close { linger: false };
                }
            }
            let n = match body.take(&bufs.backend) {
                Ok(n) => n,
                Err(err) => {
                    tracing::warn!(%addr, %err, "backend sent a broken chunked body");
                    log.error = Some(codes::CONNECTION_CLOSED);
                    return Done::Close { linger: false };
                }
            };
            let deadline = Instant::now() + idle_timeout;
            if !write_all(&mut self.stream, &bufs.backend[..n], timer.as_mut(), deadline).await {
                log.error = Some(codes::CLIENT_INTERRUPTED);
                return Done::Close { linger: false };
            }
            bufs.backend.advance(n);
            log.bytes += n as u64;
            done = body.complete();
        }
        log.complete = true;
        // Bytes after the response mean the backend is confused: that connection carries nothing more.
        if head.reusable && bufs.backend.is_empty() {
            self.shared.upstreams.give(addr, upstream);
        }
        bufs.backend.clear();
        if head.close || stopping {
            Done::Close { linger: false }
        } else {
            Done::KeepAlive
        }
    }

    /// Answers a request with the router's page for `failure`. `close`: the request's body was not read to its
    /// end, so the connection cannot carry another request.
    async fn fail(
        &mut self,
        bufs: &mut Buffers,
        failure: Failure<'_>,
        mut log: AccessLog,
        close: bool,
        timer: Pin<&mut Sleep>,
    ) -> Done {
        log.status = Some(failure.status());
        log.error = Some(failure.code());
        let written = self.page(bufs, failure, close, timer).await;
        if written {
            log.complete = true;
        }
        if close || !written {
            Done::Close { linger: close }
        } else {
            Done::KeepAlive
        }
    }

    /// Refuses a request head: a page, an access-log line, and the connection closes.
    async fn refuse(&mut self, bufs: &mut Buffers, failure: Failure<'_>, timer: Pin<&mut Sleep>) -> Done {
        tracing::debug!(peer = %self.peer, code = failure.code(), "refused a request head");
        let mut log = AccessLog::new(
            http::Method::GET,
            PathAndQuery::from_static("/"),
            self.shared.observer.clone(),
        );
        log.status = Some(failure.status());
        log.error = Some(failure.code());
        if self.page(bufs, failure, true, timer).await {
            log.complete = true;
        }
        bufs.client.clear();
        Done::Close { linger: true }
    }

    /// Writes the page for `failure`. False if the client could not take it.
    async fn page(
        &mut self,
        bufs: &mut Buffers,
        failure: Failure<'_>,
        close: bool,
        timer: Pin<&mut Sleep>,
    ) -> bool {
        let page = failure.page(&self.shared.config.domain);
        head::page_head(&mut bufs.out, failure.status(), page.len(), close);
        bufs.out.extend_from_slice(page.as_bytes());
        let deadline = Instant::now() + self.shared.config.body_idle_timeout;
        write_all(&mut self.stream, &bufs.out, timer, deadline).await
    }

    /// Closes the sending side and reads what the client still sends for a while, so that the client reads
    /// the answer before the connection is gone (closing with unread bytes would reset it).
    async fn linger(&mut self, mut timer: Pin<&mut Sleep>) {
        if self.stream.shutdown().await.is_err() {
            return;
        }
        let deadline = Instant::now() + LINGER;
        // On the heap: an array here would make every connection's task (this future's state) 4 KiB larger.
        let mut sink = vec![0u8; 4096];
        while let Some(Ok(n)) = until(timer.as_mut(), deadline, self.stream.read(&mut sink)).await {
            if n == 0 {
                return;
            }
        }
    }
}

/// Which bytes from the backend belong to the response body being passed on.
struct BodyFraming {
    framing: Framing,
    /// For `Framing::Length`: bytes still to come.
    left: u64,
    chunked: ChunkedTracker,
}

impl BodyFraming {
    fn new(framing: Framing) -> Self {
        let left = match framing {
            Framing::Length(n) => n,
            _ => 0,
        };
        Self {
            framing,
            left,
            chunked: ChunkedTracker::new(),
        }
    }

    /// How many bytes at the start of `available` belong to the body, counted as passed on.
    fn take(&mut self, available: &[u8]) -> Result<usize, chunked::BadChunk> {
        match self.framing {
            Framing::Empty => Ok(0),
            Framing::Length(_) => {
                let n = usize::try_from(self.left)
                    .unwrap_or(usize::MAX)
                    .min(available.len());
                self.left -= n as u64;
                Ok(n)
            }
            Framing::Chunked => self.chunked.advance(available),
            Framing::UntilClose => Ok(available.len()),
        }
    }

    /// Whether the whole body was passed on (a body that runs until close never knows).
    fn complete(&self) -> bool {
        match self.framing {
            Framing::Empty => true,
            Framing::Length(_) => self.left == 0,
            Framing::Chunked => self.chunked.is_done(),
            Framing::UntilClose => false,
        }
    }
}

/// What one attempt at a backend needs to know about the request.
struct Exchange<'a> {
    head: &'a RequestHead,
    app: &'a str,
    first_byte_timeout: Duration,
    /// Body bytes still to be read from the client (the rest came with the head and is in the backend's head
    /// buffer).
    unread_body: u64,
}

/// How one attempt at a backend ended.
enum Attempt {
    /// The backend answered; its head for the client is in `bufs.out`.
    Answered { head: ResponseHead, upstream: TcpStream },
    /// The connection failed before any byte of an answer arrived (a pooled connection the backend had
    /// closed, or a backend that died).
    Stale,
    /// The backend failed after it started answering, or stopped reading the request body.
    Broken,
    /// No response head within the first-byte timeout.
    TimedOut,
    /// The client stopped sending its request body.
    ClientIdle,
    /// The client went away while sending its request body.
    ClientGone,
}
