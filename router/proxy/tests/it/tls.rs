//! TLS through the real router: a test CA (rcgen) signs leaf certificates that go into the route table, and a
//! rustls client that trusts only that CA checks which leaf the router presents for each SNI name.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use proxy::ProxyConfig;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use route_table::{AppRoute, Certificate, RouteTable};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::support::{self, table, Backend, Reply};

/// A test certificate authority.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// A leaf certificate as the route table carries it, and its DER to compare with what the router presents.
struct Leaf {
    cert: Certificate,
    der: CertificateDer<'static>,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "Berth test CA");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Pki { ca }
    }

    /// A fresh key and a certificate for `hosts` (exact or `*.` names) signed by the CA.
    fn leaf(&self, hosts: &[&str]) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = hosts.iter().map(|h| (*h).to_owned()).collect();
        let cert = CertificateParams::new(names.clone())
            .unwrap()
            .signed_by(&key, &self.ca)
            .unwrap();
        Leaf {
            cert: Certificate {
                hosts: names,
                cert_pem: cert.pem(),
                key_pem: key.serialize_pem(),
            },
            der: cert.der().clone(),
        }
    }

    /// A client that trusts only this CA and offers `alpn`.
    fn client(&self, alpn: &[&[u8]]) -> TlsConnector {
        self.client_with(alpn, |config| config)
    }

    fn client_with(&self, alpn: &[&[u8]], adjust: impl FnOnce(ClientConfig) -> ClientConfig) -> TlsConnector {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut config = adjust(config);
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        TlsConnector::from(Arc::new(config))
    }

    /// A client that sends SNI `sni` but checks the presented certificate (chain to the CA, validity) against
    /// `expected` instead, to see which certificate an unknown name gets.
    fn client_expecting(&self, expected: &str) -> TlsConnector {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .unwrap();
        let verifier = Arc::new(NameOverride {
            inner,
            expected: ServerName::try_from(expected.to_owned()).unwrap(),
        });
        self.client_with(&[b"http/1.1"], |mut config| {
            config.dangerous().set_certificate_verifier(verifier);
            config
        })
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Full certificate verification, but against a fixed name rather than the SNI the client sent.
#[derive(Debug)]
struct NameOverride {
    inner: Arc<WebPkiServerVerifier>,
    expected: ServerName<'static>,
}

impl ServerCertVerifier for NameOverride {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.expected, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The platform domain. Two labels: webpki, like browsers, refuses a wildcard over one label (`*.localhost`).
const DOMAIN: &str = "apps.test";

/// A router with a plain and a TLS listener on one route channel, as `berth` runs them.
struct TlsRouter {
    http: SocketAddr,
    https: SocketAddr,
    routes: watch::Sender<Arc<RouteTable>>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<Result<(), proxy::ProxyError>>>,
}

impl TlsRouter {
    async fn start(table: Arc<RouteTable>) -> TlsRouter {
        TlsRouter::start_with(table, ProxyConfig::new(DOMAIN)).await
    }

    /// Starts with `config`, whose `https_port` is set to the TLS listener's.
    async fn start_with(table: Arc<RouteTable>, mut config: ProxyConfig) -> TlsRouter {
        support::init_tracing();
        let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tls = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (http, https) = (plain.local_addr().unwrap(), tls.local_addr().unwrap());
        config.https_port = https.port();
        let (routes, rx) = watch::channel(table);
        let (stop, stopped) = watch::channel(false);
        let shutdown = |mut stopped: watch::Receiver<bool>| async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        let tasks = vec![
            tokio::spawn(proxy::serve(
                plain,
                rx.clone(),
                config.clone(),
                shutdown(stopped.clone()),
            )),
            tokio::spawn(proxy::serve_tls(tls, rx, config, shutdown(stopped))),
        ];
        TlsRouter {
            http,
            https,
            routes,
            stop,
            tasks,
        }
    }

    /// Opens a TLS connection with SNI `name`.
    async fn handshake(&self, client: &TlsConnector, name: &str) -> std::io::Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.https).await?;
        let name = ServerName::try_from(name.to_owned()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), client.connect(name, tcp))
            .await
            .expect("handshake within 10 s")
    }

    /// Stops both listeners gracefully and checks that both returned `Ok`.
    async fn stop(mut self) {
        self.stop.send_replace(true);
        for task in self.tasks.drain(..) {
            tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("router stops")
                .unwrap()
                .unwrap();
        }
    }
}

impl Drop for TlsRouter {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The leaf certificate the router presented on `stream`.
fn presented(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    let (_, session) = stream.get_ref();
    session.peer_certificates().expect("a server certificate")[0].clone()
}

/// An HTTP/1.1 client connection over an established TLS stream.
async fn http1(stream: TlsStream<TcpStream>) -> SendRequest<Full<Bytes>> {
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

fn with_certificates(table: Arc<RouteTable>, certificates: Vec<Certificate>) -> Arc<RouteTable> {
    let mut table = Arc::unwrap_or_clone(table);
    table.certificates = certificates;
    Arc::new(table)
}

/// App `a` (backend `app-a`) at `a.apps.test`, behind a router with `certificates`.
async fn app_a_behind(certificates: Vec<Certificate>) -> (Backend, TlsRouter) {
    let backend = Backend::start("app-a").await;
    let routes = table(1, &[("a.apps.test", "a", vec![backend.addr])]);
    let router = TlsRouter::start(with_certificates(routes, certificates)).await;
    (backend, router)
}

#[tokio::test]
async fn each_sni_name_gets_its_certificate_and_its_app() {
    let pki = Pki::new();
    let (a, b) = (pki.leaf(&["a.apps.test"]), pki.leaf(&["b.example.com"]));
    let (app_a, app_b) = (Backend::start("app-a").await, Backend::start("app-b").await);
    let routes = table(
        1,
        &[
            ("a.apps.test", "a", vec![app_a.addr]),
            ("b.example.com", "b", vec![app_b.addr]),
        ],
    );
    let router = TlsRouter::start(with_certificates(routes, vec![a.cert.clone(), b.cert.clone()])).await;
    let client = pki.client(&[b"http/1.1"]);

    for (name, leaf, backend) in [("a.apps.test", &a, &app_a), ("b.example.com", &b, &app_b)] {
        let stream = router.handshake(&client, name).await.unwrap();
        assert_eq!(presented(&stream), leaf.der, "certificate for {name}");
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        let mut conn = http1(stream).await;
        let reply = support::send(&mut conn, name, "/").await;
        assert_eq!((reply.status, reply.body.as_str()), (200, backend.name.as_str()));
        let seen = support::send(&mut conn, name, "/headers").await.seen_headers();
        assert_eq!(seen.get("x-forwarded-proto").map(String::as_str), Some("https"));
        assert_eq!(
            seen.get("x-forwarded-port"),
            Some(&router.https.port().to_string())
        );
    }
    router.stop().await;
}

#[tokio::test]
async fn http2_over_tls_is_chosen_by_alpn() {
    let pki = Pki::new();
    let leaf = pki.leaf(&["a.apps.test"]);
    let (_backend, router) = app_a_behind(vec![leaf.cert]).await;

    let stream = router
        .handshake(&pki.client(&[b"h2", b"http/1.1"]), "a.apps.test")
        .await
        .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    for path in ["/", "/headers"] {
        let req = Request::get(format!("https://a.apps.test{path}"))
            .body(Full::<Bytes>::default())
            .unwrap();
        let response = tokio::time::timeout(Duration::from_secs(10), sender.send_request(req))
            .await
            .expect("answer within 10 s")
            .unwrap();
        assert_eq!(response.version(), Version::HTTP_2);
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8_lossy(&body).into_owned();
        if path == "/" {
            assert_eq!(body, "app-a");
        } else {
            assert!(body.contains("x-forwarded-proto: https\n"), "{body}");
        }
    }
    router.stop().await;
}

#[tokio::test]
async fn a_replaced_certificate_is_presented_without_restart() {
    let pki = Pki::new();
    let (old, new) = (pki.leaf(&["a.apps.test"]), pki.leaf(&["a.apps.test"]));
    let (_backend, router) = app_a_behind(vec![old.cert]).await;
    let client = pki.client(&[b"http/1.1"]);
    let stream = router.handshake(&client, "a.apps.test").await.unwrap();
    assert_eq!(presented(&stream), old.der);

    let mut next = RouteTable::clone(&router.routes.borrow());
    next.certificates = vec![new.cert];
    next.version = 2;
    router.routes.send_replace(Arc::new(next));
    // The swap happens on the router's own task; wait for it by handshaking until the new leaf shows up.
    let mut leaf = presented(&stream);
    for _ in 0..500 {
        let stream = router.handshake(&client, "a.apps.test").await.unwrap();
        leaf = presented(&stream);
        if leaf == new.der {
            let reply = support::send(&mut http1(stream).await, "a.apps.test", "/").await;
            assert_eq!(reply.body, "app-a");
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(leaf, new.der, "the new certificate is presented");
    router.stop().await;
}

#[tokio::test]
async fn no_or_unknown_sni_gets_the_platform_wildcard() {
    let pki = Pki::new();
    let (wildcard, custom) = (pki.leaf(&["*.apps.test"]), pki.leaf(&["shop.example.com"]));
    let (_backend, router) = app_a_behind(vec![custom.cert.clone(), wildcard.cert.clone()]).await;

    // A name under the platform domain matches the wildcard itself.
    let client = pki.client(&[b"http/1.1"]);
    let stream = router.handshake(&client, "a.apps.test").await.unwrap();
    assert_eq!(presented(&stream), wildcard.der);
    let reply = support::send(&mut http1(stream).await, "a.apps.test", "/").await;
    assert_eq!(reply.body, "app-a");

    // A name no certificate covers falls back to the wildcard (which the client then checks as *.apps.test).
    let stream = router
        .handshake(&pki.client_expecting("fallback.apps.test"), "www.unknown.org")
        .await
        .unwrap();
    assert_eq!(presented(&stream), wildcard.der);

    // No SNI at all (the client connects by IP address, so it sends none) also gets the wildcard.
    let tcp = TcpStream::connect(router.https).await.unwrap();
    let by_ip = ServerName::IpAddress(router.https.ip().into());
    let stream = pki
        .client_expecting("fallback.apps.test")
        .connect(by_ip, tcp)
        .await
        .unwrap();
    assert_eq!(presented(&stream), wildcard.der);

    // A custom domain still gets its own certificate.
    let stream = router.handshake(&client, "shop.example.com").await.unwrap();
    assert_eq!(presented(&stream), custom.der);
    router.stop().await;
}

#[tokio::test]
async fn a_bad_certificate_is_skipped_and_the_others_work() {
    let pki = Pki::new();
    let good = pki.leaf(&["a.apps.test"]);
    let other_key = pki.leaf(&["b.apps.test"]);
    let garbage = Certificate {
        hosts: vec!["bad.apps.test".into()],
        cert_pem: "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n".into(),
        key_pem: "garbage".into(),
    };
    // A real certificate with the key of another one.
    let mismatched = Certificate {
        hosts: vec!["b.apps.test".into()],
        key_pem: good.cert.key_pem.clone(),
        ..other_key.cert
    };
    let (_backend, router) = app_a_behind(vec![garbage, mismatched, good.cert]).await;
    let client = pki.client(&[b"http/1.1"]);

    let stream = router.handshake(&client, "a.apps.test").await.unwrap();
    assert_eq!(presented(&stream), good.der);
    let reply = support::send(&mut http1(stream).await, "a.apps.test", "/").await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "app-a"));

    // Without a platform wildcard, a name with no usable certificate fails the handshake cleanly.
    for name in ["bad.apps.test", "b.apps.test", "nothing.apps.test"] {
        let err = router.handshake(&client, name).await.unwrap_err();
        assert!(err.to_string().contains("received fatal alert"), "{name}: {err}");
    }
    // And the router goes on serving.
    let stream = router.handshake(&client, "a.apps.test").await.unwrap();
    assert_eq!(presented(&stream), good.der);
    router.stop().await;
}

#[tokio::test]
async fn plain_http_is_redirected_to_https_for_apps_that_ask() {
    let pki = Pki::new();
    let wildcard = pki.leaf(&["*.apps.test"]);
    let (secure, plain) = (Backend::start("secure").await, Backend::start("plain").await);
    let mut routes = Arc::unwrap_or_clone(table(
        1,
        &[
            ("secure.apps.test", "secure", vec![secure.addr]),
            ("plain.apps.test", "plain", vec![plain.addr]),
        ],
    ));
    routes.apps.get_mut("secure").unwrap().redirect_https = true;
    routes.insert_host("idle.apps.test", "idle");
    routes.insert_app(
        "idle",
        AppRoute {
            redirect_https: true,
            ..AppRoute::default()
        },
    );
    let router = TlsRouter::start(with_certificates(Arc::new(routes), vec![wildcard.cert])).await;
    let tls_port = router.https.port();

    let http = router.http;
    let get = |host: &'static str, path: &'static str| async move {
        support::send(&mut support::connect(http).await, host, path).await
    };
    let location = |reply: &Reply| {
        reply
            .headers
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned())
    };

    let reply = get("secure.apps.test:8080", "/a/b?c=d&e").await;
    assert_eq!(reply.status, 308);
    assert_eq!(
        location(&reply),
        Some(format!("https://secure.apps.test:{tls_port}/a/b?c=d&e"))
    );
    assert_eq!(
        secure.connections(),
        0,
        "a redirected request never reaches the app"
    );

    // An app without running instances is redirected too (HTTPS will say 503).
    let reply = get("idle.apps.test", "/").await;
    assert_eq!(reply.status, 308);
    assert_eq!(
        location(&reply),
        Some(format!("https://idle.apps.test:{tls_port}/"))
    );

    // Other apps are served over plain HTTP.
    let reply = get("plain.apps.test", "/").await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "plain"));

    // Over TLS the app is served.
    let stream = router
        .handshake(&pki.client(&[b"http/1.1"]), "secure.apps.test")
        .await
        .unwrap();
    let reply = support::send(&mut http1(stream).await, "secure.apps.test", "/").await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "secure"));
    router.stop().await;
}

#[tokio::test]
async fn a_client_that_never_finishes_the_handshake_is_closed() {
    let pki = Pki::new();
    let leaf = pki.leaf(&["a.apps.test"]);
    let backend = Backend::start("app-a").await;
    let routes = table(1, &[("a.apps.test", "a", vec![backend.addr])]);
    let mut config = ProxyConfig::new(DOMAIN);
    config.tls_handshake_timeout = Duration::from_millis(200);
    let router = TlsRouter::start_with(with_certificates(routes, vec![leaf.cert]), config).await;

    // Half a ClientHello's record header, then silence: the router closes the connection.
    let mut idle = TcpStream::connect(router.https).await.unwrap();
    idle.write_all(&[0x16, 0x03]).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(10), idle.read(&mut buf))
        .await
        .expect("the router closes a stalled handshake");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");

    // Others are served meanwhile and after.
    let stream = router
        .handshake(&pki.client(&[b"http/1.1"]), "a.apps.test")
        .await
        .unwrap();
    let reply = support::send(&mut http1(stream).await, "a.apps.test", "/").await;
    assert_eq!(reply.body, "app-a");
    router.stop().await;
}
