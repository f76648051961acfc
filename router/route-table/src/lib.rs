//! The router's route table: an immutable snapshot mapping a request's host to the backends that serve it.
//!
//! Pure data with no IO. The control plane builds it (or diffs to it) and the router swaps snapshots
//! atomically; the router never asks the control plane anything on the request path. Depends on nothing of
//! Berth's so that routers stay small.

use std::collections::HashMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// Where one host's requests go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The app's name, for logs and error pages.
    pub app: String,
    /// The instances that accept connections now. Empty means the app exists but has nothing running (503).
    pub backends: Vec<SocketAddr>,
}

/// host (lowercase, without port) → route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteTable {
    /// Increases with every change, so a reader can tell snapshots apart.
    pub version: u64,
    pub routes: HashMap<String, Route>,
}

impl RouteTable {
    /// Adds (or replaces) the route for `host`, normalized the way [`RouteTable::lookup`] normalizes, so a
    /// table built with this method always finds its own hosts.
    pub fn insert(&mut self, host: &str, route: Route) -> Option<Route> {
        self.routes.insert(normalize_host(host), route)
    }

    /// Looks up a `Host` header value: lowercased, port stripped, trailing dot ignored.
    pub fn lookup(&self, host_header: &str) -> Option<&Route> {
        self.routes.get(&normalize_host(host_header))
    }
}

/// `App.Example.COM.:8080` → `app.example.com`. IPv6 literals keep their brackets.
pub fn normalize_host(host: &str) -> String {
    let without_port = if host.starts_with('[') {
        match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        }
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    without_port.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_normalization() {
        let cases = [
            ("app.localhost", "app.localhost"),
            ("App.LocalHost:8080", "app.localhost"),
            ("app.example.com.", "app.example.com"),
            ("[::1]:80", "[::1]"),
            ("[::1]", "[::1]"),
            ("app.localhost:", "app.localhost"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_host(input), want, "{input}");
        }
    }

    #[test]
    fn lookup_finds_inserted_hosts_however_spelled() {
        let mut table = RouteTable::default();
        let web: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        table.insert(
            "Web.LocalHost",
            Route {
                app: "web".into(),
                backends: vec![web],
            },
        );
        let cases = [
            ("web.localhost", Some("web")),
            ("WEB.localhost:8080", Some("web")),
            ("web.localhost.", Some("web")),
            ("api.localhost", None),
            ("localhost", None),
        ];
        for (host, want) in cases {
            assert_eq!(table.lookup(host).map(|r| r.app.as_str()), want, "{host}");
        }
    }
}
