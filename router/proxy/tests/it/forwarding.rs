//! What the backend sees: forwarding headers added, hop-by-hop headers gone, the client's Host kept.

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;

use crate::support::{request, table, Backend, Router};

#[tokio::test]
async fn backend_sees_forwarding_headers_and_no_hop_by_hop_ones() {
    let backend = Backend::start("web-1").await;
    let router = Router::start(table(1, &[("web.localhost", "web", vec![backend.addr])])).await;
    let mut conn = router.connect().await;
    let req = Request::get("/headers?token=secret")
        .header("host", "web.localhost:8080")
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-forwarded-proto", "https")
        .header("connection", "keep-alive, x-private")
        .header("x-private", "do not pass")
        .header("keep-alive", "timeout=5")
        .header("proxy-authorization", "Basic c2VjcmV0")
        .header("x-kept", "yes")
        .body(Full::<Bytes>::default())
        .unwrap();
    let reply = request(&mut conn, req).await;
    assert_eq!(reply.status, 200);
    let seen = reply.seen_headers();
    let get = |name: &str| seen.get(name).map(String::as_str);

    assert_eq!(get("host"), Some("web.localhost:8080"));
    assert_eq!(
        get("x-forwarded-for"),
        Some("127.0.0.1"),
        "an untrusted peer's chain is replaced"
    );
    assert_eq!(get("via"), Some("1.1 berth"));
    let start: u64 = get("x-request-start")
        .and_then(|v| v.strip_prefix("t="))
        .and_then(|ms| ms.parse().ok())
        .expect("X-Request-Start: t=<unix ms>");
    assert!(start > 1_600_000_000_000, "{start}");
    assert_eq!(get("x-forwarded-proto"), Some("http"));
    assert_eq!(get("x-forwarded-host"), Some("web.localhost:8080"));
    assert_eq!(
        get("x-forwarded-port"),
        Some(router.addr.port().to_string().as_str())
    );
    assert_eq!(get("x-kept"), Some("yes"));
    assert_eq!(get("x-request-id").map(str::len), Some(36), "{seen:?}");
    for gone in ["x-private", "keep-alive", "proxy-authorization"] {
        assert_eq!(get(gone), None, "{gone} must not reach the backend");
    }

    // A request ID the client sent is kept.
    let req = Request::get("/headers")
        .header("host", "web.localhost")
        .header("x-request-id", "req-42");
    let reply = request(&mut conn, req.body(Full::default()).unwrap()).await;
    assert_eq!(
        reply.seen_headers().get("x-request-id").map(String::as_str),
        Some("req-42")
    );
}

#[tokio::test]
async fn forwarded_for_from_a_trusted_proxy_is_kept() {
    let backend = Backend::start("web-1").await;
    let config = proxy::ProxyConfig {
        trusted_proxies: vec!["127.0.0.0/8".parse().unwrap()],
        ..proxy::ProxyConfig::new("localhost")
    };
    let router = Router::start_with(table(1, &[("web.localhost", "web", vec![backend.addr])]), config).await;
    let mut conn = router.connect().await;
    let req = Request::get("/headers")
        .header("host", "web.localhost")
        .header("x-forwarded-for", "203.0.113.9")
        .header("via", "1.1 lb")
        .header("x-request-id", "bad id with spaces")
        .body(Full::<Bytes>::default())
        .unwrap();
    let seen = request(&mut conn, req).await.seen_headers();
    let get = |name: &str| seen.get(name).map(String::as_str);
    assert_eq!(get("x-forwarded-for"), Some("203.0.113.9, 127.0.0.1"));
    assert_eq!(get("via"), Some("1.1 lb, 1.1 berth"));
    assert_eq!(
        get("x-request-id").map(str::len),
        Some(36),
        "an insane ID is replaced"
    );
}
