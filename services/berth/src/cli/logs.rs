//! `berth logs -a NAME [-n N] [-f] [--ps web.1] [--source app|router|berth]` and `berth events -a NAME`.

use std::io::Write;

use api_contract::{EventInfo, LogLine, LOG_KEEPALIVE_LINE};
use vocabulary::AppName;

use super::client::Client;
use super::image_deploy::LineSplitter;

/// How long `berth logs -f` may stay connected: as long as someone watches.
const FOLLOW_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);

/// What `berth logs` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogsRequest {
    pub lines: usize,
    pub follow: bool,
    pub ps: Option<String>,
    pub source: Option<String>,
}

impl LogsRequest {
    /// The API path with its query.
    pub fn path(&self, app: &AppName) -> String {
        let mut path = format!("/v1/apps/{app}/logs?lines={}", self.lines);
        if self.follow {
            path.push_str("&follow=true");
        }
        // Names of processes and sources are plain words (the API refuses anything else), so no escaping.
        for (key, value) in [("ps", &self.ps), ("source", &self.source)] {
            if let Some(value) = value {
                path.push_str(&format!("&{key}={}", encode_query(value)));
            }
        }
        path
    }
}

/// Percent-encodes everything but unreserved characters.
pub(crate) fn encode_query(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One NDJSON line of the stream as printed (`TIMESTAMP SOURCE[PROCESS]: TEXT`); `None` for keep-alives.
pub fn render(line: &str) -> Option<String> {
    if line.is_empty() || line == LOG_KEEPALIVE_LINE {
        return None;
    }
    match serde_json::from_str::<LogLine>(line) {
        Ok(line) => Some(line.to_string()),
        Err(_) => Some(format!("(unreadable line: {line})")),
    }
}

/// Prints the app's log lines as they arrive; with `follow`, until the server closes the stream.
pub async fn logs(client: &Client, app: &AppName, request: &LogsRequest) -> anyhow::Result<()> {
    let timeout = if request.follow {
        FOLLOW_TIMEOUT
    } else {
        std::time::Duration::from_secs(120)
    };
    let mut response = client.get_stream(&request.path(app), timeout).await?;
    let mut splitter = LineSplitter::default();
    let mut stdout = std::io::stdout();
    while let Some(chunk) = response.chunk().await? {
        for line in splitter.push(&chunk) {
            if let Some(text) = render(&line) {
                writeln!(stdout, "{text}")?;
            }
        }
        // Followers see each line as it comes, also when stdout is a pipe.
        stdout.flush()?;
    }
    if let Some(text) = splitter.finish().as_deref().and_then(render) {
        writeln!(stdout, "{text}")?;
    }
    Ok(())
}

/// `berth events`: one line per event, newest first.
pub fn events(events: &[EventInfo]) -> String {
    if events.is_empty() {
        return "No events yet.\n".to_owned();
    }
    events
        .iter()
        .map(|e| {
            format!(
                "{}  {:<15} {}  (by {})\n",
                e.at.format("%Y-%m-%dT%H:%M:%SZ"),
                e.kind,
                e.description,
                e.actor
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let app = AppName::new("shop").unwrap();
        let req = |lines, follow, ps: Option<&str>, source: Option<&str>| LogsRequest {
            lines,
            follow,
            ps: ps.map(Into::into),
            source: source.map(Into::into),
        };
        let cases = [
            (req(100, false, None, None), "/v1/apps/shop/logs?lines=100"),
            (
                req(5, true, Some("web.1"), Some("app")),
                "/v1/apps/shop/logs?lines=5&follow=true&ps=web.1&source=app",
            ),
            (
                req(1, false, Some("a b&c"), None),
                "/v1/apps/shop/logs?lines=1&ps=a%20b%26c",
            ),
        ];
        for (request, want) in cases {
            assert_eq!(request.path(&app), want);
        }
    }

    #[test]
    fn rendering() {
        let line = r#"{"at":"2026-11-30T01:02:03Z","source":"app","process":"web.1","text":"hi"}"#;
        assert_eq!(
            render(line).unwrap(),
            "2026-11-30T01:02:03.000000Z app[web.1]: hi"
        );
        assert_eq!(render(LOG_KEEPALIVE_LINE), None);
        assert_eq!(render("nonsense").unwrap(), "(unreadable line: nonsense)");
    }
}
