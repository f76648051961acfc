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

async fn attempt_once(target: SocketAddr, host: &str, path: &str) -> Result<(), String> {
    let mut stream = tokio::net::TcpStream::connect(target)
        .await
        .map_err(|e| format!("connecting: {e}"))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: berth-health-check\r\nAccept: */*\r\n\
         Connection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("sending the request: {e}"))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < MAX_STATUS_LINE {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| format!("reading the response: {e}"))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let (code, reason) = status_line(&head)?;
    if (200..300).contains(&code) {
        Ok(())
    } else if (300..400).contains(&code) {
        Err(format!("{code} {reason} (redirects are not followed)"))
    } else {
        Err(format!("{code} {reason}"))
    }
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
