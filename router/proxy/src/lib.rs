//! The HTTP router: accepts client connections, finds the app for each request's `Host` in the current route
//! table snapshot, and forwards the request to one of the app's backends, streaming bodies both ways over
//! pooled keep-alive connections. Backends are chosen by power of two choices on in-flight requests (a
//! decaying latency average breaks ties); a backend that refuses connections is ejected for a while, then
//! probed, and [`Traffic`] tells the control plane what is still in flight to a backend it drains.
//!
//! It reads routes only from a [`tokio::sync::watch`] channel of immutable [`route_table::RouteTable`]
//! snapshots and never calls the control plane on the request path; whoever owns the sender (the controller,
//! later a watch stream from the API) decides what is routed. It answers clear pages when it cannot forward:
//! 404 for an unknown host, 503 for an app with no running instance, 502/504 when the backends fail, 400/408/431
//! for broken or slow clients, each logged with a short Heroku-style code (table in `pages.rs`). Upgrades
//! (WebSockets) are passed through once the backend answered 101. Every request gives one access-log line
//! (tracing target `berth::access`), an optional [`AccessRecord`] on a channel, and Prometheus metrics served
//! by [`serve_admin`]. [`serve_tls`] terminates TLS (rustls) with the
//! certificates of the route table, chosen by SNI; an app flagged `redirect_https` gets a 308 to HTTPS on the
//! plain listener.
//!
//! Only the `berth` binary should depend on it.

mod admin;
mod balance;
mod body;
mod forward;
mod h1;
mod headers;
mod observe;
mod pages;
mod pool;
mod routes;
mod server;
mod tls;
mod traffic;
mod tunnel;

use std::time::Duration;

pub use admin::serve_admin;
pub use balance::EjectionPolicy;
pub use observe::{AccessRecord, Metrics};
pub use server::{serve, serve_tls};
pub use traffic::Traffic;

/// How the router behaves; built once by the binary and passed to [`serve`].
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The platform's domain (apps are served at `NAME.DOMAIN`), named on error pages.
    pub domain: String,
    /// How long to wait for a TCP connection to a backend before trying the next one.
    pub connect_timeout: Duration,
    /// How long a backend may take to send its response head once the request was handed to it.
    pub response_timeout: Duration,
    /// How long a client may take to send a request's headers.
    pub header_read_timeout: Duration,
    /// How long a request or response body may send nothing before it is cut (rolling, reset by every chunk).
    pub body_idle_timeout: Duration,
    /// At most this many request headers (more: 431).
    pub max_header_count: usize,
    /// At most this many bytes of request head (more: 431). At least 8 KiB is used.
    pub max_header_bytes: usize,
    /// How long a backend that refused a connection gets no requests (then one probe).
    pub ejection: EjectionPolicy,
    /// How long an idle pooled connection to a backend is kept.
    pub pool_idle_timeout: Duration,
    /// After shutdown is asked for, how long in-flight requests get to finish before their connections close.
    pub shutdown_grace: Duration,
    /// How long a client may take to complete the TLS handshake on the [`serve_tls`] listener.
    pub tls_handshake_timeout: Duration,
    /// The public port of the HTTPS listener, put into the URL of redirects to HTTPS (left out when 443).
    pub https_port: u16,
    /// Peers whose `X-Forwarded-For` is kept (their address appended) and whose `X-Forwarded-Proto` and
    /// `X-Forwarded-Port` are believed (a TLS-terminating load balancer in front); from anyone else they are
    /// replaced by what the router itself saw. Empty by default: no one is trusted.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How long an upgraded connection (WebSocket) may stay open with no bytes moving either way.
    pub tunnel_idle_timeout: Duration,
    /// The live per-backend state; keep a clone to watch in-flight requests while draining.
    pub traffic: Traffic,
    /// The metrics the router updates; keep a clone for [`serve_admin`].
    pub metrics: Metrics,
    /// Where to send one [`AccessRecord`] per request, if anywhere. Sending never waits: when the channel is
    /// full the record is dropped and counted (`berth_router_access_log_dropped_total`).
    pub access_log: Option<tokio::sync::mpsc::Sender<AccessRecord>>,
}

impl ProxyConfig {
    /// The defaults (connect 5 s, first response byte 30 s, headers 10 s, body idle 55 s, 100 headers of at most
    /// 32 KiB, ejection 5 s doubling to 60 s, pool idle 90 s, grace 10 s, tunnel idle 10 minutes, no trusted
    /// proxies, TLS handshake 10 s, HTTPS port 443).
    pub fn new(domain: impl Into<String>) -> Self {
        Self {
            domain: domain.into(),
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            pool_idle_timeout: Duration::from_secs(90),
            ejection: EjectionPolicy::default(),
            body_idle_timeout: Duration::from_secs(55),
            max_header_count: 100,
            max_header_bytes: 32 * 1024,
            shutdown_grace: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_secs(10),
            https_port: 443,
            tunnel_idle_timeout: Duration::from_secs(600),
            trusted_proxies: Vec::new(),
            traffic: Traffic::new(),
            metrics: Metrics::new(),
            access_log: None,
        }
    }
}

/// Why the router could not run. Failures of single requests or connections are answered and logged, never
/// returned.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("reading the router listener's local address")]
    LocalAddr(#[source] std::io::Error),
    #[error("setting up the TLS listener")]
    Tls(#[source] rustls::Error),
}
