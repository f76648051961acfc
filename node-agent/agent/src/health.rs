//! A starting instance's HTTP health check: a minimal HTTP/1.1 `GET` over a TCP connection from the node to the
//! instance's address. Only the status line is read; redirects are not followed (a 3xx fails, like Dokku).

use std::net::SocketAddr;
use std::time::Duration;

use agent_contract::HealthCheck;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The most of a response read while looking for the end of its status line.
const MAX_STATUS_LINE: usize = 8 * 1024;

/// Runs `check` against `target` until an attempt passes, reporting each failed attempt to `failed` (with its
/// 1-based number); returns the last attempt's error once all have failed.
pub(crate) async fn run(
    check: &HealthCheck,
    target: SocketAddr,
    host: &str,
    mut failed: impl FnMut(u32, &str),
) -> Result<(), String> {
    let attempts = check.attempts.max(1);
    let timeout = Duration::from_secs(check.timeout_secs.max(1).into());
    let mut last = String::new();
    for attempt in 1..=attempts {
        match tokio::time::timeout(timeout, attempt_once(target, host, &check.path)).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(error)) => last = error,
            Err(_) => last = format!("no answer within {} s", timeout.as_secs()),
        }
        failed(attempt, &last);
        if attempt < attempts {
            tokio::time::sleep(Duration::from_secs(check.wait_secs.into())).await;
        }
    }
    Err(last)
}

/// Waits until a process of the instance takes a request: `GET /` answered with any status, or the connection
/// closed by the app after it read the request. A port that accepts connections proves only that the kernel
/// completes handshakes: gunicorn, puma or unicorn bind it in their master before any worker has loaded the
/// app, and requests routed there would wait for the workers' boot. Tried again after `retry` while the
/// connection is refused or reset, or nothing answers within `patience`; the caller bounds the whole wait
/// (the boot timeout).
pub(crate) async fn answers(target: SocketAddr, host: &str, patience: Duration, retry: Duration) -> u16 {
    loop {
        match tokio::time::timeout(patience, status_of(target, host, "/")).await {
            Ok(Ok(code)) => return code.0,
            Ok(Err(Unanswered::Closed)) => return 0,
            Ok(Err(Unanswered::Failed(_))) | Err(_) => tokio::time::sleep(retry).await,
        }
    }
}

async fn attempt_once(target: SocketAddr, host: &str, path: &str) -> Result<(), String> {
    let (code, reason) = status_of(target, host, path).await.map_err(|e| match e {
        Unanswered::Closed => "connection closed without a response".to_owned(),
        Unanswered::Failed(error) => error,
    })?;
    if (200..300).contains(&code) {
        Ok(())
    } else if (300..400).contains(&code) {
        Err(format!("{code} {reason} (redirects are not followed)"))
    } else {
        Err(format!("{code} {reason}"))
    }
}

/// Why a request got no status line.
enum Unanswered {
    /// The app closed the connection cleanly without answering.
    Closed,
    Failed(String),
}

/// Sends `GET path` and reads the response's status line.
async fn status_of(target: SocketAddr, host: &str, path: &str) -> Result<(u16, String), Unanswered> {
    let failed = Unanswered::Failed;
    let mut stream = tokio::net::TcpStream::connect(target)
        .await
        .map_err(|e| failed(format!("connecting: {e}")))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: berth-health-check\r\nAccept: */*\r\n\
         Connection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| failed(format!("sending the request: {e}")))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < MAX_STATUS_LINE {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| failed(format!("reading the response: {e}")))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    if head.is_empty() {
        return Err(Unanswered::Closed);
    }
    status_line(&head).map_err(failed)
}

/// The status code and reason phrase of a response that starts with `head`.
fn status_line(head: &[u8]) -> Result<(u16, String), String> {
    if head.is_empty() {
        return Err("connection closed without a response".into());
    }
    let end = head
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or_else(|| "response has no complete status line".to_owned())?;
    let line = String::from_utf8_lossy(&head[..end]);
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    let reason = parts.next().unwrap_or_default().trim();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1 response: {:?}", truncate(&line)));
    }
    let code = code
        .parse::<u16>()
        .ok()
        .filter(|c| (100..1000).contains(c))
        .ok_or_else(|| format!("bad status line: {:?}", truncate(&line)))?;
    Ok((code, reason.to_owned()))
}

fn truncate(line: &str) -> String {
    line.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::status_line;

    #[test]
    fn status_lines() {
        type Case = (&'static [u8], Result<(u16, &'static str), &'static str>);
        let cases: &[Case] = &[
            (b"HTTP/1.1 200 OK\r\n\r\n", Ok((200, "OK"))),
            (
                b"HTTP/1.0 204 No Content\r\nServer: x\r\n",
                Ok((204, "No Content")),
            ),
            (
                b"HTTP/1.1 500 Internal Server Error\r\n",
                Ok((500, "Internal Server Error")),
            ),
            (b"HTTP/1.1 302 Found\r\nLocation: /\r\n", Ok((302, "Found"))),
            // A reason phrase is optional.
            (b"HTTP/1.1 200\r\n", Ok((200, ""))),
            (b"", Err("connection closed without a response")),
            (b"HTTP/1.1 200 OK", Err("response has no complete status line")),
            (
                b"SSH-2.0-OpenSSH\r\n",
                Err("not an HTTP/1 response: \"SSH-2.0-OpenSSH\""),
            ),
            (
                b"HTTP/1.1 abc OK\r\n",
                Err("bad status line: \"HTTP/1.1 abc OK\""),
            ),
            (
                b"HTTP/1.1 42 Odd\r\n",
                Err("bad status line: \"HTTP/1.1 42 Odd\""),
            ),
        ];
        for (head, want) in cases {
            let got = status_line(head);
            let want = want.map(|(c, r)| (c, r.to_owned())).map_err(str::to_owned);
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(head));
        }
    }
}

#[cfg(test)]
mod answers_tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A listener that is bound (the kernel completes handshakes into its backlog) but whose "workers" take a
    /// while to accept, as gunicorn's master before its workers booted; then it answers `reply` (or closes).
    async fn late_server(reply: &'static [u8]) -> (std::net::SocketAddr, Arc<AtomicBool>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicBool::new(false));
        let flag = accepted.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let (mut conn, _) = listener.accept().await.unwrap();
            flag.store(true, Ordering::SeqCst);
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf).await;
            conn.write_all(reply).await.unwrap();
        });
        (addr, accepted)
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn an_instance_is_ready_only_once_a_process_took_the_request() {
        runtime().block_on(async {
            let cases: [(&[u8], u16); 3] = [
                (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 200),
                // Any answer will do: the app is up, whatever it says about `/`.
                (b"HTTP/1.1 404 Not Found\r\n\r\n", 404),
                // Closed after reading the request: a process took it.
                (b"", 0),
            ];
            for (reply, want) in cases {
                let (addr, accepted) = late_server(reply).await;
                let got =
                    super::answers(addr, "app", Duration::from_secs(30), Duration::from_millis(10)).await;
                assert_eq!(got, want);
                assert!(
                    accepted.load(Ordering::SeqCst),
                    "ready before the app accepted the connection"
                );
            }
        });
    }

    #[test]
    fn a_refused_connection_is_tried_again() {
        runtime().block_on(async {
            // Nothing listens yet; the server comes up after a few refused tries.
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            let up = Arc::new(AtomicBool::new(false));
            let flag = up.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
                flag.store(true, Ordering::SeqCst);
                let (mut conn, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf).await;
                conn.write_all(b"HTTP/1.0 200 OK\r\n\r\n").await.unwrap();
            });
            let got = super::answers(addr, "app", Duration::from_secs(30), Duration::from_millis(20)).await;
            assert_eq!(got, 200);
            assert!(up.load(Ordering::SeqCst));
        });
    }
}
