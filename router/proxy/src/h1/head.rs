//! The engine's pure head rules: a client's request head (parsed by `httparse`) becomes either the head sent
//! to a backend (hop-by-hop headers dropped, forwarding headers set, exactly as `headers::add_forwarding`
//! does for hyper's requests), a refusal, or a hand-over to hyper; a backend's response head becomes the head
//! sent to the client and the framing of its body. No IO, so every rule has a table-driven test.

use std::mem::MaybeUninit;
use std::net::IpAddr;
use std::ops::Range;

use http::{HeaderValue, Method, StatusCode};

use crate::headers;

/// The most headers parsed in one head. `ProxyConfig::max_header_count` is capped at this.
pub(crate) const MAX_HEADERS: usize = 128;

/// The longest response head a backend may send.
pub(crate) const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// How a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body at all.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`, passed through as is.
    Chunked,
    /// Everything until the sender closes the connection (responses only).
    UntilClose,
}

/// What the router tells the backend about the request, besides what the client sent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Forwarding<'a> {
    pub client_ip: IpAddr,
    /// The peer is a proxy we trust: its `X-Forwarded-For`, `-Proto` and `-Port` are kept.
    pub peer_trusted: bool,
    /// The router's own port, as text.
    pub port: &'a [u8],
    pub proto: &'static str,
    pub start_unix_ms: u64,
}

/// A request head the engine forwards itself. Ranges index the buffer the head was parsed from.
#[derive(Debug)]
pub(crate) struct RequestHead {
    /// Bytes of the head, including the empty line; the body (if any) follows.
    pub len: usize,
    pub method: Method,
    pub target: Range<usize>,
    pub host: Range<usize>,
    /// The body's length (0: none).
    pub body: u64,
    /// The client asked to close the connection after this request.
    pub close: bool,
    /// The request ID sent to the backend (the client's when sane, else a new one).
    pub request_id: HeaderValue,
}

impl RequestHead {
    /// A request that may go to another backend even after one took it and failed without answering.
    pub(crate) fn repeatable(&self) -> bool {
        self.body == 0 && self.method.is_idempotent()
    }
}

/// What to do with the bytes read so far of a request head.
#[derive(Debug)]
pub(crate) enum RequestVerdict {
    /// The head is not complete yet.
    Partial,
    /// Forward it; the backend's head was written to `out`.
    Forward(RequestHead),
    /// Not for the engine (HTTP/2 preface, HTTP/1.0, chunked or `Expect` bodies, upgrades, absolute-form
    /// targets, a missing or repeated `Host`, or a head `httparse` refuses): hyper serves the connection from
    /// here, with every byte read so far.
    HandOver,
    /// Refused before anything reaches a backend (400).
    Malformed(&'static str),
    /// More headers than allowed (431).
    TooManyHeaders,
}

/// What a header name means to the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Name {
    Host,
    ContentLength,
    TransferEncoding,
    Connection,
    Upgrade,
    Expect,
    /// Other hop-by-hop headers, never forwarded.
    HopByHop,
    XForwardedFor,
    XForwardedProto,
    XForwardedHost,
    XForwardedPort,
    XRequestId,
    XRequestStart,
    Via,
    Other,
}

fn classify(name: &str) -> Name {
    let is = |known: &str| name.eq_ignore_ascii_case(known);
    match name.len() {
        2 if is("te") => Name::HopByHop,
        3 if is("via") => Name::Via,
        4 if is("host") => Name::Host,
        6 if is("expect") => Name::Expect,
        7 if is("upgrade") => Name::Upgrade,
        7 if is("trailer") => Name::HopByHop,
        10 if is("connection") => Name::Connection,
        10 if is("keep-alive") => Name::HopByHop,
        12 if is("x-request-id") => Name::XRequestId,
        14 if is("content-length") => Name::ContentLength,
        15 if is("x-forwarded-for") => Name::XForwardedFor,
        15 if is("x-request-start") => Name::XRequestStart,
        16 if is("x-forwarded-host") => Name::XForwardedHost,
        16 if is("x-forwarded-port") => Name::XForwardedPort,
        16 if is("proxy-connection") => Name::HopByHop,
        17 if is("x-forwarded-proto") => Name::XForwardedProto,
        17 if is("transfer-encoding") => Name::TransferEncoding,
        18 if is("proxy-authenticate") => Name::HopByHop,
        19 if is("proxy-authorization") => Name::HopByHop,
        _ => Name::Other,
    }
}

/// The most header names one message's `Connection` headers may list beyond `close`, `keep-alive` and
/// `upgrade`; more are handed to hyper.
const MAX_CONNECTION_NAMES: usize = 8;

/// The tokens of a message's `Connection` headers.
#[derive(Debug, Default)]
struct ConnectionTokens<'b> {
    close: bool,
    upgrade: bool,
    /// Other headers named as hop-by-hop for this message.
    named: [&'b str; MAX_CONNECTION_NAMES],
    count: usize,
    overflow: bool,
}

impl<'b> ConnectionTokens<'b> {
    fn add(&mut self, value: &'b [u8]) {
        let Ok(value) = std::str::from_utf8(value) else {
            return;
        };
        for token in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if token.eq_ignore_ascii_case("close") {
                self.close = true;
            } else if token.eq_ignore_ascii_case("upgrade") {
                self.upgrade = true;
            } else if token.eq_ignore_ascii_case("keep-alive") {
                // Hop-by-hop anyway.
            } else if self.count < MAX_CONNECTION_NAMES {
                self.named[self.count] = token;
                self.count += 1;
            } else {
                self.overflow = true;
            }
        }
    }

    /// Whether the `Connection` header names `name` as hop-by-hop. It cannot strip what frames or addresses the
    /// message.
    fn names(&self, name: &str, class: Name) -> bool {
        !matches!(class, Name::Host | Name::ContentLength)
            && self.named[..self.count]
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name))
    }
}

/// Parses a decimal `Content-Length` value: digits only (no sign, no list), at most 18 of them.
fn content_length(value: &[u8]) -> Option<u64> {
    let value = value.trim_ascii();
    if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Header values `http::HeaderValue::to_str` accepts (visible ASCII and tabs).
fn is_text(value: &[u8]) -> bool {
    value.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
}

fn offset(buf: &[u8], part: &[u8]) -> Range<usize> {
    let start = part.as_ptr() as usize - buf.as_ptr() as usize;
    start..start + part.len()
}

fn push_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Reads the request head at the start of `buf` (at most `max_headers` headers) and, when the engine forwards
/// it, writes the head for the backend into `out` (cleared first).
pub(crate) fn parse_request(
    buf: &[u8],
    max_headers: usize,
    fwd: &Forwarding<'_>,
    out: &mut Vec<u8>,
) -> RequestVerdict {
    let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut req,
        buf,
        &mut storage[..max_headers.min(MAX_HEADERS)],
    );
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return RequestVerdict::Partial,
        Err(httparse::Error::TooManyHeaders) => return RequestVerdict::TooManyHeaders,
        // The HTTP/2 preface, and heads hyper has its own answer for.
        Err(_) => return RequestVerdict::HandOver,
    };
    let (Some(method), Some(target), Some(1)) = (req.method, req.path, req.version) else {
        return RequestVerdict::HandOver;
    };
    if !target.starts_with('/') {
        return RequestVerdict::HandOver;
    }
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return RequestVerdict::HandOver;
    };

    // First pass: what frames and addresses the message.
    let mut host = None;
    let mut hosts = 0;
    let mut length = None;
    let mut chunked = false;
    let mut connection = ConnectionTokens::default();
    let mut upgrade = false;
    let mut expect = false;
    let mut forwarded_proto = None;
    let mut forwarded_port = None;
    let mut request_id = None;
    for header in req.headers.iter() {
        match classify(header.name) {
            Name::Host => {
                hosts += 1;
                host = Some(header.value);
            }
            Name::ContentLength => {
                let Some(value) = content_length(header.value) else {
                    return RequestVerdict::Malformed("its Content-Length is not a number");
                };
                if length.is_some_and(|l| l != value) {
                    return RequestVerdict::Malformed("it has conflicting Content-Length headers");
                }
                length = Some(value);
            }
            Name::TransferEncoding => chunked = true,
            Name::Connection => connection.add(header.value),
            Name::Upgrade => upgrade = true,
            Name::Expect => expect = true,
            Name::XForwardedProto => {
                forwarded_proto.get_or_insert(header.value);
            }
            Name::XForwardedPort => {
                forwarded_port.get_or_insert(header.value);
            }
            Name::XRequestId => {
                request_id.get_or_insert(header.value);
            }
            _ => {}
        }
    }
    if chunked && length.is_some() {
        return RequestVerdict::Malformed("it has both Transfer-Encoding and Content-Length");
    }
    let host = match host {
        Some(host) if hosts == 1 && !host.is_empty() && is_text(host) => host,
        _ => return RequestVerdict::HandOver,
    };
    if chunked || upgrade || expect || connection.upgrade || connection.overflow {
        return RequestVerdict::HandOver;
    }

    // Second pass: the backend's head.
    let trusted = fwd.peer_trusted;
    let keep_proto = trusted && matches!(forwarded_proto, Some(b"http" | b"https"));
    let keep_port = trusted
        && forwarded_port
            .and_then(|v| std::str::from_utf8(v).ok())
            .is_some_and(|v| v.parse::<u16>().is_ok());
    let keep_id = request_id.is_some_and(headers::sane_request_id);
    out.clear();
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut forwarded_for = Vec::new();
    let mut via = Vec::new();
    for header in req.headers.iter() {
        let class = classify(header.name);
        let keep = match class {
            Name::Host | Name::ContentLength | Name::Other => true,
            Name::XForwardedProto => keep_proto,
            Name::XForwardedPort => keep_port,
            Name::XRequestId => keep_id,
            Name::XForwardedFor => {
                if trusted && is_text(header.value) {
                    forwarded_for.push(header.value);
                }
                false
            }
            Name::Via => {
                if is_text(header.value) {
                    via.push(header.value);
                }
                false
            }
            _ => false,
        };
        if keep && !connection.names(header.name, class) {
            push_header(out, header.name.as_bytes(), header.value);
        }
    }
    let mut scratch = itoa_buffer();
    out.extend_from_slice(b"x-forwarded-for: ");
    for previous in &forwarded_for {
        out.extend_from_slice(previous);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(format_ip(&mut scratch, fwd.client_ip.to_canonical()));
    out.extend_from_slice(b"\r\n");
    if !keep_proto {
        push_header(out, b"x-forwarded-proto", fwd.proto.as_bytes());
    }
    push_header(out, b"x-forwarded-host", host);
    if !keep_port {
        push_header(out, b"x-forwarded-port", fwd.port);
    }
    out.extend_from_slice(b"x-request-start: t=");
    out.extend_from_slice(itoa(&mut scratch, fwd.start_unix_ms));
    out.extend_from_slice(b"\r\nvia: ");
    for previous in &via {
        out.extend_from_slice(previous);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(b"1.1 berth\r\n");
    let request_id = match request_id {
        Some(id) if keep_id => HeaderValue::from_bytes(id).unwrap_or_else(|_| headers::new_request_id()),
        _ => {
            let id = headers::new_request_id();
            push_header(out, b"x-request-id", id.as_bytes());
            id
        }
    };
    out.extend_from_slice(b"\r\n");
    RequestVerdict::Forward(RequestHead {
        len,
        method,
        target: offset(buf, target.as_bytes()),
        host: offset(buf, host),
        body: length.unwrap_or(0),
        close: connection.close,
        request_id,
    })
}

fn itoa_buffer() -> [u8; 48] {
    [0; 48]
}

/// `value` in decimal, written into `scratch`.
fn itoa(scratch: &mut [u8; 48], value: u64) -> &[u8] {
    let mut at = scratch.len();
    let mut value = value;
    loop {
        at -= 1;
        scratch[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            return &scratch[at..];
        }
    }
}

/// `ip` as text, written into `scratch` (an IPv6 address takes at most 45 bytes).
fn format_ip(scratch: &mut [u8; 48], ip: IpAddr) -> &[u8] {
    use std::io::Write;
    let mut cursor = std::io::Cursor::new(&mut scratch[..]);
    let _ = write!(cursor, "{ip}");
    let len = usize::try_from(cursor.position()).unwrap_or(0);
    &scratch[..len]
}

/// A backend's response head, as the engine passes it on.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ResponseHead {
    /// Bytes of the head, including the empty line.
    pub len: usize,
    pub status: StatusCode,
    pub framing: Framing,
    /// The backend connection may carry another request once this response's body was read.
    pub reusable: bool,
    /// The client connection closes after this response (the client asked, or the body runs until close).
    pub close: bool,
}

/// What to do with the bytes read so far of a response head.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ResponseVerdict {
    Partial,
    /// An informational (1xx) head to skip: `len` bytes.
    Informational(usize),
    /// Pass it on; the client's head was written to `out`.
    Respond(ResponseHead),
    /// Not a response the router passes on (502).
    Invalid(&'static str),
}

/// Reads the response head at the start of `buf` for a request with `method`, writing the head for the client
/// into `out` (cleared first). `client_close`: the client asked to close after this response.
pub(crate) fn parse_response(
    buf: &[u8],
    method: &Method,
    client_close: bool,
    out: &mut Vec<u8>,
) -> ResponseVerdict {
    let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut []);
    let parsed =
        httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut res, buf, &mut storage);
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > MAX_RESPONSE_HEAD => {
            return ResponseVerdict::Invalid("response head too large")
        }
        Ok(httparse::Status::Partial) => return ResponseVerdict::Partial,
        Err(_) => return ResponseVerdict::Invalid("malformed response head"),
    };
    let (Some(version), Some(code)) = (res.version, res.code) else {
        return ResponseVerdict::Invalid("malformed response head");
    };
    let Ok(status) = StatusCode::from_u16(code) else {
        return ResponseVerdict::Invalid("invalid status code");
    };
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return ResponseVerdict::Invalid("switching protocols unasked");
    }
    if status.is_informational() {
        return ResponseVerdict::Informational(len);
    }
    let mut connection = ConnectionTokens::default();
    let mut length = None;
    let mut chunked = None;
    for header in res.headers.iter() {
        match classify(header.name) {
            Name::Connection => connection.add(header.value),
            Name::ContentLength => {
                let Some(value) = content_length(header.value) else {
                    return ResponseVerdict::Invalid("invalid Content-Length");
                };
                if length.is_some_and(|l| l != value) {
                    return ResponseVerdict::Invalid("conflicting Content-Length headers");
                }
                length = Some(value);
            }
            Name::TransferEncoding => {
                // Only `chunked` as the last coding frames a body the router can pass through.
                let last = header
                    .value
                    .rsplit(|&b| b == b',')
                    .next()
                    .unwrap_or(b"")
                    .trim_ascii();
                chunked = Some(last.eq_ignore_ascii_case(b"chunked"));
            }
            _ => {}
        }
    }
    let no_body =
        *method == Method::HEAD || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    let framing = match (no_body, chunked, length) {
        (true, _, _) => Framing::Empty,
        (false, Some(true), _) => Framing::Chunked,
        (false, Some(false), _) => return ResponseVerdict::Invalid("unsupported Transfer-Encoding"),
        (false, None, Some(n)) => Framing::Length(n),
        (false, None, None) => Framing::UntilClose,
    };
    let reusable =
        version == 1 && !connection.close && !connection.overflow && framing != Framing::UntilClose;
    let close = client_close || framing == Framing::UntilClose;

    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    let reason = match res.reason {
        Some(reason) if !reason.is_empty() => reason,
        _ => status.canonical_reason().unwrap_or(""),
    };
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    for header in res.headers.iter() {
        let class = classify(header.name);
        let keep = match class {
            // A chunked body's length is its chunks'.
            Name::ContentLength => framing != Framing::Chunked,
            Name::Other
            | Name::Host
            | Name::Via
            | Name::XForwardedFor
            | Name::XForwardedProto
            | Name::XForwardedHost
            | Name::XForwardedPort
            | Name::XRequestId
            | Name::XRequestStart
            | Name::Expect => true,
            _ => false,
        };
        if keep && !connection.names(header.name, class) {
            push_header(out, header.name.as_bytes(), header.value);
        }
    }
    if framing == Framing::Chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    ResponseVerdict::Respond(ResponseHead {
        len,
        status,
        framing,
        reusable,
        close,
    })
}

/// The head of a page the router answers itself, with `body_len` bytes of HTML to follow.
pub(crate) fn page_head(out: &mut Vec<u8>, status: StatusCode, body_len: usize, close: bool) {
    let mut scratch = itoa_buffer();
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\ncontent-type: text/html; charset=utf-8\r\ncache-control: no-store\r\n");
    out.extend_from_slice(b"content-length: ");
    out.extend_from_slice(itoa(&mut scratch, body_len as u64));
    out.extend_from_slice(b"\r\n");
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fwd(trusted: bool) -> Forwarding<'static> {
        Forwarding {
            client_ip: "::ffff:10.0.0.7".parse().unwrap(),
            peer_trusted: trusted,
            port: b"8080",
            proto: "http",
            start_unix_ms: 1_700_000_000_123,
        }
    }

    /// The backend's head as sorted lowercase `name: value` lines after the request line, with the random
    /// request ID replaced by `<id>`.
    fn lines(out: &[u8]) -> (String, Vec<String>) {
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(text.ends_with("\r\n\r\n"), "{text:?}");
        let mut lines = text.trim_end().split("\r\n");
        let first = lines.next().unwrap().to_owned();
        let mut rest: Vec<String> = lines
            .map(|l| {
                let (name, value) = l.split_once(": ").unwrap();
                let name = name.to_ascii_lowercase();
                if name == "x-request-id" && value.len() == 36 && value != "client-id-1" {
                    format!("{name}: <id>")
                } else {
                    format!("{name}: {value}")
                }
            })
            .collect();
        rest.sort();
        (first, rest)
    }

    fn forward(head: &str, trusted: bool) -> (RequestHead, String, Vec<String>) {
        let mut out = Vec::new();
        match parse_request(head.as_bytes(), 100, &fwd(trusted), &mut out) {
            RequestVerdict::Forward(req) => {
                let (first, rest) = lines(&out);
                (req, first, rest)
            }
            other => panic!("{head:?}: {other:?}"),
        }
    }

    #[test]
    fn forwarded_requests_get_the_routers_headers() {
        let ours = |extra: &[&str]| {
            let mut want: Vec<String> = [
                "host: web.localhost",
                "x-forwarded-for: 10.0.0.7",
                "x-forwarded-host: web.localhost",
                "x-forwarded-port: 8080",
                "x-forwarded-proto: http",
                "x-request-start: t=1700000000123",
                "via: 1.1 berth",
                "x-request-id: <id>",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            want.extend(extra.iter().map(|s| s.to_string()));
            want.sort();
            want
        };
        // (head, trusted peer, lines the backend gets)
        let cases: Vec<(&str, bool, Vec<String>)> = vec![
            ("GET / HTTP/1.1\r\nHost: web.localhost\r\n\r\n", false, ours(&[])),
            (
                "GET / HTTP/1.1\r\nHost: web.localhost\r\nAccept: */*\r\nCookie: a=b\r\n\r\n",
                false,
                ours(&["accept: */*", "cookie: a=b"]),
            ),
            // Hop-by-hop headers and those `Connection` names go; Host and Content-Length cannot be named away.
            (
                "POST / HTTP/1.1\r\nHost: web.localhost\r\nConnection: keep-alive, X-Secret, host, \
                 content-length\r\nKeep-Alive: 5\r\nX-Secret: 1\r\nTE: trailers\r\nProxy-Authorization: x\r\n\
                 Content-Length: 0\r\n\r\n",
                false,
                ours(&["content-length: 0"]),
            ),
            // An untrusted peer's forwarding claims are replaced; its request ID is kept when sane.
            (
                "GET / HTTP/1.1\r\nHost: web.localhost\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\n\
                 X-Forwarded-Port: 443\r\nX-Forwarded-Host: evil\r\nX-Request-Start: t=1\r\nX-Request-Id: client-id-1\r\n\r\n",
                false,
                ours(&[])
                    .into_iter()
                    .map(|l| if l == "x-request-id: <id>" { "x-request-id: client-id-1".to_owned() } else { l })
                    .collect(),
            ),
            // A trusted proxy's chain is kept and extended, its proto and port believed.
            (
                "GET / HTTP/1.1\r\nHost: web.localhost\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For: 5.6.7.8\r\n\
                 X-Forwarded-Proto: https\r\nX-Forwarded-Port: 443\r\nVia: 1.1 lb\r\n\r\n",
                true,
                {
                    let mut want: Vec<String> = [
                        "host: web.localhost",
                        "x-forwarded-for: 1.2.3.4, 5.6.7.8, 10.0.0.7",
                        "x-forwarded-host: web.localhost",
                        "x-forwarded-port: 443",
                        "x-forwarded-proto: https",
                        "x-request-start: t=1700000000123",
                        "via: 1.1 lb, 1.1 berth",
                        "x-request-id: <id>",
                    ]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                    want.sort();
                    want
                },
            ),
            // A trusted proxy's nonsense is not believed.
            (
                "GET / HTTP/1.1\r\nHost: web.localhost\r\nX-Forwarded-Proto: gopher\r\nX-Forwarded-Port: 99999\r\n\
                 X-Request-Id: bad id\r\n\r\n",
                true,
                ours(&[]),
            ),
        ];
        for (head, trusted, want) in cases {
            let (req, first, rest) = forward(head, trusted);
            assert!(first.ends_with(" / HTTP/1.1"), "{first}");
            assert_eq!(rest, want, "{head:?}");
            assert_eq!(&head[req.host.clone()], "web.localhost");
            assert_eq!(&head[req.target.clone()], "/");
            assert_eq!(req.len, head.len());
        }
    }

    #[test]
    fn request_framing_and_keep_alive() {
        // (head, body length, close, repeatable)
        let cases = [
            ("GET /a?b=c HTTP/1.1\r\nHost: h\r\n\r\n", 0, false, true),
            (
                "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
                0,
                true,
                true,
            ),
            (
                "GET / HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive, CLOSE\r\n\r\n",
                0,
                true,
                true,
            ),
            (
                "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n",
                5,
                false,
                false,
            ),
            ("POST / HTTP/1.1\r\nHost: h\r\n\r\n", 0, false, false),
            (
                "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
                5,
                false,
                false,
            ),
            ("DELETE / HTTP/1.1\r\nHost: h\r\n\r\n", 0, false, true),
        ];
        for (head, body, close, repeatable) in cases {
            let (req, _, _) = forward(head, false);
            assert_eq!(
                (req.body, req.close, req.repeatable()),
                (body, close, repeatable),
                "{head:?}"
            );
        }
    }

    #[test]
    fn ambiguous_heads_are_refused_and_unusual_ones_handed_to_hyper() {
        #[derive(Debug, PartialEq)]
        enum Want {
            Malformed,
            HandOver,
            Partial,
            TooMany,
        }
        let cases = [
            (
                "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                Want::Malformed,
            ),
            (
                "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
                Want::Malformed,
            ),
            (
                "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nContent-Length: 9\r\n\r\n",
                Want::Malformed,
            ),
            (
                "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n",
                Want::Malformed,
            ),
            (
                "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n",
                Want::Malformed,
            ),
            (
                "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n",
                Want::Malformed,
            ),
            (
                "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
                Want::HandOver,
            ),
            (
                "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
                Want::HandOver,
            ),
            (
                "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n",
                Want::HandOver,
            ),
            (
                "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
                Want::HandOver,
            ),
            ("GET / HTTP/1.0\r\nHost: h\r\n\r\n", Want::HandOver),
            ("GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n", Want::HandOver),
            ("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", Want::HandOver),
            ("GET / HTTP/1.1\r\n\r\n", Want::HandOver),
            ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", Want::HandOver),
            ("GET / HTTP/1.1\r\nHost:\r\n\r\n", Want::HandOver),
            (
                "GET / HTTP/1.1\r\nHost: h\r\nX-Folded: a\r\n b\r\n\r\n",
                Want::HandOver,
            ),
            ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", Want::HandOver),
            ("GET / HTTP/1.1\r\nHost: h\r\n", Want::Partial),
            (
                "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
                Want::TooMany,
            ),
        ];
        for (head, want) in cases {
            let got = match parse_request(head.as_bytes(), 3, &fwd(false), &mut Vec::new()) {
                RequestVerdict::Malformed(_) => Want::Malformed,
                RequestVerdict::HandOver => Want::HandOver,
                RequestVerdict::Partial => Want::Partial,
                RequestVerdict::TooManyHeaders => Want::TooMany,
                RequestVerdict::Forward(_) => panic!("{head:?} was forwarded"),
            };
            assert_eq!(got, want, "{head:?}");
        }
    }

    #[test]
    fn response_heads_and_their_framing() {
        let respond = |head: &str, method: Method, client_close: bool| {
            let mut out = Vec::new();
            let verdict = parse_response(head.as_bytes(), &method, client_close, &mut out);
            (verdict, String::from_utf8(out).unwrap())
        };
        let head = |len, status: u16, framing, reusable, close| {
            ResponseVerdict::Respond(ResponseHead {
                len,
                status: StatusCode::from_u16(status).unwrap(),
                framing,
                reusable,
                close,
            })
        };
        // (backend head, method, client asked to close, verdict, head for the client)
        let ok = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nDate: x\r\n\r\n";
        let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n";
        let close = "HTTP/1.1 200 OK\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\n\r\n";
        let old = "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n";
        let head_req = "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n";
        let no_reason = "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n";
        let cases = [
            (
                ok,
                Method::GET,
                false,
                head(ok.len(), 200, Framing::Length(5), true, false),
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nDate: x\r\n\r\n",
            ),
            (
                ok,
                Method::GET,
                true,
                head(ok.len(), 200, Framing::Length(5), true, true),
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nDate: x\r\nconnection: close\r\n\r\n",
            ),
            (
                chunked,
                Method::GET,
                false,
                head(chunked.len(), 200, Framing::Chunked, true, false),
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
            ),
            (
                close,
                Method::GET,
                false,
                head(close.len(), 200, Framing::UntilClose, false, true),
                "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n",
            ),
            (
                old,
                Method::GET,
                false,
                head(old.len(), 200, Framing::Length(2), false, false),
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n",
            ),
            (
                head_req,
                Method::HEAD,
                false,
                head(head_req.len(), 200, Framing::Empty, true, false),
                "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n",
            ),
            (
                no_reason,
                Method::GET,
                false,
                head(no_reason.len(), 404, Framing::Length(0), true, false),
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
            ),
        ];
        for (backend, method, client_close, verdict, client) in cases {
            let (got, out) = respond(backend, method, client_close);
            assert_eq!(got, verdict, "{backend:?}");
            assert_eq!(out, client, "{backend:?}");
        }
        let refused = [
            (
                "HTTP/1.1 101 Switching Protocols\r\n\r\n",
                "switching protocols unasked",
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                "conflicting Content-Length headers",
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                "unsupported Transfer-Encoding",
            ),
            ("HTTP/1.1 2000 OK\r\n\r\n", "malformed response head"),
            ("nonsense\r\n\r\n", "malformed response head"),
        ];
        for (backend, why) in refused {
            assert_eq!(
                respond(backend, Method::GET, false).0,
                ResponseVerdict::Invalid(why),
                "{backend:?}"
            );
        }
        assert_eq!(
            respond("HTTP/1.1 100 Continue\r\n\r\n", Method::GET, false).0,
            ResponseVerdict::Informational(25)
        );
        assert_eq!(
            respond("HTTP/1.1 200 OK\r\nA: b", Method::GET, false).0,
            ResponseVerdict::Partial
        );
    }

    #[test]
    fn numbers_and_addresses_are_written_without_allocating() {
        let mut scratch = itoa_buffer();
        for (value, want) in [
            (0, "0"),
            (7, "7"),
            (1_700_000_000_123, "1700000000123"),
            (u64::MAX, "18446744073709551615"),
        ] {
            assert_eq!(itoa(&mut scratch, value), want.as_bytes());
        }
        for ip in ["10.0.0.7", "::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"] {
            assert_eq!(format_ip(&mut scratch, ip.parse().unwrap()), ip.as_bytes());
        }
    }
}
