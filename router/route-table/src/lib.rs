//! The router's route table: an immutable snapshot mapping a request's host to the app that serves it, and each
//! app to its backends and settings, plus the TLS certificates the router presents.
//!
//! Pure data with no IO. The control plane builds it and the routers swap snapshots atomically; a router never
//! asks the control plane anything on the request path. The same JSON form travels on the watch stream from the
//! API and is kept on disk by standalone routers, so a restarted router serves at once. Depends on nothing of
//! Berth's so that routers stay small.
//!
//! Hosts are exact names (`app.example.com`) or wildcards (`*.example.com`, matching any name with at least one
//! more label); [`RouteTable::lookup`] tries the exact name first, then wildcards from the most specific to the
//! least.

use std::collections::HashMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// One snapshot of everything a router needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteTable {
    /// Increases with every change, so readers can tell snapshots apart and a watch stream can resume. The
    /// control plane starts it from the wall clock (milliseconds) so it keeps increasing across its restarts.
    pub version: u64,
    /// host (normalized, see [`normalize_host`]) or wildcard pattern (`*.example.com`) → app name.
    pub hosts: HashMap<String, String>,
    /// app name → how to serve it.
    pub apps: HashMap<String, AppRoute>,
    /// Certificates the TLS listener picks from by SNI.
    #[serde(default)]
    pub certificates: Vec<Certificate>,
}

/// How to serve one app.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRoute {
    /// The instances that take new requests now. Empty means the app exists but has nothing running (503).
    /// Draining instances are not here: they only finish what they already have.
    pub backends: Vec<Backend>,
    /// Answer plain-HTTP requests with a redirect to HTTPS.
    #[serde(default)]
    pub redirect_https: bool,
    /// How long a backend may take to send its response head; `None` uses the router's default (30 s).
    #[serde(default)]
    pub first_byte_timeout_ms: Option<u64>,
}

/// One instance that serves an app.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Backend {
    pub addr: SocketAddr,
    /// The instance's name for logs, like `web.1`.
    pub instance: String,
}

/// A certificate chain and its private key, both PEM, with the host names (exact or wildcard) it serves.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    pub hosts: Vec<String>,
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for Certificate {
    /// Never prints the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

impl RouteTable {
    /// Points `host` (exact or `*.` wildcard, normalized as [`normalize_host`] does) at `app`.
    pub fn insert_host(&mut self, host: &str, app: &str) -> Option<String> {
        self.hosts.insert(normalize_host(host), app.to_owned())
    }

    /// Adds (or replaces) an app's route.
    pub fn insert_app(&mut self, app: &str, route: AppRoute) -> Option<AppRoute> {
        self.apps.insert(app.to_owned(), route)
    }

    /// The app serving a `Host` header value (lowercased, port stripped, trailing dot ignored): the exact host
    /// first, then `*.` wildcards from the most specific suffix to the least.
    pub fn lookup(&self, host_header: &str) -> Option<(&str, &AppRoute)> {
        let host = normalize_host(host_header);
        let app = candidates(&host).find_map(|pattern| self.hosts.get(pattern.as_ref()))?;
        self.apps.get(app).map(|route| (app.as_str(), route))
    }

    /// The certificate for a TLS server name, by the same most-specific-first rule as [`RouteTable::lookup`].
    pub fn certificate_for(&self, server_name: &str) -> Option<&Certificate> {
        let name = normalize_host(server_name);
        let found = candidates(&name).find_map(|pattern| {
            self.certificates
                .iter()
                .find(|cert| cert.hosts.iter().any(|h| normalize_host(h) == pattern.as_ref()))
        });
        found
    }
}

/// The patterns that may match `host`, most specific first: `a.b.c` → `a.b.c`, `*.b.c`, `*.c`.
fn candidates(host: &str) -> impl Iterator<Item = std::borrow::Cow<'_, str>> {
    let exact = std::iter::once(std::borrow::Cow::Borrowed(host));
    let wildcards = host
        .match_indices('.')
        .map(move |(dot, _)| std::borrow::Cow::Owned(format!("*{}", &host[dot..])));
    exact.chain(wildcards)
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
            ("*.Example.com", "*.example.com"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_host(input), want, "{input}");
        }
    }

    fn table(hosts: &[(&str, &str)]) -> RouteTable {
        let mut table = RouteTable::default();
        for (host, app) in hosts {
            table.insert_host(host, app);
            table.insert_app(app, AppRoute::default());
        }
        table
    }

    #[test]
    fn lookup_prefers_exact_then_the_most_specific_wildcard() {
        let table = table(&[
            ("Web.LocalHost", "web"),
            ("*.example.com", "catchall"),
            ("*.eu.example.com", "eu"),
            ("shop.eu.example.com", "shop"),
        ]);
        let cases = [
            ("web.localhost", Some("web")),
            ("WEB.localhost:8080", Some("web")),
            ("web.localhost.", Some("web")),
            ("api.localhost", None),
            ("localhost", None),
            ("shop.eu.example.com", Some("shop")),
            ("blog.eu.example.com", Some("eu")),
            ("a.b.eu.example.com", Some("eu")),
            ("www.example.com", Some("catchall")),
            ("example.com", None),
            ("eu.example.com", Some("catchall")),
        ];
        for (host, want) in cases {
            assert_eq!(table.lookup(host).map(|(app, _)| app), want, "{host}");
        }
    }

    #[test]
    fn a_host_whose_app_is_missing_is_unknown() {
        let mut table = RouteTable::default();
        table.insert_host("ghost.localhost", "ghost");
        assert!(table.lookup("ghost.localhost").is_none());
    }

    #[test]
    fn certificates_are_chosen_most_specific_first() {
        let cert = |hosts: &[&str], tag: &str| Certificate {
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            cert_pem: tag.into(),
            key_pem: String::new(),
        };
        let table = RouteTable {
            certificates: vec![
                cert(&["*.localhost"], "platform"),
                cert(&["shop.example.com", "www.shop.example.com"], "shop"),
                cert(&["*.example.com"], "wild"),
            ],
            ..RouteTable::default()
        };
        let cases = [
            ("app.localhost", Some("platform")),
            ("shop.example.com", Some("shop")),
            ("WWW.shop.example.com", Some("shop")),
            ("blog.example.com", Some("wild")),
            ("other.test", None),
        ];
        for (name, want) in cases {
            assert_eq!(
                table.certificate_for(name).map(|c| c.cert_pem.as_str()),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn certificate_debug_hides_the_key() {
        let cert = Certificate {
            hosts: vec!["a.test".into()],
            cert_pem: "CERT".into(),
            key_pem: "SECRET KEY".into(),
        };
        assert!(!format!("{cert:?}").contains("SECRET"));
    }

    #[test]
    fn json_round_trip() {
        let mut table = table(&[("web.localhost", "web")]);
        table.apps.get_mut("web").unwrap().backends.push(Backend {
            addr: "10.0.0.2:5000".parse().unwrap(),
            instance: "web.1".into(),
        });
        let json = serde_json::to_string(&table).unwrap();
        assert_eq!(serde_json::from_str::<RouteTable>(&json).unwrap(), table);
    }
}
