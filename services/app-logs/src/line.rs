//! The pure parts: making a line from raw bytes, filtering, keeping the last N.

use std::collections::VecDeque;

use api_contract::{LogLine, LogSource};
use chrono::Utc;

/// Longer lines are cut here (at a character boundary) and end with `…`: one line can never take much of an
/// app's kept log.
pub const MAX_TEXT_BYTES: usize = 2048;

/// A line stamped now, its text made safe to keep: lossy UTF-8, the trailing newline (and `\r`) removed,
/// bounded to [`MAX_TEXT_BYTES`].
pub fn line(source: LogSource, process: impl Into<String>, text: &[u8]) -> LogLine {
    LogLine {
        at: Utc::now(),
        source,
        process: process.into(),
        text: clean_text(text),
    }
}

/// See [`line`].
pub fn clean_text(text: &[u8]) -> String {
    let mut end = text.len();
    while end > 0 && matches!(text[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    let text = String::from_utf8_lossy(&text[..end]);
    if text.len() <= MAX_TEXT_BYTES {
        return text.into_owned();
    }
    let mut cut = MAX_TEXT_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}

/// The platform's marker for lines that were lost: by a full queue, or by a follower that fell behind.
pub fn dropped_marker(count: u64) -> LogLine {
    line(
        LogSource::Berth,
        "logs",
        format!("{count} lines dropped").as_bytes(),
    )
}

/// Which lines a reader wants (`--ps`, `--source`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// `web.1`, or `web` for every instance of the type.
    pub process: Option<String>,
    pub source: Option<LogSource>,
}

impl Filter {
    pub fn matches(&self, line: &LogLine) -> bool {
        let process_ok = match &self.process {
            None => true,
            Some(want) => {
                line.process == *want
                    || (!want.contains('.')
                        && line
                            .process
                            .strip_prefix(want.as_str())
                            .is_some_and(|rest| rest.starts_with('.')))
            }
        };
        process_ok && self.source.is_none_or(|s| s == line.source)
    }
}

/// The last `n` lines of `lines` that `filter` lets through, oldest first.
pub fn last_matching(lines: impl IntoIterator<Item = LogLine>, filter: &Filter, n: usize) -> Vec<LogLine> {
    let mut kept = VecDeque::with_capacity(n.min(4096));
    if n == 0 {
        return Vec::new();
    }
    for line in lines.into_iter().filter(|l| filter.matches(l)) {
        if kept.len() == n {
            kept.pop_front();
        }
        kept.push_back(line);
    }
    kept.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cleaned_and_bounded() {
        let long = "é".repeat(MAX_TEXT_BYTES);
        let cases: Vec<(&[u8], String)> = vec![
            (b"hello\n", "hello".into()),
            (b"crlf\r\n", "crlf".into()),
            (b"no newline", "no newline".into()),
            (b"\n", String::new()),
            (b"bad \xff byte\n", "bad \u{fffd} byte".into()),
            (b"inner\nnewline\n", "inner\nnewline".into()),
            (long.as_bytes(), format!("{}…", "é".repeat(MAX_TEXT_BYTES / 2))),
        ];
        for (raw, want) in cases {
            assert_eq!(clean_text(raw), want, "{raw:?}");
        }
        assert!(clean_text(&[b'x'; 10_000]).len() <= MAX_TEXT_BYTES + '…'.len_utf8());
    }

    fn at(source: LogSource, process: &str, text: &str) -> LogLine {
        line(source, process, text.as_bytes())
    }

    #[test]
    fn filters() {
        let web1 = at(LogSource::App, "web.1", "a");
        let web12 = at(LogSource::App, "web.12", "b");
        let worker = at(LogSource::App, "worker.1", "c");
        let router = at(LogSource::Router, "", "d");
        let deploy = at(LogSource::Berth, "deploy", "e");
        let webby = at(LogSource::App, "webby.1", "f");
        let all = [&web1, &web12, &worker, &router, &deploy, &webby];
        let filter = |process: Option<&str>, source| Filter {
            process: process.map(Into::into),
            source,
        };
        let cases = [
            (filter(None, None), vec!["a", "b", "c", "d", "e", "f"]),
            (filter(Some("web.1"), None), vec!["a"]),
            (filter(Some("web"), None), vec!["a", "b"]),
            (filter(None, Some(LogSource::Router)), vec!["d"]),
            (filter(None, Some(LogSource::Berth)), vec!["e"]),
            (filter(Some("deploy"), Some(LogSource::Berth)), vec!["e"]),
            (filter(Some("web"), Some(LogSource::Router)), vec![]),
        ];
        for (f, want) in cases {
            let got: Vec<&str> = all
                .iter()
                .filter(|l| f.matches(l))
                .map(|l| l.text.as_str())
                .collect();
            assert_eq!(got, want, "{f:?}");
        }
    }

    #[test]
    fn keeps_the_last_n_matching() {
        let lines: Vec<LogLine> = (0..10)
            .map(|i| {
                at(
                    if i % 2 == 0 {
                        LogSource::App
                    } else {
                        LogSource::Router
                    },
                    "web.1",
                    &i.to_string(),
                )
            })
            .collect();
        let texts = |v: Vec<LogLine>| v.into_iter().map(|l| l.text).collect::<Vec<_>>();
        let apps = Filter {
            source: Some(LogSource::App),
            ..Filter::default()
        };
        assert_eq!(texts(last_matching(lines.clone(), &apps, 3)), ["4", "6", "8"]);
        assert_eq!(
            texts(last_matching(lines.clone(), &Filter::default(), 2)),
            ["8", "9"]
        );
        assert_eq!(texts(last_matching(lines.clone(), &apps, 100)).len(), 5);
        assert!(last_matching(lines, &apps, 0).is_empty());
        assert_eq!(
            dropped_marker(7).to_string().split_once(' ').unwrap().1,
            "berth[logs]: 7 lines dropped"
        );
    }
}
