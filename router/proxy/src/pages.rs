//! Why the router could not forward a request, and the page it answers instead. The classification decides the
//! status code and the short code in the access log (like Heroku's H-codes); retrying is decided in `forward`.

use http::StatusCode;

/// A request the router answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure<'a> {
    /// The request names no usable host (none, two, or not text).
    BadHost,
    /// No app is served at this host.
    UnknownHost { host: &'a str },
    /// The app exists but has no running instance.
    NoInstances { app: &'a str },
    /// No backend accepted a connection.
    Unreachable { app: &'a str },
    /// A backend failed after the request was handed to it (closed the connection, sent garbage).
    UpstreamBroken { app: &'a str },
    /// A backend took too long to answer.
    UpstreamTimeout { app: &'a str },
}

impl Failure<'_> {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Failure::BadHost => StatusCode::BAD_REQUEST,
            Failure::UnknownHost { .. } => StatusCode::NOT_FOUND,
            Failure::NoInstances { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Failure::Unreachable { .. } | Failure::UpstreamBroken { .. } => StatusCode::BAD_GATEWAY,
            Failure::UpstreamTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The short code logged with the request.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Failure::BadHost => "bad_host",
            Failure::UnknownHost { .. } => "unknown_host",
            Failure::NoInstances { .. } => "no_instances",
            Failure::Unreachable { .. } => "connect_failed",
            Failure::UpstreamBroken { .. } => "upstream_error",
            Failure::UpstreamTimeout { .. } => "upstream_timeout",
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
            Failure::Unreachable { app } => (
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
            (Failure::BadHost, 400, "bad_host", "names no host"),
            (
                Failure::UnknownHost {
                    host: "nope.localhost",
                },
                404,
                "unknown_host",
                "No app is served at nope.localhost",
            ),
            (
                Failure::NoInstances { app: "web" },
                503,
                "no_instances",
                "web has no running instances: scale it with <code>berth scale web=1 -a web</code>",
            ),
            (
                Failure::Unreachable { app: "web" },
                502,
                "connect_failed",
                "web could not be reached",
            ),
            (
                Failure::UpstreamBroken { app: "web" },
                502,
                "upstream_error",
                "web failed to answer",
            ),
            (
                Failure::UpstreamTimeout { app: "web" },
                504,
                "upstream_timeout",
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
