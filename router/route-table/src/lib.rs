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
        ];
        for (input, want) in cases {
            assert_eq!(normalize_host(input), want, "{input}");
        }
    }
}
