//! Where route stream lines come from: the [`RouteSource`] seam and its HTTP implementation.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use api_contract::RouteStreamLine;
use bytes::{Buf, BytesMut};
use futures_util::{Stream, StreamExt};

use crate::FollowError;

/// The lines of one open stream, in order; it ends when the connection does.
pub type LineStream = Pin<Box<dyn Stream<Item = Result<RouteStreamLine, FollowError>> + Send>>;

/// Opens route streams. [`HttpSource`] is the control plane's API; tests may feed lines from anywhere.
pub trait RouteSource: Send + Sync {
    /// A stream of lines that starts with the current table unless its version is `since`.
    fn open(&self, since: Option<u64>) -> impl Future<Output = Result<LineStream, FollowError>> + Send;
}

/// The largest line accepted: a table with 10,000 routes and their certificates stays far below it.
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// The API's `GET /v1/routes/watch`, authenticated with an admin token.
#[derive(Clone)]
pub struct HttpSource {
    client: reqwest::Client,
    watch_url: reqwest::Url,
    token: String,
}

impl std::fmt::Debug for HttpSource {
    /// Never prints the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSource")
            .field("watch_url", &self.watch_url.as_str())
            .finish_non_exhaustive()
    }
}

impl HttpSource {
    /// `api` is the API's base URL, such as `http://10.0.0.1:7070`.
    pub fn new(api: &str, token: impl Into<String>) -> Result<Self, FollowError> {
        let bad_url = || FollowError::BadUrl { url: api.to_owned() };
        let base = reqwest::Url::parse(api).map_err(|_| bad_url())?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(bad_url());
        }
        let watch_url = base.join("/v1/routes/watch").map_err(|_| bad_url())?;
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            // TCP keep-alive finds a dead peer even if no heartbeat timeout were set.
            .tcp_keepalive(Duration::from_secs(30))
            .build()
            .map_err(|source| FollowError::Connect {
                url: watch_url.to_string(),
                source,
            })?;
        Ok(Self {
            client,
            watch_url,
            token: token.into(),
        })
    }
}

impl RouteSource for HttpSource {
    async fn open(&self, since: Option<u64>) -> Result<LineStream, FollowError> {
        let mut url = self.watch_url.clone();
        if let Some(since) = since {
            url.query_pairs_mut().append_pair("since", &since.to_string());
        }
        let response = self
            .client
            .get(url)
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|source| FollowError::Connect {
                url: self.watch_url.to_string(),
                source,
            })?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            let message = serde_json::from_str::<api_contract::ErrorBody>(&body)
                .map(|e| e.error)
                .unwrap_or_else(|_| body.chars().take(200).collect());
            return Err(FollowError::Status {
                status: status.as_u16(),
                message,
            });
        }
        Ok(split_lines(
            response.bytes_stream().map(|r| r.map_err(FollowError::Read)),
        ))
    }
}

/// Turns a stream of byte chunks into parsed lines (blank lines skipped).
pub fn split_lines<S>(chunks: S) -> LineStream
where
    S: Stream<Item = Result<bytes::Bytes, FollowError>> + Send + 'static,
{
    let state = (Box::pin(chunks), BytesMut::new(), false);
    Box::pin(futures_util::stream::unfold(
        state,
        |(mut chunks, mut buffer, mut failed)| async move {
            if failed {
                return None;
            }
            loop {
                if let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                    let line = buffer.split_to(end);
                    buffer.advance(1);
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let parsed = serde_json::from_slice(&line).map_err(FollowError::BadLine);
                    failed = parsed.is_err();
                    return Some((parsed, (chunks, buffer, failed)));
                }
                if buffer.len() > MAX_LINE_BYTES {
                    return Some((
                        Err(FollowError::LineTooLong { max: MAX_LINE_BYTES }),
                        (chunks, buffer, true),
                    ));
                }
                match chunks.next().await? {
                    Ok(chunk) => buffer.extend_from_slice(&chunk),
                    Err(error) => return Some((Err(error), (chunks, buffer, true))),
                }
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    type Lines = Vec<Result<RouteStreamLine, String>>;

    async fn lines(chunks: &[&str]) -> Lines {
        let chunks: Vec<Result<Bytes, FollowError>> = chunks
            .iter()
            .map(|c| Ok(Bytes::copy_from_slice(c.as_bytes())))
            .collect();
        split_lines(futures_util::stream::iter(chunks))
            .map(|r| r.map_err(|e| e.to_string()))
            .collect()
            .await
    }

    #[tokio::test]
    async fn lines_split_across_and_within_chunks() {
        let hb = |version| Ok(RouteStreamLine::Heartbeat { version });
        let cases: Vec<(Vec<&str>, Lines)> = vec![
            (vec![], vec![]),
            (vec!["{\"heartbeat\":{\"version\":1}}\n"], vec![hb(1)]),
            (
                vec![
                    "{\"heartbeat\":{\"ver",
                    "sion\":2}}\n{\"heartbeat\":{\"version\":3}}\n",
                ],
                vec![hb(2), hb(3)],
            ),
            (vec!["\n\n{\"heartbeat\":{\"version\":4}}\n"], vec![hb(4)]),
            // An unfinished last line is dropped with the connection.
            (vec!["{\"heartbeat\":{\"version\":5}}\n{\"heart"], vec![hb(5)]),
            (
                vec!["{\"nonsense\":1}\n{\"heartbeat\":{\"version\":6}}\n"],
                vec![Err(
                    "the route stream sent a line that is not a route stream line".into(),
                )],
            ),
        ];
        for (chunks, want) in cases {
            assert_eq!(lines(&chunks).await, want, "{chunks:?}");
        }
    }

    #[test]
    fn urls_and_debug() {
        let source = HttpSource::new("http://127.0.0.1:7070", "berth_secret").unwrap();
        assert_eq!(source.watch_url.as_str(), "http://127.0.0.1:7070/v1/routes/watch");
        assert!(!format!("{source:?}").contains("berth_secret"));
        for bad in ["", "127.0.0.1:7070", "ftp://host", "not a url"] {
            assert!(HttpSource::new(bad, "t").is_err(), "{bad}");
        }
    }
}
