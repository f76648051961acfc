//! Forwarding one request: find the route, pick backends in round-robin order, send the request over a pooled
//! keep-alive connection, and stream the answer back. A backend that refuses the connection is skipped for the
//! next one, but only while the request body was never read, so nothing is sent twice.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, Uri, Version};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::oneshot;

use crate::body::{AccessLog, LoggedBody, ReclaimBody};
use crate::headers::{self, Forwarded};
use crate::pages::Failure;
use crate::routes::{attempt_order, Resolved, Routes};
use crate::tls;
use crate::ProxyConfig;

pub(crate) type BackendClient = Client<HttpConnector, ReclaimBody>;

/// What every connection's requests share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub routes: Arc<Routes>,
    pub client: BackendClient,
    pub config: ProxyConfig,
    /// The router's port, for `X-Forwarded-Port`.
    pub local_port: u16,
    /// Whether this listener terminates TLS (`X-Forwarded-Proto: https`, no HTTPS redirect).
    pub tls: bool,
}

/// A pooled HTTP/1.1 client for backends, with the configured connect and idle timeouts.
pub(crate) fn backend_client(config: &ProxyConfig) -> BackendClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(config.connect_timeout));
    connector.set_nodelay(true);
    connector.enforce_http(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(config.pool_idle_timeout)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(connector)
}

/// Answers one client request. Never fails: every problem becomes a response and a log line.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<LoggedBody>, Infallible> {
    let mut log = AccessLog {
        start: Instant::now(),
        method: req.method().clone(),
        path: req.uri().path().to_owned(),
        host: String::new(),
        status: http::StatusCode::OK,
        app: None,
        backend: None,
        request_id: None,
        error: None,
        upstream: None,
        attempts: 0,
    };
    let host = match headers::request_host(req.uri(), req.headers()) {
        Ok(host) => host.to_owned(),
        Err(err) => {
            tracing::debug!(?err, "request without a usable host");
            return Ok(failure(&shared.config, Failure::BadHost, log));
        }
    };
    log.host.clone_from(&host);

    let snapshot = shared.routes.load();
    let (app, backends, first) = match snapshot.resolve(&host) {
        Resolved::Unknown => return Ok(failure(&shared.config, Failure::UnknownHost { host: &host }, log)),
        Resolved::NoInstances { app } => {
            log.app = Some(app.to_owned());
            if !shared.tls
                && snapshot
                    .table()
                    .lookup(&host)
                    .is_some_and(|(_, r)| r.redirect_https)
            {
                return Ok(redirect_https(&shared, &req, log));
            }
            return Ok(failure(&shared.config, Failure::NoInstances { app }, log));
        }
        Resolved::Backends {
            app,
            route,
            backends,
            first,
        } => {
            log.app = Some(app.to_owned());
            if !shared.tls && route.redirect_https {
                return Ok(redirect_https(&shared, &req, log));
            }
            (app, backends, first)
        }
    };

    let (mut parts, body) = req.into_parts();
    headers::remove_hop_by_hop(&mut parts.headers);
    let forwarded = Forwarded {
        client_ip: peer.ip(),
        host: &host,
        port: shared.local_port,
        proto: if shared.tls { "https" } else { "http" },
    };
    log.request_id = Some(headers::add_forwarding(&mut parts.headers, forwarded));
    // The client's Expect: 100-continue is answered by our own server side when we first read the body.
    parts.headers.remove(header::EXPECT);
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();

    let mut body = Some(body);
    let count = backends.len();
    for (attempt, index) in attempt_order(count, first).enumerate() {
        let backend = backends[index].addr;
        let last = attempt + 1 == count;
        log.backend = Some(backend);
        log.attempts += 1;
        let Some(this_body) = body.take() else { break };
        let (reclaim, reclaimed) = if last {
            (None, None)
        } else {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        };
        let uri = match backend_uri(backend, &path_and_query) {
            Ok(uri) => uri,
            Err(err) => {
                tracing::error!(%backend, %err, "cannot build a backend URI");
                return Ok(failure(&shared.config, Failure::UpstreamBroken { app }, log));
            }
        };
        let mut outgoing = Request::new(ReclaimBody::new(this_body, reclaim));
        *outgoing.method_mut() = parts.method.clone();
        *outgoing.uri_mut() = uri;
        *outgoing.version_mut() = Version::HTTP_11;
        *outgoing.headers_mut() = if last {
            std::mem::take(&mut parts.headers)
        } else {
            parts.headers.clone()
        };

        let sent = Instant::now();
        let result =
            tokio::time::timeout(shared.config.response_timeout, shared.client.request(outgoing)).await;
        match result {
            Ok(Ok(response)) => {
                log.upstream = Some(sent.elapsed());
                return Ok(proxied(response, log));
            }
            Ok(Err(err)) if err.is_connect() => {
                tracing::warn!(%app, %backend, err = %error_chain(&err), "backend refused the connection");
                // The body comes back only if the failed attempt never read it.
                match reclaimed.and_then(|mut rx| rx.try_recv().ok()) {
                    Some(unread) => body = Some(unread),
                    None => break,
                }
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
    }
    Ok(failure(&shared.config, Failure::Unreachable { app }, log))
}

/// The 308 to HTTPS for a plain-HTTP request to an app that asks for it.
fn redirect_https(shared: &Shared, req: &Request<Incoming>, log: AccessLog) -> Response<LoggedBody> {
    let path_and_query = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    match tls::https_location(&log.host, path_and_query, shared.config.https_port) {
        Some(location) => tls::redirect(location, log),
        None => failure(&shared.config, Failure::BadHost, log),
    }
}

fn backend_uri(backend: SocketAddr, path_and_query: &str) -> Result<Uri, http::Error> {
    Uri::builder()
        .scheme("http")
        .authority(backend.to_string())
        .path_and_query(path_and_query)
        .build()
}

/// The backend's response with hop-by-hop headers removed and its body streamed through.
fn proxied(response: Response<Incoming>, mut log: AccessLog) -> Response<LoggedBody> {
    let (mut parts, body) = response.into_parts();
    headers::remove_hop_by_hop(&mut parts.headers);
    parts.version = Version::HTTP_11;
    log.status = parts.status;
    Response::from_parts(parts, LoggedBody::new(Either::Left(body), log))
}

/// The router's own answer for a request it cannot forward.
fn failure(config: &ProxyConfig, failure: Failure<'_>, mut log: AccessLog) -> Response<LoggedBody> {
    log.status = failure.status();
    log.error = Some(failure.code());
    let page = Bytes::from(failure.page(&config.domain));
    let mut response = Response::new(LoggedBody::new(Either::Right(Full::new(page)), log));
    *response.status_mut() = failure.status();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
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
