//! TLS termination and the HTTP→HTTPS redirect.
//!
//! Certificates come only from the route table. [`CertResolver`] parses every certificate of a table once, when
//! the table's certificates change (never on the request path), and answers rustls' SNI question from that
//! cache: the most specific certificate for the server name (as [`RouteTable::certificate_for`] picks), else
//! the platform wildcard `*.DOMAIN`, else none, which fails the handshake with an alert. A certificate that does
//! not load is logged (by its hosts, never its contents) and skipped; the others keep working.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{Either, Full};
use route_table::{normalize_host, Certificate, RouteTable};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::body::{AccessLog, LoggedBody};
use crate::forward::error_chain;
use crate::{ProxyConfig, ProxyError};

/// Why one certificate of the table cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CertError {
    #[error("reading the certificate chain PEM")]
    ChainPem(#[source] rustls_pki_types::pem::Error),
    #[error("the certificate PEM holds no certificate")]
    NoCertificate,
    #[error("reading the private key PEM")]
    KeyPem(#[source] rustls_pki_types::pem::Error),
    #[error("loading the private key for the certificate")]
    Key(#[source] rustls::Error),
}

/// Parses one certificate: the PEM chain (leaf first) and its private key (PKCS#8, PKCS#1 or SEC1), checking
/// that the key belongs to the leaf.
pub(crate) fn certified_key(
    cert: &Certificate,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, CertError> {
    let chain = CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(CertError::ChainPem)?;
    if chain.is_empty() {
        return Err(CertError::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).map_err(CertError::KeyPem)?;
    CertifiedKey::from_der(chain, key, provider).map_err(CertError::Key)
}

/// The parsed certificates of one table, indexed for SNI lookups.
struct CertSet {
    /// The table they came from, to tell whether a new table changed them.
    source: Arc<RouteTable>,
    /// `source.certificates[i]` parsed, `None` if it did not load; reused for unchanged certificates when the
    /// next table arrives, so one upload does not re-parse them all.
    parsed: Vec<Option<Arc<CertifiedKey>>>,
    /// Normalized host pattern (`a.example.com`, `*.example.com`) → the first loaded certificate naming it,
    /// the same choice as [`RouteTable::certificate_for`] but without a scan of every certificate per
    /// handshake.
    by_pattern: HashMap<String, Arc<CertifiedKey>>,
    /// The first loaded certificate for `*.DOMAIN`, for clients without SNI or with a name we have no
    /// certificate for.
    fallback: Option<Arc<CertifiedKey>>,
}

impl CertSet {
    /// Parses `source`'s certificates, reusing what `previous` parsed for the same PEM texts.
    fn build(
        source: Arc<RouteTable>,
        previous: Option<&CertSet>,
        platform_wildcard: &str,
        provider: &CryptoProvider,
    ) -> Self {
        let known: HashMap<(&str, &str), &Option<Arc<CertifiedKey>>> = previous
            .map(|p| {
                let pems = p
                    .source
                    .certificates
                    .iter()
                    .map(|c| (c.cert_pem.as_str(), c.key_pem.as_str()));
                pems.zip(&p.parsed).collect()
            })
            .unwrap_or_default();
        let parsed: Vec<Option<Arc<CertifiedKey>>> = source
            .certificates
            .iter()
            .map(
                |cert| match known.get(&(cert.cert_pem.as_str(), cert.key_pem.as_str())) {
                    Some(done) => Option::clone(done),
                    None => match certified_key(cert, provider) {
                        Ok(key) => Some(Arc::new(key)),
                        Err(err) => {
                            tracing::warn!(
                                hosts = ?cert.hosts,
                                err = %error_chain(&err),
                                "skipping a TLS certificate that does not load"
                            );
                            None
                        }
                    },
                },
            )
            .collect();
        drop(known);

        let mut by_pattern = HashMap::new();
        for (cert, key) in source.certificates.iter().zip(&parsed) {
            let Some(key) = key else { continue };
            for host in &cert.hosts {
                by_pattern
                    .entry(normalize_host(host))
                    .or_insert_with(|| key.clone());
            }
        }
        let fallback = by_pattern.get(platform_wildcard).cloned();
        tracing::debug!(
            version = source.version,
            loaded = parsed.iter().flatten().count(),
            total = parsed.len(),
            "TLS certificates loaded"
        );
        Self {
            source,
            parsed,
            by_pattern,
            fallback,
        }
    }

    /// The certificate for `server_name`: the exact name, then `*.` wildcards from the most specific suffix
    /// to the least, then the platform wildcard.
    fn lookup(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let found = server_name.and_then(|name| {
            let name = normalize_host(name);
            let wildcards = name
                .match_indices('.')
                .map(|(dot, _)| format!("*{}", &name[dot..]));
            std::iter::once(name.clone())
                .chain(wildcards)
                .find_map(|pattern| self.by_pattern.get(&pattern).cloned())
        });
        found.or_else(|| self.fallback.clone())
    }
}

/// Picks the certificate for each handshake from the latest table's parsed certificates.
pub(crate) struct CertResolver {
    current: ArcSwap<CertSet>,
    platform_wildcard: String,
    provider: Arc<CryptoProvider>,
}

impl std::fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = self.current.load();
        f.debug_struct("CertResolver")
            .field("version", &set.source.version)
            .field("certificates", &set.parsed.len())
            .field("platform_wildcard", &self.platform_wildcard)
            .finish_non_exhaustive()
    }
}

impl CertResolver {
    fn new(table: Arc<RouteTable>, domain: &str, provider: Arc<CryptoProvider>) -> Self {
        let platform_wildcard = format!("*.{}", normalize_host(domain));
        let set = CertSet::build(table, None, &platform_wildcard, &provider);
        Self {
            current: ArcSwap::from_pointee(set),
            platform_wildcard,
            provider,
        }
    }

    /// Re-parses the certificates whenever a new table changes them, until the sender is gone. Parsing runs on
    /// the blocking pool: thousands of custom-domain certificates must not stall a request worker.
    async fn follow(self: Arc<Self>, mut rx: watch::Receiver<Arc<RouteTable>>) {
        while rx.changed().await.is_ok() {
            let table = rx.borrow_and_update().clone();
            let previous = self.current.load_full();
            if table.certificates == previous.source.certificates {
                continue;
            }
            let this = self.clone();
            let built = tokio::task::spawn_blocking(move || {
                CertSet::build(table, Some(&previous), &this.platform_wildcard, &this.provider)
            })
            .await;
            match built {
                Ok(set) => self.current.store(Arc::new(set)),
                Err(err) => {
                    tracing::error!(%err, "loading TLS certificates failed; keeping the previous ones")
                }
            }
        }
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let key = self.current.load().lookup(hello.server_name());
        if key.is_none() {
            tracing::debug!(sni = ?hello.server_name(), "no TLS certificate for this name");
        }
        key
    }
}

/// What a TLS listener needs: the acceptor (rustls with ALPN h2 and http/1.1) and the resolver behind it.
pub(crate) struct Terminator {
    acceptor: TlsAcceptor,
    resolver: Arc<CertResolver>,
    handshake_timeout: std::time::Duration,
}

impl std::fmt::Debug for Terminator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Terminator")
            .field("resolver", &self.resolver)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl Terminator {
    /// Loads the current table's certificates and builds the rustls server configuration (ring provider).
    pub(crate) fn new(
        routes: &watch::Receiver<Arc<RouteTable>>,
        config: &ProxyConfig,
    ) -> Result<Self, ProxyError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let table = routes.borrow().clone();
        let resolver = Arc::new(CertResolver::new(table, &config.domain, provider.clone()));
        let mut server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(ProxyError::Tls)?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            resolver,
            handshake_timeout: config.tls_handshake_timeout,
        })
    }

    /// Keeps the certificates in step with the route table; the caller aborts the task when it stops.
    pub(crate) fn follow(&self, routes: watch::Receiver<Arc<RouteTable>>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.resolver.clone().follow(routes))
    }

    /// The server side of the handshake, bounded by the handshake timeout. A failure is the client's problem
    /// (wrong name, old protocol, a port scanner) and only logged at debug level.
    pub(crate) async fn accept(&self, stream: TcpStream, peer: SocketAddr) -> Option<TlsStream<TcpStream>> {
        match tokio::time::timeout(self.handshake_timeout, self.acceptor.accept(stream)).await {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err(err)) => {
                tracing::debug!(%peer, %err, "TLS handshake failed");
                None
            }
            Err(_elapsed) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                None
            }
        }
    }
}

/// Where a plain-HTTP request for an app that wants HTTPS is sent: `https://HOST[:PORT]/path?query`, with
/// the port left out when it is 443. `None` when the host is not a plain DNS name or IP literal, so a crafted
/// `Host` matching a wildcard route cannot turn the redirect into one to another site.
pub(crate) fn https_location(host: &str, path_and_query: &str, https_port: u16) -> Option<HeaderValue> {
    let host = normalize_host(host);
    let valid = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        !inner.is_empty()
            && inner
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
    } else {
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
    };
    if !valid {
        return None;
    }
    let path_and_query = if path_and_query.starts_with('/') {
        path_and_query
    } else {
        "/"
    };
    let location = if https_port == 443 {
        format!("https://{host}{path_and_query}")
    } else {
        format!("https://{host}:{https_port}{path_and_query}")
    };
    HeaderValue::from_str(&location).ok()
}

/// A 308 to `location` (the method and body are kept by the client, unlike with 301).
pub(crate) fn redirect(
    location: HeaderValue,
    mut log: AccessLog,
    body_idle_timeout: std::time::Duration,
) -> Response<LoggedBody> {
    log.status = Some(StatusCode::PERMANENT_REDIRECT);
    let body = Bytes::from(format!(
        "Redirecting to {}\n",
        String::from_utf8_lossy(location.as_bytes())
    ));
    let body = LoggedBody::new(Either::Right(Full::new(body)), log, None, body_idle_timeout);
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::PERMANENT_REDIRECT;
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, location);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_location_keeps_path_and_names_the_port() {
        let cases: &[(&str, &str, u16, Option<&str>)] = &[
            (
                "web.example.com",
                "/a?b=c",
                443,
                Some("https://web.example.com/a?b=c"),
            ),
            (
                "Web.Example.com:8080",
                "/",
                8443,
                Some("https://web.example.com:8443/"),
            ),
            ("web.example.com.", "/x", 443, Some("https://web.example.com/x")),
            ("127.0.0.1:80", "/", 443, Some("https://127.0.0.1/")),
            ("[::1]:8080", "/p", 8443, Some("https://[::1]:8443/p")),
            ("web.example.com", "*", 443, Some("https://web.example.com/")),
            ("evil.com/x.example.com", "/", 443, None),
            ("evil.com#.example.com", "/", 443, None),
            ("user@evil.com", "/", 443, None),
            ("evil.com\\.example.com", "/", 443, None),
            ("[::1]x", "/", 443, Some("https://[::1]/")),
            ("[evil.com]", "/", 443, None),
            ("", "/", 443, None),
        ];
        for (host, pq, port, want) in cases {
            let got = https_location(host, pq, *port);
            assert_eq!(
                got.as_ref().map(|v| v.to_str().unwrap()),
                *want,
                "host {host:?} path {pq:?} port {port}"
            );
        }
    }

    /// A self-signed certificate for `hosts`.
    fn leaf(hosts: &[&str]) -> Certificate {
        let key = rcgen::KeyPair::generate().unwrap();
        let hosts: Vec<String> = hosts.iter().map(|h| (*h).to_owned()).collect();
        let cert = rcgen::CertificateParams::new(hosts.clone())
            .unwrap()
            .self_signed(&key)
            .unwrap();
        Certificate {
            hosts,
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    fn garbage(host: &str) -> Certificate {
        Certificate {
            hosts: vec![host.to_owned()],
            cert_pem: "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n".into(),
            key_pem: "nothing".into(),
        }
    }

    /// Which of `set.source.certificates` `key` is, by identity.
    fn which(set: &CertSet, key: Option<Arc<CertifiedKey>>) -> Option<usize> {
        let key = key?;
        set.parsed
            .iter()
            .position(|p| p.as_ref().is_some_and(|p| Arc::ptr_eq(p, &key)))
    }

    #[test]
    fn lookup_is_most_specific_first_then_the_platform_wildcard() {
        let provider = rustls::crypto::ring::default_provider();
        let table = Arc::new(RouteTable {
            certificates: vec![
                leaf(&["*.apps.test"]),
                leaf(&["a.apps.test", "www.a.apps.test"]),
                leaf(&["*.b.apps.test"]),
                leaf(&["shop.example.com"]),
                garbage("c.apps.test"),
                leaf(&["A.Apps.Test."]),
            ],
            ..RouteTable::default()
        });
        let set = CertSet::build(table.clone(), None, "*.apps.test", &provider);
        let cases: &[(Option<&str>, Option<usize>, bool)] = &[
            // (SNI, certificate index, whether RouteTable::certificate_for picks the same)
            (Some("a.apps.test"), Some(1), true),
            (Some("WWW.a.apps.test."), Some(1), true),
            (Some("x.b.apps.test"), Some(2), true),
            (Some("x.y.b.apps.test"), Some(2), true),
            (Some("b.apps.test"), Some(0), true),
            (Some("shop.example.com"), Some(3), true),
            // The garbage certificate is skipped: the wildcard serves its name.
            (Some("c.apps.test"), Some(0), false),
            // Unknown names and no SNI get the platform wildcard.
            (Some("www.example.org"), Some(0), false),
            (None, Some(0), false),
        ];
        for (sni, want, agrees) in cases {
            assert_eq!(which(&set, set.lookup(*sni)), *want, "sni {sni:?}");
            if *agrees {
                let chosen = table.certificate_for(sni.unwrap()).unwrap();
                let index = table.certificates.iter().position(|c| std::ptr::eq(c, chosen));
                assert_eq!(index, *want, "certificate_for({sni:?})");
            }
        }

        let without_wildcard = CertSet::build(table, None, "*.other.test", &provider);
        assert_eq!(
            which(
                &without_wildcard,
                without_wildcard.lookup(Some("www.example.org"))
            ),
            None
        );
        assert_eq!(which(&without_wildcard, without_wildcard.lookup(None)), None);
    }

    #[test]
    fn rebuilding_parses_only_changed_certificates() {
        let provider = rustls::crypto::ring::default_provider();
        let mut table = RouteTable {
            certificates: vec![
                leaf(&["a.apps.test"]),
                garbage("b.apps.test"),
                leaf(&["c.apps.test"]),
            ],
            ..RouteTable::default()
        };
        let first = CertSet::build(Arc::new(table.clone()), None, "*.apps.test", &provider);
        table.certificates[2] = leaf(&["c.apps.test"]);
        table.certificates.push(leaf(&["d.apps.test"]));
        let second = CertSet::build(Arc::new(table), Some(&first), "*.apps.test", &provider);

        let same = |i: usize| match (&first.parsed[i], &second.parsed[i]) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        assert!(same(0), "an unchanged certificate is reused");
        assert!(same(1), "an unchanged bad certificate stays skipped");
        assert!(!same(2), "a replaced certificate is parsed again");
        assert!(second.parsed[3].is_some());
        assert_eq!(which(&second, second.lookup(Some("c.apps.test"))), Some(2));
    }

    #[test]
    fn bad_certificates_are_named_errors() {
        let provider = rustls::crypto::ring::default_provider();
        let cert = |cert_pem: &str, key_pem: &str| Certificate {
            hosts: vec!["a.example.com".into()],
            cert_pem: cert_pem.into(),
            key_pem: key_pem.into(),
        };
        let err = certified_key(&cert("", ""), &provider).unwrap_err();
        assert!(matches!(err, CertError::NoCertificate), "{err:?}");
        let garbage = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        let err = certified_key(&cert(garbage, ""), &provider).unwrap_err();
        assert!(matches!(err, CertError::ChainPem(_)), "{err:?}");
        let fake = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let err = certified_key(&cert(fake, "no key here"), &provider).unwrap_err();
        assert!(matches!(err, CertError::KeyPem(_)), "{err:?}");
    }
}
