//! Pure header rules: which host a request names, which headers are hop-by-hop, and the forwarding headers
//! the router adds. No IO, so every rule has a table-driven test.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::Uri;

pub(crate) static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub(crate) static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub(crate) static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
pub(crate) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub(crate) static X_REQUEST_START: HeaderName = HeaderName::from_static("x-request-start");

/// The longest client request ID kept; longer ones are replaced.
const MAX_REQUEST_ID: usize = 200;

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus the old `Proxy-Connection`
/// and `Keep-Alive`. They must not travel past the router in either direction.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Why a request names no host the router can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostError {
    Missing,
    Repeated,
    NotText,
}

/// The host a request is for: the authority of an absolute-form URI (or HTTP/2 `:authority`) wins over the
/// `Host` header, as RFC 9112 §3.2.2 says. Two `Host` headers are refused rather than guessed between.
///
/// The host comes back as a header value (text, checked), so that forwarding it costs no copy.
pub(crate) fn request_host(uri: &Uri, headers: &HeaderMap) -> Result<HeaderValue, HostError> {
    if let Some(authority) = uri.authority() {
        return HeaderValue::from_str(authority.as_str()).map_err(|_| HostError::NotText);
    }
    let mut values = headers.get_all(header::HOST).iter();
    let value = values.next().ok_or(HostError::Missing)?;
    if values.next().is_some() {
        return Err(HostError::Repeated);
    }
    match value.to_str() {
        Ok("") => Err(HostError::Missing),
        Ok(_) => Ok(value.clone()),
        Err(_) => Err(HostError::NotText),
    }
}

/// Removes hop-by-hop headers, including those the `Connection` header names. A client cannot use
/// `Connection` to strip the headers that frame or address the message.
pub(crate) fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none: one pass over their few names is cheaper than a hash lookup per hop-by-hop
    // name. Without any, there is no `Connection` header either, so nothing it names to remove.
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .filter(|name| *name != header::HOST && *name != header::CONTENT_LENGTH)
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
}

/// The protocol an HTTP/1.1 request asks to switch to: its `Upgrade` value, when `Connection` names
/// `upgrade`. HTTP/2 has no such upgrade.
pub(crate) fn upgrade_protocol(version: http::Version, headers: &HeaderMap) -> Option<HeaderValue> {
    if version != http::Version::HTTP_11 {
        return None;
    }
    let asks = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    let mut values = headers.get_all(header::UPGRADE).iter();
    match (asks, values.next(), values.next()) {
        (true, Some(protocol), None) if !protocol.is_empty() => Some(protocol.clone()),
        _ => None,
    }
}

/// Puts back the two headers that ask for (or confirm) a protocol switch, after the hop-by-hop ones were
/// removed.
pub(crate) fn set_upgrade(headers: &mut HeaderMap, protocol: HeaderValue) {
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, protocol);
}

/// What the router tells a backend about the original request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Forwarded<'a> {
    /// The address of the TCP peer.
    pub client_ip: IpAddr,
    /// Whether the peer is a proxy we trust, so that the `X-Forwarded-For` it sent is kept.
    pub peer_trusted: bool,
    /// The host as the client sent it (with its port, if any).
    pub host: &'a HeaderValue,
    /// The router's own port the client connected to (made once per listener).
    pub port: &'a HeaderValue,
    pub proto: &'static str,
    /// When the router received the request, in milliseconds since the Unix epoch.
    pub start_unix_ms: u64,
}

/// Sets the `X-Forwarded-*`, `X-Request-Start` and `Via` headers and makes sure `Host` and a sane
/// `X-Request-Id` are present. Returns the request ID for the access log.
pub(crate) fn add_forwarding(headers: &mut HeaderMap, fwd: Forwarded<'_>) -> HeaderValue {
    // An inbound X-Forwarded-For is kept (and our peer appended) only when the peer is a trusted proxy;
    // anyone else could write any address there.
    let client_ip = fwd.client_ip.to_canonical();
    let previous: Vec<&str> = if fwd.peer_trusted {
        headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    } else {
        Vec::new()
    };
    let chain = if previous.is_empty() {
        // The common case: written on the stack, copied once into the header.
        formatted(format_args!("{client_ip}"))
    } else {
        HeaderValue::from_str(&format!("{}, {client_ip}", previous.join(", "))).ok()
    };
    if let Some(value) = chain {
        headers.insert(X_FORWARDED_FOR.clone(), value);
    }
    // A trusted proxy in front (a TLS-terminating load balancer) knows the client's scheme and port better
    // than we do; anyone else's claim is overwritten.
    let keep_proto = fwd.peer_trusted
        && matches!(
            headers.get(&X_FORWARDED_PROTO).map(HeaderValue::as_bytes),
            Some(b"http" | b"https")
        );
    if !keep_proto {
        headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(fwd.proto));
    }
    headers.insert(X_FORWARDED_HOST.clone(), fwd.host.clone());
    headers.entry(header::HOST).or_insert_with(|| fwd.host.clone());
    let keep_port = fwd.peer_trusted
        && headers
            .get(&X_FORWARDED_PORT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.parse::<u16>().is_ok());
    if !keep_port {
        headers.insert(X_FORWARDED_PORT.clone(), fwd.port.clone());
    }
    if let Some(start) = formatted(format_args!("t={}", fwd.start_unix_ms)) {
        headers.insert(X_REQUEST_START.clone(), start);
    }
    add_via(headers);
    match headers.get(&X_REQUEST_ID) {
        Some(id) if sane_request_id(id.as_bytes()) => id.clone(),
        _ => {
            let id = new_request_id();
            headers.insert(X_REQUEST_ID.clone(), id.clone());
            id
        }
    }
}

/// Adds the router to the `Via` chain (RFC 9110 §7.6.3).
pub(crate) fn add_via(headers: &mut HeaderMap) {
    const US: &str = "1.1 berth";
    let chain: Vec<&str> = headers
        .get_all(header::VIA)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let value = if chain.is_empty() {
        HeaderValue::from_static(US)
    } else {
        match HeaderValue::from_str(&format!("{}, {US}", chain.join(", "))) {
            Ok(value) => value,
            Err(_) => HeaderValue::from_static(US),
        }
    };
    headers.insert(header::VIA, value);
}

/// A client's request ID is kept only when short and made of characters that are safe in logs and URLs.
pub(crate) fn sane_request_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.+/=:".contains(b))
}

/// A random UUID from the thread's fast generator (no system call per request).
/// A short header value formatted on the stack and copied once (`format!` then `HeaderValue::from_str` would
/// allocate twice). `None` if it does not fit in 64 bytes or is not a valid header value.
fn formatted(args: std::fmt::Arguments<'_>) -> Option<HeaderValue> {
    use std::io::Write;
    let mut buf = [0u8; 64];
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    cursor.write_fmt(args).ok()?;
    let len = usize::try_from(cursor.position()).ok()?;
    HeaderValue::from_bytes(&buf[..len]).ok()
}

pub(crate) fn new_request_id() -> HeaderValue {
    let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    let mut buf = uuid::Uuid::encode_buffer();
    HeaderValue::from_str(id.hyphenated().encode_lower(&mut buf)).expect("a uuid is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Header pairs as written in a case table.
    type Pairs<'a> = &'a [(&'a str, &'a str)];

    fn map(pairs: Pairs<'_>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    fn names(headers: &HeaderMap) -> Vec<String> {
        let mut names: Vec<String> = headers.keys().map(|k| k.to_string()).collect();
        names.sort();
        names
    }

    #[test]
    fn host_is_found_or_refused() {
        let cases: &[(&str, Pairs, Result<&str, HostError>)] = &[
            ("/", &[("host", "web.localhost")], Ok("web.localhost")),
            ("/", &[("host", "web.localhost:8080")], Ok("web.localhost:8080")),
            (
                "http://api.localhost/x",
                &[("host", "web.localhost")],
                Ok("api.localhost"),
            ),
            ("http://api.localhost:81/x", &[], Ok("api.localhost:81")),
            ("/", &[], Err(HostError::Missing)),
            ("/", &[("host", "")], Err(HostError::Missing)),
            (
                "/",
                &[("host", "a.localhost"), ("host", "b.localhost")],
                Err(HostError::Repeated),
            ),
        ];
        for (uri, headers, want) in cases {
            let uri: Uri = uri.parse().unwrap();
            let got = request_host(&uri, &map(headers));
            let got = got.as_ref().map(|v| v.to_str().unwrap()).map_err(|e| *e);
            assert_eq!(got, *want, "{uri} {headers:?}");
        }
        let mut bad = HeaderMap::new();
        bad.insert(
            header::HOST,
            HeaderValue::from_bytes(b"caf\xe9.localhost").unwrap(),
        );
        assert_eq!(
            request_host(&Uri::from_static("/"), &bad),
            Err(HostError::NotText)
        );
    }

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let cases: &[(Pairs, &[&str])] = &[
            (&[("host", "h"), ("accept", "*/*")], &["accept", "host"]),
            (
                &[
                    ("connection", "keep-alive"),
                    ("keep-alive", "timeout=5"),
                    ("transfer-encoding", "chunked"),
                    ("te", "trailers"),
                    ("trailer", "x"),
                    ("upgrade", "websocket"),
                    ("proxy-authorization", "Basic x"),
                    ("proxy-connection", "keep-alive"),
                    ("cookie", "a=b"),
                ],
                &["cookie"],
            ),
            (
                &[
                    ("connection", "X-Secret, x-other"),
                    ("x-secret", "1"),
                    ("x-other", "2"),
                    ("x-kept", "3"),
                ],
                &["x-kept"],
            ),
            (
                &[("connection", "close"), ("connection", "x-a"), ("x-a", "1")],
                &[],
            ),
            // A client must not be able to strip the headers that address and frame the request.
            (
                &[
                    ("connection", "host, content-length"),
                    ("host", "h"),
                    ("content-length", "3"),
                ],
                &["content-length", "host"],
            ),
            (&[("connection", "bad header name, x-b"), ("x-b", "1")], &[]),
        ];
        for (input, want) in cases {
            let mut headers = map(input);
            remove_hop_by_hop(&mut headers);
            assert_eq!(names(&headers), *want, "{input:?}");
        }
    }

    #[test]
    fn upgrade_is_asked_only_with_connection_upgrade_on_http1() {
        use http::Version;
        let cases: &[(Version, Pairs, Option<&str>)] = &[
            (
                Version::HTTP_11,
                &[("connection", "Upgrade"), ("upgrade", "websocket")],
                Some("websocket"),
            ),
            (
                Version::HTTP_11,
                &[("connection", "keep-alive, upgrade"), ("upgrade", "websocket")],
                Some("websocket"),
            ),
            (Version::HTTP_11, &[("upgrade", "websocket")], None),
            (Version::HTTP_11, &[("connection", "upgrade")], None),
            (
                Version::HTTP_11,
                &[("connection", "upgrade"), ("upgrade", "a"), ("upgrade", "b")],
                None,
            ),
            (
                Version::HTTP_2,
                &[("connection", "upgrade"), ("upgrade", "websocket")],
                None,
            ),
            (
                Version::HTTP_10,
                &[("connection", "upgrade"), ("upgrade", "websocket")],
                None,
            ),
        ];
        for (version, input, want) in cases {
            let got = upgrade_protocol(*version, &map(input));
            assert_eq!(
                got.as_ref().map(|v| v.to_str().unwrap()),
                *want,
                "{version:?} {input:?}"
            );
        }
    }

    static HOST: HeaderValue = HeaderValue::from_static("web.localhost:8080");
    static PORT: HeaderValue = HeaderValue::from_static("8080");

    fn fwd(ip: &str, peer_trusted: bool) -> Forwarded<'static> {
        Forwarded {
            client_ip: ip.parse().unwrap(),
            peer_trusted,
            host: &HOST,
            port: &PORT,
            proto: "http",
            start_unix_ms: 1_700_000_000_123,
        }
    }

    #[test]
    fn forwarding_headers_are_set() {
        // (inbound headers, peer, peer trusted, X-Forwarded-For sent on, Via sent on)
        let cases: &[(Pairs, &str, bool, &str, &str)] = &[
            (&[], "10.0.0.1", false, "10.0.0.1", "1.1 berth"),
            (&[], "10.0.0.1", true, "10.0.0.1", "1.1 berth"),
            // A spoofed chain from an untrusted peer is replaced.
            (
                &[("x-forwarded-for", "1.2.3.4")],
                "10.0.0.1",
                false,
                "10.0.0.1",
                "1.1 berth",
            ),
            (
                &[("x-forwarded-for", "1.2.3.4"), ("via", "1.1 lb")],
                "10.0.0.1",
                true,
                "1.2.3.4, 10.0.0.1",
                "1.1 lb, 1.1 berth",
            ),
            (
                &[("x-forwarded-for", "1.2.3.4"), ("x-forwarded-for", "5.6.7.8")],
                "::1",
                true,
                "1.2.3.4, 5.6.7.8, ::1",
                "1.1 berth",
            ),
            // An IPv4 client on a dual-stack listener shows as its IPv4 address.
            (&[], "::ffff:10.0.0.2", false, "10.0.0.2", "1.1 berth"),
        ];
        for (input, ip, trusted, want_xff, want_via) in cases {
            let mut headers = map(input);
            headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("https"));
            headers.insert(X_REQUEST_START.clone(), HeaderValue::from_static("t=1"));
            let id = add_forwarding(&mut headers, fwd(ip, *trusted));
            assert_eq!(headers[&X_FORWARDED_FOR], *want_xff, "{input:?}");
            let want_proto = if *trusted { "https" } else { "http" };
            assert_eq!(
                headers[&X_FORWARDED_PROTO], want_proto,
                "only a trusted proxy can claim https"
            );
            assert_eq!(headers[&X_FORWARDED_HOST], "web.localhost:8080");
            assert_eq!(headers[&X_FORWARDED_PORT], "8080");
            assert_eq!(headers[&X_REQUEST_START], "t=1700000000123");
            assert_eq!(headers[header::VIA], *want_via);
            assert_eq!(headers[header::HOST], "web.localhost:8080");
            assert_eq!(headers[&X_REQUEST_ID], id);
            assert_eq!(id.len(), 36, "{id:?}");
        }
    }

    #[test]
    fn scheme_and_port_are_kept_only_from_a_trusted_proxy() {
        // (inbound proto, inbound port, trusted, proto sent on, port sent on)
        let cases: &[(&str, &str, bool, &str, &str)] = &[
            ("https", "443", false, "http", "8080"),
            ("https", "443", true, "https", "443"),
            ("http", "80", true, "http", "80"),
            ("gopher", "70000", true, "http", "8080"),
        ];
        for (proto, port, trusted, want_proto, want_port) in cases {
            let mut headers = map(&[("x-forwarded-proto", proto), ("x-forwarded-port", port)]);
            add_forwarding(&mut headers, fwd("10.0.0.1", *trusted));
            assert_eq!(
                headers[&X_FORWARDED_PROTO], *want_proto,
                "{proto} {port} {trusted}"
            );
            assert_eq!(headers[&X_FORWARDED_PORT], *want_port, "{proto} {port} {trusted}");
        }
    }

    #[test]
    fn request_id_is_kept_when_sane_or_made() {
        let long = "a".repeat(201);
        let longest = "a".repeat(200);
        let cases: &[(&str, bool)] = &[
            ("abc-123", true),
            ("Root=1-5e1b4151-5ac6c58f;Parent=1", false),
            ("a_b.c+d/e=f:g", true),
            (&longest, true),
            (&long, false),
            ("", false),
            ("has space", false),
            ("<script>", false),
        ];
        for (id, kept) in cases {
            let mut headers = map(&[("x-request-id", id)]);
            let got = add_forwarding(&mut headers, fwd("127.0.0.1", false));
            assert_eq!(got == *id, *kept, "{id:?} became {got:?}");
            assert_eq!(headers[&X_REQUEST_ID], got);
        }
        let (a, b) = (
            add_forwarding(&mut HeaderMap::new(), fwd("127.0.0.1", false)),
            add_forwarding(&mut HeaderMap::new(), fwd("127.0.0.1", false)),
        );
        assert_ne!(a, b, "request IDs must differ");
    }
}
