//! The process's log output: tracing's fmt layer writes into `tracing-appender`'s non-blocking writer, so an
//! event costs the thread that emits it (the router's, for the access log) a channel send instead of a
//! write(2) to stderr. One writer thread drains the channel in order and writes batches of lines to stderr.
//! When the channel is full, lines are dropped and counted rather than slowing requests down.

use std::io::{BufWriter, IsTerminal, Write};
use std::process::ExitCode;

use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// Lines the writer thread may be behind before new ones are dropped. The channel allocates a slot per line up
/// front: with tracing-appender's default (128k) an idle `berth router` was 2 MB larger. 16k lines are a
/// sixth of a second of access log at 100k requests/s, and the writer thread writes them in batches.
const BUFFERED_LINES: usize = 16 * 1024;

/// Keeps the log writer thread alive; [`Logging::exit`] flushes it. Hold it for the life of the process.
#[must_use = "dropping it stops the log writer: keep it until the process exits"]
pub(crate) struct Logging {
    guard: WorkerGuard,
    dropped: ErrorCounter,
}

/// Installs the global subscriber (filter from `BERTH_LOG`, default `info`) writing to stderr through the
/// non-blocking writer.
pub(crate) fn init() -> Logging {
    let filter = EnvFilter::try_from_env("BERTH_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // The writer thread writes whatever is queued into the buffer and flushes once the queue is empty, so a
    // busy router costs one write(2) per batch, and a quiet one shows each line at once.
    let (writer, guard) = NonBlockingBuilder::default()
        .buffered_lines_limit(BUFFERED_LINES)
        .lossy(true)
        .thread_name("berth-log")
        .finish(BufWriter::with_capacity(64 * 1024, std::io::stderr()));
    let dropped = writer.error_counter();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours only for a person watching; files and pipes get plain text that grep can read.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(writer)
        .init();
    Logging { guard, dropped }
}

impl Logging {
    /// Writes every line still queued to stderr, then what the command came to: nothing on success, the error
    /// (after the log lines that led to it) otherwise. Call it last, once the runtime has stopped.
    pub(crate) fn exit(self, result: anyhow::Result<()>) -> ExitCode {
        let Logging { guard, dropped } = self;
        // Dropping the guard hands the writer a shutdown message behind every queued line and waits (up to a
        // second) until it has written and flushed them.
        drop(guard);
        let mut stderr = std::io::stderr().lock();
        let dropped = dropped.dropped_lines();
        if dropped > 0 {
            let _ = writeln!(
                stderr,
                "warning: {dropped} log lines were dropped because stderr could not keep up"
            );
        }
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                let _ = writeln!(stderr, "error: {error:#}");
                ExitCode::FAILURE
            }
        }
    }
}
