//! Forwarding one request: find the route, pick a backend (power of two choices, see `balance`), send the
//! request over a pooled keep-alive connection, and stream the answer back. A backend that refuses the
//! connection is ejected for a while and the next one tried, but only while the request body was never read,
//! so nothing is sent twice; a request without a body and with an idempotent method is also retried when a
//! backend failed without answering.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::PathAndQuery;
use http::{header, HeaderValue, Request, Response, StatusCode, Uri, Version};
use http_body_util::{Either, Full};
use hyper::body::{Body, Incoming};
use hyper::upgrade::OnUpgrade;
use tokio::sync::oneshot;

use crate::balance::{self, InFlight};
use crate::body::{AccessLog, BodyIdle, LoggedBody, ReclaimBody};
use crate::headers::{self, Forwarded};
use crate::observe::Observer;
use crate::pages::Failure;
use crate::pool::{BackendPool, Pooled, SendError};
use crate::routes::{Resolved, Routes};
use crate::server::Scheme;
use crate::tls;
use crate::tunnel;
use crate::ProxyConfig;

/// What every connection's requests share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub routes: Arc<Routes>,
    pub backends: BackendPool,
    /// The plain TCP keep-alive connections of the HTTP/1.1 engine (`h1`).
    pub upstreams: crate::h1::Upstreams,
    pub observer: Arc<Observer>,
    pub config: ProxyConfig,
    /// The router's port, for `X-Forwarded-Port` (made once, cloned per request without a copy).
    pub local_port: HeaderValue,
    /// Becomes true when open tunnels must close (the router stops).
    pub tunnels_stop: tokio::sync::watch::Receiver<bool>,
}

/// The pools of keep-alive connections to backends, with the configured connect and idle timeouts.
pub(crate) fn backend_pool(config: &ProxyConfig) -> BackendPool {
    BackendPool::new(config.connect_timeout, config.pool_idle_timeout)
}

/// Answers one client request. Never fails: every problem becomes a response and a log line.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    peer: SocketAddr,
    scheme: Scheme,
    mut req: Request<Incoming>,
) -> Result<Response<LoggedBody>, Infallible> {
    let path_and_query = req
        .uri()
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let mut log = AccessLog::new(
        req.method().clone(),
        path_and_query.clone(),
        shared.observer.clone(),
    );
    match headers::request_host(req.uri(), req.headers()) {
        Ok(host) => log.host = host,
        Err(err) => {
            tracing::debug!(?err, "request without a usable host");
            return Ok(failure(&shared.config, Failure::BadHost, log));
        }
    }

    let snapshot = shared.routes.load();
    let (app, route, backends, states, instances) = match snapshot.resolve(log.host()) {
        Resolved::Unknown => {
            let host = log.host.clone();
            let host = host.to_str().unwrap_or("");
            return Ok(failure(&shared.config, Failure::UnknownHost { host }, log));
        }
        Resolved::NoInstances { app, route } => {
            log.app = Some(app.clone());
            if scheme == Scheme::Http && route.redirect_https {
                return Ok(redirect_https(&shared.config, &req, log));
            }
            return Ok(failure(
                &shared.config,
                Failure::NoInstances { app: &app.name },
                log,
            ));
        }
        Resolved::Backends {
            app,
            route,
            backends,
            states,
            instances,
        } => {
            log.app = Some(app.clone());
            if scheme == Scheme::Http && route.redirect_https {
                return Ok(redirect_https(&shared.config, &req, log));
            }
            (&*app.name, route, backends, states, instances)
        }
    };

    let mut upgrade = headers::upgrade_protocol(req.version(), req.headers())
        .map(|protocol| (protocol, hyper::upgrade::on(&mut req)));
    let (mut parts, body) = req.into_parts();
    headers::remove_hop_by_hop(&mut parts.headers);
    if let Some((protocol, _)) = &upgrade {
        headers::set_upgrade(&mut parts.headers, protocol.clone());
    }
    let client_ip = peer.ip().to_canonical();
    let forwarded = Forwarded {
        client_ip,
        peer_trusted: shared
            .config
            .trusted_proxies
            .iter()
            .any(|net| net.contains(&client_ip)),
        host: &log.host,
        port: &shared.local_port,
        proto: scheme.as_str(),
        start_unix_ms: unix_ms(),
    };
    log.request_id = Some(headers::add_forwarding(&mut parts.headers, forwarded));
    // The client's Expect: 100-continue is answered by our own server side when we first read the body.
    parts.headers.remove(header::EXPECT);

    let len = backends.len();
    let policy = &shared.config.ejection;
    let mut index = balance::pick(states, policy);
    let first_byte_timeout = route
        .first_byte_timeout_ms
        .map_or(shared.config.response_timeout, Duration::from_millis);
    // A request without a body whose method may be repeated can go to another backend even after one took it
    // and failed without answering (a backend killed mid-request); others only when nothing was sent.
    let repeatable = parts.method.is_idempotent() && body.is_end_stream();
    let mut body = if repeatable {
        drop(body);
        None
    } else {
        Some(body)
    };
    let idle = shared.config.body_idle_timeout;
    let mut retries: Option<std::vec::IntoIter<usize>> = None;
    let mut outcome = Failure::Unreachable {
        app,
        timed_out: false,
    };
    loop {
        let backend = backends[index].addr;
        let last = retries.as_ref().map_or(len == 1, |r| r.len() == 0);
        log.backend = Some(backend);
        log.instance = Some(instances[index].clone());
        log.attempts += 1;
        let (this_body, reclaimed) = if repeatable {
            (ReclaimBody::new(None, None, idle), None)
        } else {
            let Some(this_body) = body.take() else { break };
            if last {
                (ReclaimBody::new(Some(this_body), None, idle), None)
            } else {
                let (tx, rx) = oneshot::channel();
                (ReclaimBody::new(Some(this_body), Some(tx), idle), Some(rx))
            }
        };
        // HTTP/1.1 to a backend: the origin form (the path and query); `Host` names the app.
        let uri = Uri::from(path_and_query.clone());
        let mut outgoing = Request::new(this_body);
        *outgoing.method_mut() = parts.method.clone();
        *outgoing.uri_mut() = uri;
        *outgoing.version_mut() = Version::HTTP_11;
        *outgoing.headers_mut() = if last {
            std::mem::take(&mut parts.headers)
        } else {
            parts.headers.clone()
        };

        let in_flight = states[index].start();
        let sent = Instant::now();
        let result = tokio::time::timeout(first_byte_timeout, shared.backends.send(backend, outgoing)).await;
        match result {
            Ok(Ok((response, pooled))) => {
                let upstream = sent.elapsed();
                states[index].succeed(upstream, Instant::now());
                log.upstream = Some(upstream);
                if response.status() != StatusCode::SWITCHING_PROTOCOLS {
                    return Ok(proxied(response, log, in_flight, idle, pooled));
                }
                let Some((_, client)) = upgrade.take() else {
                    tracing::warn!(%app, %backend, "backend switched protocols unasked");
                    return Ok(failure(&shared.config, Failure::UpstreamBroken { app }, log));
                };
                let tunnel = Tunnel {
                    client,
                    stop: shared.tunnels_stop.clone(),
                    idle_timeout: shared.config.tunnel_idle_timeout,
                    in_flight,
                    app,
                    backend,
                };
                return Ok(switched(response, log, tunnel));
            }
            Ok(Err(err)) if err.is_connect() => {
                drop(in_flight);
                let ejected = balance::refused(states, index, policy);
                tracing::warn!(
                    %app,
                    %backend,
                    ejected_s = ejected.map(|d| d.as_secs()),
                    err = %error_chain(&err),
                    "backend refused the connection"
                );
                outcome = Failure::Unreachable {
                    app,
                    timed_out: timed_out(&err),
                };
                // The body comes back only if the failed attempt never read it.
                if !repeatable {
                    match reclaimed.and_then(|mut rx| rx.try_recv().ok()) {
                        Some(unread) => body = Some(unread),
                        None => break,
                    }
                }
            }
            Ok(Err(err)) if client_body_failed(&err).is_some() => {
                let why = client_body_failed(&err).unwrap_or(Failure::BadBody);
                tracing::debug!(%app, %backend, err = %error_chain(&err), "client request body failed");
                return Ok(failure(&shared.config, why, log));
            }
            Ok(Err(err)) if repeatable => {
                tracing::warn!(%app, %backend, err = %error_chain(&err), "backend failed; trying another");
                outcome = Failure::UpstreamBroken { app };
            }
            Ok(Err(err)) => {
                tracing::warn!(%app, %backend, err = %error_chain(&err), "backend failed");
                return Ok(failure(&shared.config, Failure::UpstreamBroken { app }, log));
            }
            Err(_elapsed) => {
                tracing::warn!(%app, %backend, "backend sent no response in time");
                return Ok(failure(&shared.config, Failure::UpstreamTimeout { app }, log));
            }
        }
        let first = index;
        let next = retries
            .get_or_insert_with(|| balance::retries(states, first))
            .next();
        match next {
            Some(next) => index = next,
            None => break,
        }
    }
    Ok(failure(&shared.config, outcome, log))
}

/// Now, in milliseconds since the Unix epoch (for `X-Request-Start`).
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The backend's response with hop-by-hop headers removed and its body streamed through.
fn proxied(
    response: Response<Incoming>,
    mut log: AccessLog,
    in_flight: InFlight,
    idle: Duration,
    pooled: Pooled,
) -> Response<LoggedBody> {
    let (mut parts, body) = response.into_parts();
    headers::remove_hop_by_hop(&mut parts.headers);
    parts.version = Version::HTTP_11;
    log.status = Some(parts.status);
    Response::from_parts(
        parts,
        LoggedBody::new(Either::Left(body), log, Some(in_flight), idle).with_pooled(pooled),
    )
}

/// What a tunnel needs once the backend agreed to switch protocols.
struct Tunnel<'a> {
    client: OnUpgrade,
    stop: tokio::sync::watch::Receiver<bool>,
    idle_timeout: Duration,
    in_flight: InFlight,
    app: &'a str,
    backend: SocketAddr,
}

/// The backend's 101 passed on to the client, and a task that joins the two connections once both switched.
fn switched(
    mut response: Response<Incoming>,
    mut log: AccessLog,
    tunnel: Tunnel<'_>,
) -> Response<LoggedBody> {
    // The 101's own body is empty; the timeout only has to be some value.
    let idle = tunnel.idle_timeout;
    let upstream = hyper::upgrade::on(&mut response);
    let protocol = response.headers().get(header::UPGRADE).cloned();
    let (mut parts, _empty) = response.into_parts();
    headers::remove_hop_by_hop(&mut parts.headers);
    if let Some(protocol) = protocol {
        headers::set_upgrade(&mut parts.headers, protocol);
    }
    log.status = Some(parts.status);
    tokio::spawn(tunnel::run(
        tunnel::Ends {
            client: tunnel.client,
            backend: upstream,
            backend_addr: tunnel.backend,
            app: tunnel.app.to_owned(),
        },
        tunnel.idle_timeout,
        tunnel.in_flight,
        tunnel.stop,
    ));
    Response::from_parts(
        parts,
        LoggedBody::new(Either::Right(Full::default()), log, None, idle),
    )
}

/// The router's own answer for a request it cannot forward.
/// The 308 to HTTPS for a plain-HTTP request to an app that asks for it.
fn redirect_https(config: &ProxyConfig, req: &Request<Incoming>, log: AccessLog) -> Response<LoggedBody> {
    let path_and_query = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    match tls::https_location(log.host(), path_and_query, config.https_port) {
        Some(location) => tls::redirect(location, log, config.body_idle_timeout),
        None => failure(config, Failure::BadHost, log),
    }
}

fn failure(config: &ProxyConfig, failure: Failure<'_>, mut log: AccessLog) -> Response<LoggedBody> {
    log.status = Some(failure.status());
    log.error = Some(failure.code());
    let page = Bytes::from(failure.page(&config.domain));
    let body = LoggedBody::new(
        Either::Right(Full::new(page)),
        log,
        None,
        config.body_idle_timeout,
    );
    let mut response = Response::new(body);
    *response.status_mut() = failure.status();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Whether a backend request failed because the client's request body did (hyper reports the body's error
/// as a "user" error), and what to answer: 408 when it went idle, 400 when it was malformed.
fn client_body_failed(err: &SendError) -> Option<Failure<'static>> {
    let mut source = std::error::Error::source(err);
    let mut user_body = false;
    while let Some(cause) = source {
        if cause.is::<BodyIdle>() {
            return Some(Failure::ClientIdle);
        }
        if cause
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_user)
        {
            user_body = true;
        }
        source = cause.source();
    }
    user_body.then_some(Failure::BadBody)
}

/// Whether a connect error was a timeout rather than a refusal.
fn timed_out(err: &dyn std::error::Error) -> bool {
    let mut source = err.source();
    while let Some(cause) = source {
        if cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        source = cause.source();
    }
    false
}

/// The error with its causes, for logs (hyper-util's own message is only the outermost one).
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
