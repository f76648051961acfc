//! An instance's output: each line of stdout and stderr goes to the agent's output channel (never waiting)
//! and to a small file in the instance's directory, rotated so that it never grows without bound.

use std::path::{Path, PathBuf};

use agent_contract::{InstanceOutput, OutputLine};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use vocabulary::AppId;

/// The file is renamed to `output.log.1` (replacing it) once it reaches this size.
pub const FILE_LIMIT_BYTES: u64 = 1024 * 1024;

/// Longest line read at once; a longer one is passed on in pieces of this size.
const MAX_LINE_BYTES: usize = 16 * 1024;

/// Sends lines to the output channel without ever waiting: a full channel drops the line and counts it, and
/// the count goes out (`OutputLine::Dropped`) before the next line once there is room.
#[derive(Clone)]
pub struct Forwarder {
    tx: Option<mpsc::Sender<InstanceOutput>>,
    app: AppId,
    process: String,
    dropped: u64,
}

impl Forwarder {
    pub fn new(tx: Option<mpsc::Sender<InstanceOutput>>, app: AppId, process: String) -> Self {
        Self {
            tx,
            app,
            process,
            dropped: 0,
        }
    }

    fn try_send(&self, line: OutputLine) -> Result<(), bool> {
        let Some(tx) = &self.tx else { return Ok(()) };
        let output = InstanceOutput {
            app: self.app,
            process: self.process.clone(),
            line,
        };
        match tx.try_send(output) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => Err(true),
            // Nobody listens any more (shutting down): nothing to count.
            Err(mpsc::error::TrySendError::Closed(_)) => Err(false),
        }
    }

    pub fn send(&mut self, line: OutputLine) {
        if self.dropped > 0 {
            match self.try_send(OutputLine::Dropped(self.dropped)) {
                Ok(()) => self.dropped = 0,
                Err(full) => {
                    self.dropped += u64::from(full);
                    return;
                }
            }
        }
        if let Err(true) = self.try_send(line) {
            self.dropped += 1;
        }
    }

    /// At the end of a stream: waits a little for room to report what is still counted, so the count is not
    /// lost with the stream.
    pub async fn finish(&mut self) {
        if let (Some(tx), true) = (&self.tx, self.dropped > 0) {
            let output = InstanceOutput {
                app: self.app,
                process: self.process.clone(),
                line: OutputLine::Dropped(self.dropped),
            };
            if tokio::time::timeout(std::time::Duration::from_secs(1), tx.send(output))
                .await
                .is_ok()
            {
                self.dropped = 0;
            }
        }
    }
}

/// The instance's own output file, rotated at [`FILE_LIMIT_BYTES`].
struct OutputFile {
    path: PathBuf,
    file: Option<tokio::fs::File>,
    size: u64,
}

impl OutputFile {
    async fn open(path: &Path) -> Self {
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await;
        let (file, size) = match file {
            Ok(f) => {
                let size = f.metadata().await.map(|m| m.len()).unwrap_or(0);
                (Some(f), size)
            }
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "opening output log");
                (None, 0)
            }
        };
        Self {
            path: path.to_owned(),
            file,
            size,
        }
    }

    async fn write(&mut self, line: &[u8]) {
        if self.size >= FILE_LIMIT_BYTES {
            let mut old = self.path.clone().into_os_string();
            old.push(".1");
            let _ = tokio::fs::rename(&self.path, &old).await;
            *self = Self::open(&self.path.clone()).await;
            self.size = 0;
        }
        if let Some(f) = self.file.as_mut() {
            if f.write_all(line).await.is_ok() {
                self.size += line.len() as u64;
            }
        }
    }
}

/// Copies an output stream line by line to the forwarder, the instance's file and (at debug) tracing.
pub async fn pump(
    reader: Box<dyn AsyncRead + Send + Unpin>,
    log: PathBuf,
    stream: &'static str,
    mut forwarder: Forwarder,
) {
    let mut file = OutputFile::open(&log).await;
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader)
            .take(MAX_LINE_BYTES as u64)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        file.write(&line).await;
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        tracing::debug!(app = %forwarder.app, instance = %forwarder.process, stream, "{text}");
        forwarder.send(OutputLine::Text(text.to_owned()));
    }
    forwarder.finish().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_channel_drops_and_counts_and_reports_when_room_returns() {
        let (tx, mut rx) = mpsc::channel(2);
        let mut f = Forwarder::new(Some(tx), AppId::new(), "web.1".into());
        let text = |s: &str| OutputLine::Text(s.into());
        for s in ["a", "b", "c", "d"] {
            f.send(text(s));
        }
        let got = |rx: &mut mpsc::Receiver<InstanceOutput>| rx.try_recv().ok().map(|o| o.line);
        assert_eq!(got(&mut rx), Some(text("a")));
        assert_eq!(got(&mut rx), Some(text("b")));
        assert_eq!(got(&mut rx), None);
        // Room for two: the count, then the line.
        f.send(text("e"));
        // Full again: "f" is counted, and so is "g", whose count found no room either.
        f.send(text("f"));
        f.send(text("g"));
        assert_eq!(got(&mut rx), Some(OutputLine::Dropped(2)));
        assert_eq!(got(&mut rx), Some(text("e")));
        f.send(text("h"));
        assert_eq!(got(&mut rx), Some(OutputLine::Dropped(2)));
        assert_eq!(got(&mut rx), Some(text("h")));
        assert_eq!(got(&mut rx), None);
        // Nobody listening: nothing counted, nothing fails.
        drop(rx);
        f.send(text("h"));
        assert_eq!(f.dropped, 0);
    }

    #[tokio::test]
    async fn the_file_is_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("output.log");
        let mut file = OutputFile::open(&path).await;
        let line = vec![b'x'; 1000];
        for _ in 0..(FILE_LIMIT_BYTES / 1000 * 3) {
            file.write(&line).await;
        }
        let size = |p: &Path| std::fs::metadata(p).unwrap().len();
        assert!(size(&path) <= FILE_LIMIT_BYTES + 1000);
        assert!(size(&dir.path().join("output.log.1")) <= FILE_LIMIT_BYTES + 1000);
    }
}
