//! Why the router could not forward a request, and the page it answers instead. The classification decides the
//! status code and the short code in the access log; retrying is decided in `forward`.
//!
//! The codes follow Heroku's router where one exists, so operators who know those can read our logs:
//!
//! | code | status | meaning |
//! |------|--------|---------|
//! | H12  | 504    | request timeout: the backend sent no response head within the app's first-byte timeout |
//! | H13  | 502    | connection closed without response: the backend hung up or sent garbage (also logged when a backend body breaks mid-stream) |
//! | H14  | 503    | no web processes running: the app has no backend in the table |
//! | H15  | —      | idle connection: a response body sent nothing for the rolling idle timeout; the client connection is cut |
//! | H19  | 502    | backend connection timeout: no backend accepted a TCP connection in time |
//! | H21  | 502    | backend connection refused: every backend tried refused the connection |
//! | H27  | 499    | client request interrupted: the client went away before the response was complete (log only) |
//! | H28  | 408    | client connection idle: the request body sent nothing for the rolling idle timeout |
//! | B1   | 404    | unknown host: no app is served at this host (Berth's own code) |
//! | B2   | 400    | bad request: no usable `Host`, a malformed request body, or an ambiguous request head (both `Transfer-Encoding` and `Content-Length`, conflicting or invalid lengths) (Berth's own code) |
//! | B3   | 431    | request head too large: more headers or bytes than the configured limits (Berth's own code) |
//!
//! The router's HTTP/1.1 engine (`h1`) answers B2 and B3 for the heads it refuses. Heads it hands to hyper
//! (see `h1`) and hyper refuses (obs-fold, a bad request line) get hyper's own empty 400 and a closed
//! connection.

use http::StatusCode;

/// The short failure codes written to the access log.
pub(crate) mod codes {
    pub(crate) const REQUEST_TIMEOUT: &str = "H12";
    pub(crate) const CONNECTION_CLOSED: &str = "H13";
    pub(crate) const NO_INSTANCES: &str = "H14";
    pub(crate) const IDLE_CONNECTION: &str = "H15";
    pub(crate) const CONNECT_TIMEOUT: &str = "H19";
    pub(crate) const CONNECT_REFUSED: &str = "H21";
    pub(crate) const CLIENT_INTERRUPTED: &str = "H27";
    pub(crate) const CLIENT_IDLE: &str = "H28";
    pub(crate) const UNKNOWN_HOST: &str = "B1";
    pub(crate) const BAD_REQUEST: &str = "B2";
    pub(crate) const HEAD_TOO_LARGE: &str = "B3";
}

/// A request the router answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure<'a> {
    /// The request names no usable host (none, two, or not text).
    BadHost,
    /// The request body was malformed (a bad chunk size, a body shorter than its length).
    BadBody,
    /// The request head frames the message ambiguously or wrongly (`why` says how); answered before anything
    /// reaches a backend.
    BadHead { why: &'static str },
    /// The request head has more headers or bytes than allowed.
    HeadTooLarge,
    /// The client stopped sending its request body.
    ClientIdle,
    /// No app is served at this host.
    UnknownHost { host: &'a str },
    /// The app exists but has no running instance.
    NoInstances { app: &'a str },
    /// No backend accepted a connection: all refused, or (`timed_out`) the last one did not answer in time.
    Unreachable { app: &'a str, timed_out: bool },
    /// A backend failed after the request was handed to it (closed the connection, sent garbage).
    UpstreamBroken { app: &'a str },
    /// A backend took too long to answer.
    UpstreamTimeout { app: &'a str },
}

impl Failure<'_> {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Failure::BadHost | Failure::BadBody | Failure::BadHead { .. } => StatusCode::BAD_REQUEST,
            Failure::HeadTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Failure::ClientIdle => StatusCode::REQUEST_TIMEOUT,
            Failure::UnknownHost { .. } => StatusCode::NOT_FOUND,
            Failure::NoInstances { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Failure::Unreachable { .. } | Failure::UpstreamBroken { .. } => StatusCode::BAD_GATEWAY,
            Failure::UpstreamTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The short code logged with the request (see the table above).
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Failure::BadHost | Failure::BadBody | Failure::BadHead { .. } => codes::BAD_REQUEST,
            Failure::HeadTooLarge => codes::HEAD_TOO_LARGE,
            Failure::ClientIdle => codes::CLIENT_IDLE,
            Failure::UnknownHost { .. } => codes::UNKNOWN_HOST,
            Failure::NoInstances { .. } => codes::NO_INSTANCES,
            Failure::Unreachable { timed_out: true, .. } => codes::CONNECT_TIMEOUT,
            Failure::Unreachable { timed_out: false, .. } => codes::CONNECT_REFUSED,
            Failure::UpstreamBroken { .. } => codes::CONNECTION_CLOSED,
            Failure::UpstreamTimeout { .. } => codes::REQUEST_TIMEOUT,
        }
    }

    /// A small HTML page saying what happened and, where the app's owner can fix it, how. Everything that came
    /// from the request is escaped: the host is the client's text.
    pub(crate) fn page(&self, domain: &str) -> String {
        let (title, detail) = match self {
            Failure::BadHost => (
                "This request names no host".to_owned(),
                "Send exactly one <code>Host</code> header naming an app.".to_owned(),
            ),
            Failure::BadBody => (
                "This request's body is malformed".to_owned(),
                "Its framing (chunk sizes or length) is invalid; nothing was answered by the app.".to_owned(),
            ),
            Failure::BadHead { why } => (
                "This request is malformed".to_owned(),
                format!("{why}; nothing was sent to the app."),
            ),
            Failure::HeadTooLarge => (
                "This request's headers are too large".to_owned(),
                "Send fewer or smaller headers (cookies are the usual cause).".to_owned(),
            ),
            Failure::ClientIdle => (
                "The request body stopped arriving".to_owned(),
                "The client sent nothing for too long while sending its request body.".to_owned(),
            ),
            Failure::UnknownHost { host } => (
                format!("No app is served at {}", escape(host)),
                format!("Apps on this platform are served at <code>NAME.{}</code>.", escape(domain)),
            ),
            Failure::NoInstances { app } => {
                let app = escape(app);
                (
                    format!("{app} has no running instances"),
                    format!("{app} has no running instances: scale it with <code>berth scale web=1 -a {app}</code>."),
                )
            }
            Failure::Unreachable { app, .. } => (
                format!("{} could not be reached", escape(app)),
                "None of its instances accepted a connection. Check <code>berth ps</code> and the app's logs."
                    .to_owned(),
            ),
            Failure::UpstreamBroken { app } => (
                format!("{} failed to answer", escape(app)),
                "Its instance closed the connection or sent an invalid response.".to_owned(),
            ),
            Failure::UpstreamTimeout { app } => (
                format!("{} did not answer in time", escape(app)),
                "Its instance accepted the request but sent no response in time.".to_owned(),
            ),
        };
        let status = self.status();
        format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{code} {title}</title></head>\n\
             <body><h1>{title}</h1>\n<p>{detail}</p>\n<hr><p>{code} {reason} · berth router</p></body></html>\n",
            code = status.as_u16(),
            reason = status.canonical_reason().unwrap_or(""),
        )
    }
}

/// Escapes text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_have_status_code_and_clear_page() {
        let cases: &[(Failure, u16, &str, &str)] = &[
            (Failure::BadHost, 400, "B2", "names no host"),
            (Failure::BadBody, 400, "B2", "body is malformed"),
            (Failure::ClientIdle, 408, "H28", "stopped arriving"),
            (
                Failure::BadHead {
                    why: "it has both Transfer-Encoding and Content-Length",
                },
                400,
                "B2",
                "it has both Transfer-Encoding and Content-Length; nothing was sent",
            ),
            (Failure::HeadTooLarge, 431, "B3", "headers are too large"),
            (
                Failure::UnknownHost {
                    host: "nope.localhost",
                },
                404,
                "B1",
                "No app is served at nope.localhost",
            ),
            (
                Failure::NoInstances { app: "web" },
                503,
                "H14",
                "web has no running instances: scale it with <code>berth scale web=1 -a web</code>",
            ),
            (
                Failure::Unreachable {
                    app: "web",
                    timed_out: false,
                },
                502,
                "H21",
                "web could not be reached",
            ),
            (
                Failure::Unreachable {
                    app: "web",
                    timed_out: true,
                },
                502,
                "H19",
                "web could not be reached",
            ),
            (
                Failure::UpstreamBroken { app: "web" },
                502,
                "H13",
                "web failed to answer",
            ),
            (
                Failure::UpstreamTimeout { app: "web" },
                504,
                "H12",
                "web did not answer in time",
            ),
        ];
        for (failure, status, code, text) in cases {
            assert_eq!(failure.status().as_u16(), *status, "{failure:?}");
            assert_eq!(failure.code(), *code, "{failure:?}");
            let page = failure.page("localhost");
            assert!(page.contains(text), "{failure:?}: {page}");
            assert!(page.contains(&format!("<title>{status} ")), "{page}");
        }
        assert!(Failure::UnknownHost { host: "x" }
            .page("example.org")
            .contains("NAME.example.org"));
    }

    #[test]
    fn client_text_is_escaped() {
        let cases = [
            (
                "<script>alert(1)</script>",
                "&lt;script&gt;alert(1)&lt;/script&gt;",
            ),
            ("a\"b'c&d", "a&quot;b&#39;c&amp;d"),
            ("web.localhost", "web.localhost"),
        ];
        for (input, want) in cases {
            assert_eq!(escape(input), want);
            let page = Failure::UnknownHost { host: input }.page("localhost");
            assert!(page.contains(want) && !page.contains("<script>"), "{page}");
        }
    }
}
