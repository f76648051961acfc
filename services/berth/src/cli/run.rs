//! `berth run -a NAME [--detach] [--size SIZE] -- COMMAND ARGS`: a one-off instance of the app's current release
//! running COMMAND. Attached, the request is upgraded to a framed session (`api_contract::attach`): stdin goes
//! up, stdout and stderr come down, and `berth` exits with the command's code. When stdin and stdout are a
//! terminal, the command gets one too: the local terminal is put in raw mode (restored on every way out) and
//! its size follows the window's. `--detach` only starts it; its output goes to the app's log.

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;

use anyhow::{bail, Context};
use api_contract::attach::{Decoder, Frame, PROTOCOL};
use api_contract::{RunRequest, RunStarted, TerminalSize};
use reqwest::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::client::Client;

/// What `berth run` was asked.
pub struct Run {
    pub app: vocabulary::AppName,
    pub command: Vec<String>,
    pub detach: bool,
    pub memory_mib: Option<u64>,
}

/// Parses a one-off's size: `512M`, `1G`, `512MiB`, `2GB` or a number of MiB.
pub fn parse_size(arg: &str) -> Result<u64, String> {
    let lower = arg.trim().to_ascii_lowercase();
    let digits = lower.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &lower[digits.len()..];
    let scale = match unit {
        "" | "m" | "mb" | "mib" => 1,
        "g" | "gb" | "gib" => 1024,
        _ => 0,
    };
    match digits.parse::<u64>() {
        Ok(n) if scale > 0 && n > 0 => Ok(n * scale),
        _ => Err(format!("expected a size such as 512M or 1G, got {arg:?}")),
    }
}

pub async fn run(client: &Client, run: Run) -> anyhow::Result<ExitCode> {
    if run.command.is_empty() {
        bail!(
            "no command: give one after --, such as `berth run -a {} -- bash`",
            run.app
        );
    }
    let path = format!("/v1/apps/{}/runs", run.app);
    let shown = controller::shell_join(&run.command);
    if run.detach {
        let request = RunRequest {
            command: run.command,
            detach: true,
            memory_mib: run.memory_mib,
            terminal: None,
        };
        let started: RunStarted = client.send(Method::POST, &path, &request).await?;
        println!(
            "Running `{shown}` on {} in the background as {}",
            run.app, started.name
        );
        println!(
            "Its output goes to the app's log: berth logs -a {} --ps {}",
            run.app, started.name
        );
        return Ok(ExitCode::SUCCESS);
    }
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let request = RunRequest {
        command: run.command,
        detach: false,
        memory_mib: run.memory_mib,
        // A terminal that does not know its size (a pseudo-terminal nobody sized) gets the classic 24x80.
        terminal: tty.then(|| window_size().unwrap_or(TerminalSize { rows: 24, cols: 80 })),
    };
    let upgraded = client.upgrade(&path, &request, PROTOCOL).await?;
    let _raw = if tty { Some(RawMode::enable()?) } else { None };
    let code = session(upgraded, &shown, run.app.as_str(), tty).await?;
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// Carries the session until the command's exit code arrives: frames down here, stdin and window sizes up in a
/// task of their own (so that a command not reading its stdin never stops its output from coming).
async fn session(upgraded: reqwest::Upgraded, shown: &str, app: &str, tty: bool) -> anyhow::Result<i32> {
    let (mut reader, writer) = tokio::io::split(upgraded);
    let resized = window_changes()?;
    let mut upstream = tokio::spawn(upstream(writer, stdin_chunks(), resized));
    let mut decoder = Decoder::default();
    let mut buf = vec![0u8; 16 * 1024];
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    let mut upstream_done = false;
    let result = loop {
        let n = tokio::select! {
            read = reader.read(&mut buf) => read.context("reading from the API")?,
            sent = &mut upstream, if !upstream_done => {
                upstream_done = true;
                match sent {
                    Ok(Ok(())) => continue,
                    Ok(Err(e)) => break Err(e),
                    Err(e) => break Err(anyhow::anyhow!("sending to the API failed: {e}")),
                }
            }
        };
        if n == 0 {
            break Err(anyhow::anyhow!(
                "the connection to the API closed before the command ended"
            ));
        }
        decoder.push(&buf[..n]);
        let mut code = None;
        while let Some(frame) = decoder.next_frame().context("reading the session")? {
            match frame {
                Frame::Started(name) => {
                    let end = if tty { "\r\n" } else { "\n" };
                    let _ = write!(stderr, "Running `{shown}` on {app}... up, {name}{end}");
                }
                Frame::Stdout(bytes) => {
                    let _ = stdout.write_all(&bytes);
                    let _ = stdout.flush();
                }
                Frame::Stderr(bytes) => {
                    let _ = stderr.write_all(&bytes);
                }
                Frame::Exit(exit) => code = Some(exit),
                other => bail!("the API sent an unexpected frame {other:?}"),
            }
        }
        if let Some(code) = code {
            break Ok(code);
        }
    };
    upstream.abort();
    result
}

/// Stdin's chunks, its end, and the window's new sizes, as frames to the API.
async fn upstream(
    mut writer: impl tokio::io::AsyncWrite + Unpin,
    mut stdin: mpsc::Receiver<Vec<u8>>,
    mut resized: mpsc::Receiver<()>,
) -> anyhow::Result<()> {
    let mut stdin_open = true;
    loop {
        let frame = tokio::select! {
            chunk = stdin.recv(), if stdin_open => match chunk {
                Some(bytes) => Frame::Stdin(bytes),
                None => {
                    stdin_open = false;
                    Frame::StdinClosed
                }
            },
            Some(()) = resized.recv() => match window_size() {
                Some(size) => Frame::Resize { rows: size.rows, cols: size.cols },
                None => continue,
            },
            else => return Ok(()),
        };
        writer
            .write_all(&frame.encode())
            .await
            .context("sending to the API")?;
    }
}

/// Standard input in chunks, read on a thread of its own (a blocked read must not keep the process from
/// exiting once the command ends); `None` at its end.
fn stdin_chunks() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

/// A message on every SIGWINCH.
fn window_changes() -> anyhow::Result<mpsc::Receiver<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut winch = signal(SignalKind::window_change()).context("watching the window's size")?;
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        while winch.recv().await.is_some() {
            let _ = tx.try_send(());
        }
    });
    Ok(rx)
}

/// The local terminal's size (from stdout), if it is one.
fn window_size() -> Option<TerminalSize> {
    // SAFETY: all-zero is a valid `winsize`.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one `winsize` to the pointer, which outlives the call.
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_row > 0 && ws.ws_col > 0).then_some(TerminalSize {
        rows: ws.ws_row,
        cols: ws.ws_col,
    })
}

/// The local terminal in raw mode (keys go to the command as typed, Ctrl-C included) until dropped, which
/// restores it, on every way out of `berth run` (errors and panics included).
struct RawMode {
    saved: nix::sys::termios::Termios,
}

impl RawMode {
    fn enable() -> anyhow::Result<Self> {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).context("reading the terminal's mode")?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&stdin, SetArg::TCSANOW, &raw).context("putting the terminal in raw mode")?;
        Ok(Self { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        use nix::sys::termios::{tcsetattr, SetArg};
        let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.saved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let cases = [
            ("512M", Ok(512)),
            ("512", Ok(512)),
            ("1G", Ok(1024)),
            ("2GB", Ok(2048)),
            ("256MiB", Ok(256)),
            ("1g", Ok(1024)),
        ];
        for (arg, want) in cases {
            assert_eq!(parse_size(arg), want, "{arg}");
        }
        for bad in ["", "M", "0", "-1M", "1T", "1.5G", "standard-2x"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
