//! The HTTP side of the client verbs: one request, its errors turned into messages for people.

use std::time::Duration;

use anyhow::{anyhow, Context};
use api_contract::ErrorBody;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub struct Client {
    http: reqwest::Client,
    /// The API's URL without a trailing slash.
    base: String,
    token: String,
}

impl Client {
    pub fn new(api: &str, token: String) -> anyhow::Result<Self> {
        let base = api.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            anyhow::bail!("the API URL {api:?} must start with http:// or https://");
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // Config changes, rollbacks and restarts answer once the change serves, which the server waits
            // up to its rollout timeout (120 s) for.
            .timeout(Duration::from_secs(180))
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("setting up the HTTP client")?;
        Ok(Self { http, base, token })
    }

    /// The git remote of an app, on the same host as the API.
    pub fn git_url(&self, app: &str) -> String {
        format!("{}/git/{app}.git", self.base)
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let response = self.call(self.http.get(self.url(path))).await?;
        decode(response).await
    }

    pub async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        let response = self
            .call(self.http.request(method, self.url(path)).json(body))
            .await?;
        decode(response).await
    }

    /// POSTs `body` and returns the response for its body to be read as it streams (a deploy's progress); no
    /// overall timeout beyond `timeout`.
    pub async fn post_stream<B: Serialize>(
        &self,
        path: &str,
        body: &B,
        timeout: Duration,
    ) -> anyhow::Result<reqwest::Response> {
        self.call(self.http.post(self.url(path)).json(body).timeout(timeout))
            .await
    }

    /// GETs `path` and returns the response for its body to be read as it streams (logs).
    pub async fn get_stream(&self, path: &str, timeout: Duration) -> anyhow::Result<reqwest::Response> {
        self.call(self.http.get(self.url(path)).timeout(timeout)).await
    }

    /// POSTs `body` asking to switch the connection to `protocol`; returns the connection once the API has
    /// agreed (`101`). No timeout: the session lasts as long as its command.
    pub async fn upgrade<B: Serialize>(
        &self,
        path: &str,
        body: &B,
        protocol: &'static str,
    ) -> anyhow::Result<reqwest::Upgraded> {
        let request = self
            .http
            .post(self.url(path))
            .header(reqwest::header::CONNECTION, "upgrade")
            .header(reqwest::header::UPGRADE, protocol)
            .json(body)
            .timeout(Duration::from_secs(365 * 24 * 3600));
        let response = self.send_authorized(request).await?;
        let status = response.status();
        if status != StatusCode::SWITCHING_PROTOCOLS {
            let text = response.text().await.unwrap_or_default();
            if status.is_success() {
                anyhow::bail!(
                    "the API answered {status} instead of switching to {protocol} (an older server?)"
                );
            }
            return Err(anyhow!(api_error_message(status, &text)));
        }
        response.upgrade().await.with_context(|| {
            format!(
                "switching the connection to the API at {} to {protocol}",
                self.base
            )
        })
    }

    /// PUTs `body`; the answer (204, no body) is not read.
    pub async fn put<B: Serialize>(&self, path: &str, body: &B) -> anyhow::Result<()> {
        self.call(self.http.put(self.url(path)).json(body)).await?;
        Ok(())
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<()> {
        self.call(self.http.delete(self.url(path))).await?;
        Ok(())
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends the request with the token; a non-2xx answer becomes an error carrying the API's message.
    async fn call(&self, request: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        let response = self.send_authorized(request).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        Err(anyhow!(api_error_message(status, &text)))
    }

    /// Sends the request with the token, whatever the answer's status.
    async fn send_authorized(&self, request: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        request
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|err| self.transport_error(err))
    }

    fn transport_error(&self, err: reqwest::Error) -> anyhow::Error {
        if err.is_connect() {
            anyhow!(
                "cannot reach the Berth API at {}: is `berth server` running?",
                self.base
            )
        } else if err.is_timeout() {
            anyhow!("the Berth API at {} did not answer in time", self.base)
        } else if err.is_builder() {
            // Most often a token with characters that cannot go in a header.
            anyhow!(
                "cannot build the request to {} (check the API URL and the token)",
                self.base
            )
        } else {
            anyhow::Error::new(err).context(format!("talking to the Berth API at {}", self.base))
        }
    }
}

/// The API's own message when the body is an `ErrorBody`, otherwise the status and the start of the body.
fn api_error_message(status: StatusCode, body: &str) -> String {
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(ErrorBody { error }) => error,
        Err(_) => {
            let snippet: String = body.trim().chars().take(200).collect();
            if snippet.is_empty() {
                format!("the API answered {status}")
            } else {
                format!("the API answered {status}: {snippet}")
            }
        }
    }
}

async fn decode<T: DeserializeOwned>(response: reqwest::Response) -> anyhow::Result<T> {
    let bytes = response.bytes().await.context("reading the API's answer")?;
    serde_json::from_slice(&bytes)
        .context("the API's answer is not what this berth expects (version mismatch?)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages() {
        assert_eq!(
            api_error_message(StatusCode::NOT_FOUND, r#"{"error":"app \"x\" not found"}"#),
            "app \"x\" not found"
        );
        assert_eq!(
            api_error_message(StatusCode::BAD_GATEWAY, "<html>bad</html>"),
            "the API answered 502 Bad Gateway: <html>bad</html>"
        );
        assert_eq!(
            api_error_message(StatusCode::METHOD_NOT_ALLOWED, ""),
            "the API answered 405 Method Not Allowed"
        );
    }

    #[test]
    fn urls() {
        let client = Client::new("http://127.0.0.1:7070/", "t".to_owned()).unwrap();
        assert_eq!(client.git_url("shop"), "http://127.0.0.1:7070/git/shop.git");
        assert_eq!(client.url("/v1/apps"), "http://127.0.0.1:7070/v1/apps");
        assert!(Client::new("127.0.0.1:7070", "t".to_owned()).is_err());
    }

    #[tokio::test]
    async fn refused_connection_says_what_to_do() {
        // A port that was just free: bind, note it, drop the listener.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = Client::new(&format!("http://127.0.0.1:{port}"), "t".to_owned()).unwrap();
        let err = client
            .get::<serde_json::Value>("/v1/apps")
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!("cannot reach the Berth API at http://127.0.0.1:{port}: is `berth server` running?")
        );
    }
}
