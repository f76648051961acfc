//! One-off runs: one instance of a release running a command once, attached to its caller through channels
//! (stdin in; stdout, stderr and the exit out), on pipes or on a pseudo-terminal. Set up and torn down by the
//! same code as any instance (layers, disk, cgroup, network, user namespace), never restarted, killed when
//! asked or when the caller drops its input sender, and removed when it exits. Its output also goes to the
//! app's log under its name (`run.3`).

use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Stdio;
use std::sync::Arc;

use agent_contract::{
    ExitReason, OneOffExit, OneOffInput, OneOffOutput, OneOffRequest, OneOffSession, OutputLine, WindowSize,
};
use nix::sys::signal::Signal;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

use crate::instance::{error_chain, exit_reason, Ending, Supervisor};
use crate::{output, AgentError, Shared};

/// Bytes read from the app at once.
const CHUNK: usize = 16 * 1024;

/// What keeps the agent's shutdown waiting until every one-off is gone, and tells them to stop.
#[derive(Clone)]
pub(crate) struct Tracker {
    pub(crate) stop: watch::Receiver<bool>,
    /// Held by each one-off's task; the agent waits until every clone is dropped.
    pub(crate) alive: mpsc::Sender<()>,
}

/// Sets the one-off up and starts it; returns once it runs (or why it could not start, with everything it
/// had acquired released).
pub(crate) async fn start(
    shared: Arc<Shared>,
    request: OneOffRequest,
    tracker: Tracker,
) -> Result<OneOffSession, AgentError> {
    let mut sup = Supervisor::one_off(shared, request.spec);
    let started = async {
        sup.prepare().await?;
        let spec = sup.container_spec();
        let (stdio, ends) = match request.terminal {
            Some(size) => terminal(size)?,
            None => pipes(),
        };
        let container = container::spawn_attached(&sup.init_program(), &spec, stdio).await?;
        Ok::<_, AgentError>((container, ends))
    }
    .await;
    let (container, ends) = match started {
        Ok(started) => started,
        Err(e) => {
            tracing::warn!(app = %sup.spec.app, instance = %sup.short, error = %error_chain(&e), "one-off failed to start");
            sup.release().await;
            return Err(e);
        }
    };
    tracing::info!(app = %sup.spec.app, instance = %sup.short, process = %sup.spec.dyno_name(), "one-off started");
    sup.platform_line(format!("Starting process with command `{}`", sup.spec.command));
    let (input_tx, input) = mpsc::channel(64);
    let (output, output_rx) = mpsc::channel(64);
    tokio::spawn(run(sup, container, ends, input, output, tracker));
    Ok(OneOffSession {
        input: input_tx,
        output: output_rx,
    })
}

/// The caller's side of the app's standard streams.
enum Ends {
    Pipes,
    /// The pseudo-terminal's master, for reading, writing and resizing.
    Terminal(OwnedFd),
}

fn pipes() -> (container::Attached, Ends) {
    (
        container::Attached {
            stdin: Stdio::piped(),
            stdout: Stdio::piped(),
            stderr: Stdio::piped(),
            terminal: false,
        },
        Ends::Pipes,
    )
}

fn terminal(size: WindowSize) -> Result<(container::Attached, Ends), AgentError> {
    let io = |source: std::io::Error| AgentError::Io {
        path: "/dev/ptmx".into(),
        source,
    };
    let pty = nix::pty::openpty(Some(&winsize(size)), None).map_err(|e| io(e.into()))?;
    let dup = |fd: &OwnedFd| fd.try_clone().map_err(io);
    let attached = container::Attached {
        stdin: Stdio::from(dup(&pty.slave)?),
        stdout: Stdio::from(dup(&pty.slave)?),
        stderr: Stdio::from(pty.slave),
        terminal: true,
    };
    Ok((attached, Ends::Terminal(pty.master)))
}

fn winsize(size: WindowSize) -> nix::pty::Winsize {
    nix::pty::Winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

fn resize(master: &OwnedFd, size: WindowSize) {
    let ws = winsize(size);
    // SAFETY: TIOCSWINSZ reads one `winsize` from the pointer, which outlives the call.
    unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
}

type Reader = Box<dyn AsyncRead + Send + Unpin>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

async fn run(
    mut sup: Supervisor,
    mut c: container::Container,
    ends: Ends,
    mut input: mpsc::Receiver<OneOffInput>,
    output: mpsc::Sender<OneOffOutput>,
    mut tracker: Tracker,
) {
    let oom_kills_before = sup.cgroup().map_or(0, |c| c.oom_kills());
    let (stdin, readers, master): (Option<Writer>, Vec<(bool, Reader)>, Option<OwnedFd>) = match ends {
        Ends::Pipes => {
            let stdin = c.child.stdin.take().map(|w| Box::new(w) as Writer);
            let mut readers = Vec::new();
            if let Some(r) = c.child.stdout.take() {
                readers.push((false, Box::new(r) as Reader));
            }
            if let Some(r) = c.child.stderr.take() {
                readers.push((true, Box::new(r) as Reader));
            }
            (stdin, readers, None)
        }
        Ends::Terminal(master) => {
            let open = |fd: &OwnedFd| fd.try_clone().map(|fd| tokio::fs::File::from_std(fd.into()));
            match (open(&master), open(&master)) {
                (Ok(w), Ok(r)) => (
                    Some(Box::new(w) as Writer),
                    vec![(false, Box::new(r) as Reader)],
                    Some(master),
                ),
                _ => (None, Vec::new(), Some(master)),
            }
        }
    };
    let pumps: Vec<_> = readers
        .into_iter()
        .map(|(is_stderr, reader)| tokio::spawn(pump(reader, is_stderr, output.clone(), sup.forwarder())))
        .collect();
    // Stdin is written by a task of its own, so that an app that does not read it never holds up this loop
    // (its exit, a kill); what waits for room is held here, and no more input is taken meanwhile.
    let (stdin_tx, stdin_rx) = mpsc::channel::<Option<Vec<u8>>>(16);
    let writer = stdin.map(|w| tokio::spawn(write_stdin(w, stdin_rx)));
    let on_terminal = master.is_some();
    let mut pending: Option<Option<Vec<u8>>> = None;
    let mut killed = false;
    let status = loop {
        tokio::select! {
            status = c.wait() => break status,
            permit = stdin_tx.reserve(), if pending.is_some() => match permit {
                Ok(permit) => permit.send(pending.take().expect("pending")),
                // The app closed its stdin: what it did not read is dropped.
                Err(_) => pending = None,
            },
            message = input.recv(), if !killed && pending.is_none() => match message {
                Some(OneOffInput::Stdin(bytes)) => pending = Some(Some(bytes)),
                // On a terminal the app reads until the user's Ctrl-D; its writer stays.
                Some(OneOffInput::StdinClosed) if !on_terminal => pending = Some(None),
                Some(OneOffInput::StdinClosed) => {}
                Some(OneOffInput::Resize(size)) => {
                    if let Some(m) = &master {
                        resize(m, size);
                    }
                }
                Some(OneOffInput::Kill) | None => {
                    tracing::info!(app = %sup.spec.app, instance = %sup.short, "killing one-off: its caller asked or went away");
                    kill(&sup, &c);
                    killed = true;
                }
            },
            // The caller dropped its session (even while its input waits for room).
            _ = output.closed(), if !killed => {
                tracing::info!(app = %sup.spec.app, instance = %sup.short, "killing one-off: its caller went away");
                kill(&sup, &c);
                killed = true;
            }
            _ = tracker.stop.changed(), if !killed => {
                kill(&sup, &c);
                killed = true;
            }
        }
    };
    drop(stdin_tx);
    if let Some(writer) = writer {
        writer.abort();
    }
    if let Some(cgroup) = sup.cgroup() {
        cgroup.kill_all();
    }
    drop(master);
    for p in pumps {
        let _ = p.await;
    }
    let reason = match status {
        Ok(status) => exit_reason(&Ending {
            code: status.code(),
            signal: std::os::unix::process::ExitStatusExt::signal(&status),
            oom_killed: sup.cgroup().map_or(0, |c| c.oom_kills()) > oom_kills_before,
            setup_error: None,
        }),
        Err(e) => ExitReason::FailedToStart {
            error: error_chain(&e),
        },
    };
    let exit = OneOffExit::of(reason);
    tracing::info!(app = %sup.spec.app, instance = %sup.short, code = exit.code, reason = %exit.reason, "one-off ended");
    sup.platform_line(format!("Process exited with status {}", exit.code));
    sup.release().await;
    // Sent once everything is gone, so a caller that sees the exit sees a clean node.
    let _ = output.send(OneOffOutput::Exited(exit)).await;
    drop(tracker.alive);
}

/// Writes the caller's stdin to the app; `None` closes it.
async fn write_stdin(mut w: Writer, mut chunks: mpsc::Receiver<Option<Vec<u8>>>) {
    while let Some(chunk) = chunks.recv().await {
        let Some(bytes) = chunk else {
            let _ = w.shutdown().await;
            return;
        };
        if w.write_all(&bytes).await.is_err() || w.flush().await.is_err() {
            return;
        }
    }
}

fn kill(sup: &Supervisor, c: &container::Container) {
    let _ = c.signal(Signal::SIGKILL);
    if let Some(cgroup) = sup.cgroup() {
        cgroup.kill_all();
    }
}

/// Copies one of the app's streams to the caller, chunk by chunk, and line by line to the app's log. A caller
/// that went away no longer gets chunks; the log still gets lines.
async fn pump(
    mut reader: Reader,
    is_stderr: bool,
    output: mpsc::Sender<OneOffOutput>,
    mut log: output::Forwarder,
) {
    let mut buf = vec![0u8; CHUNK];
    let mut line = Vec::new();
    loop {
        // A terminal's master reads EIO once the app's side is closed: the end, like EOF.
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        let message = if is_stderr {
            OneOffOutput::Stderr(chunk.to_vec())
        } else {
            OneOffOutput::Stdout(chunk.to_vec())
        };
        let _ = output.send(message).await;
        for piece in chunk.split_inclusive(|b| *b == b'\n') {
            line.extend_from_slice(piece);
            if line.ends_with(b"\n") || line.len() >= CHUNK {
                send_line(&mut log, &line);
                line.clear();
            }
        }
    }
    if !line.is_empty() {
        send_line(&mut log, &line);
    }
    log.finish().await;
}

fn send_line(log: &mut output::Forwarder, line: &[u8]) {
    let text = String::from_utf8_lossy(line);
    log.send(OutputLine::Text(text.trim_end_matches(['\n', '\r']).to_owned()));
}
