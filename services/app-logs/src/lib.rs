//! Per-app logs: every line an app's instances write, the router's access lines and the platform's events,
//! kept per app on disk and followed live.
//!
//! Each app has a directory `DIR/<app-id>/` holding two append-only files of newline-delimited JSON
//! ([`api_contract::LogLine`]); the current one becomes the previous one at [`LogsConfig::segment_lines`]
//! lines, so the last `segment_lines` to `2 × segment_lines` lines survive a restart and nothing grows
//! without bound. Files, not SQLite: a chatty app writes thousands of lines a second, which would be as many
//! database writes competing with the control plane's, while an append to a page-cached file costs little.
//!
//! Writers never block on disk: lines go through one bounded queue to one writer thread. [`AppLogs::try_log`]
//! drops a line when the queue is full and counts it; the count is written as a `berth[logs]: N lines dropped`
//! line as soon as there is room again. Followers get a broadcast per app; one that falls behind gets the same
//! kind of marker instead of the lines it missed, and never slows the writer.
//!
//! It knows nothing of HTTP, accounts or the database, and runs no SQL; `berth server` feeds it and the API
//! reads it. Keyed by `AppId`, so a new app with an old app's name never sees the old app's lines.

mod line;
mod segments;

pub use api_contract::{LogLine, LogSource};
pub use line::{clean_text, dropped_marker, last_matching, line, Filter, MAX_TEXT_BYTES};

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, mpsc, watch};
use vocabulary::AppId;

use segments::Segments;

#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error("app log {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("app log task failed: {0}")]
    Task(String),
}

/// Where and how much to keep.
#[derive(Debug, Clone)]
pub struct LogsConfig {
    /// One directory per app inside (`DATA_DIR/logs`).
    pub dir: PathBuf,
    /// Lines per file; between this and twice this many are kept per app.
    pub segment_lines: usize,
    /// Lines waiting for the writer thread, all apps together; [`AppLogs::try_log`] drops beyond it.
    pub queue_lines: usize,
    /// Lines a follower may fall behind before it misses some (and is told how many).
    pub follow_lines: usize,
}

impl LogsConfig {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            segment_lines: 10_000,
            queue_lines: 16_384,
            follow_lines: 4_096,
        }
    }
}

/// One app's open log.
struct AppLog {
    segments: Mutex<Segments>,
    follow: broadcast::Sender<LogLine>,
}

/// The apps' open logs, shared by the handles and the writer thread.
struct Apps {
    cfg: LogsConfig,
    open: Mutex<HashMap<AppId, Arc<AppLog>>>,
    /// Apps whose logs were removed: lines still arriving for them (from instances being stopped) are
    /// ignored rather than making their directory again. App ids are never reused.
    removed: Mutex<std::collections::HashSet<AppId>>,
}

impl Apps {
    /// The app's open log, opened now if need be; `None` once it was removed.
    fn get(&self, app: AppId) -> Result<Option<Arc<AppLog>>, LogsError> {
        if self.removed.lock().expect("removed apps lock").contains(&app) {
            return Ok(None);
        }
        let mut open = self.open.lock().expect("app logs lock");
        if let Some(log) = open.get(&app) {
            return Ok(Some(log.clone()));
        }
        let segments = Segments::open(&self.cfg.dir.join(app.to_string()), self.cfg.segment_lines)?;
        let log = Arc::new(AppLog {
            segments: Mutex::new(segments),
            follow: broadcast::channel(self.cfg.follow_lines.max(1)).0,
        });
        open.insert(app, log.clone());
        Ok(Some(log))
    }
}

/// A handle to the apps' logs; cheap to clone. The writer thread ends when the last handle is dropped, after
/// writing what was queued.
#[derive(Clone)]
pub struct AppLogs {
    apps: Arc<Apps>,
    queue: mpsc::Sender<Job>,
    /// Lines [`AppLogs::try_log`] dropped per app, not yet reported by a marker line.
    dropped: Arc<Mutex<HashMap<AppId, u64>>>,
    /// Set by [`AppLogs::end_followers`].
    ended: Arc<watch::Sender<bool>>,
}

impl std::fmt::Debug for AppLogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppLogs")
            .field("dir", &self.apps.cfg.dir)
            .finish()
    }
}

/// Lines the writer takes from the queue before it flushes them for readers.
const BATCH_LINES: usize = 4096;

impl AppLogs {
    /// Creates the directory and starts the writer thread.
    pub fn open(cfg: LogsConfig) -> Result<Self, LogsError> {
        std::fs::create_dir_all(&cfg.dir).map_err(|source| LogsError::Io {
            path: cfg.dir.clone(),
            source,
        })?;
        let (queue, rx) = mpsc::channel(cfg.queue_lines.max(1));
        let apps = Arc::new(Apps {
            cfg,
            open: Mutex::default(),
            removed: Mutex::default(),
        });
        let writer = apps.clone();
        std::thread::Builder::new()
            .name("app-logs".into())
            .spawn(move || write_loop(&writer, rx))
            .map_err(|e| LogsError::Task(e.to_string()))?;
        Ok(Self {
            apps,
            queue,
            dropped: Arc::default(),
            ended: Arc::new(watch::channel(false).0),
        })
    }

    /// Queues a line without waiting: when the queue is full it is dropped and counted, and the count is
    /// logged (`berth[logs]: N lines dropped`) before the app's next line that fits.
    pub fn try_log(&self, app: AppId, line: LogLine) {
        let mut dropped = self.dropped.lock().expect("dropped counts lock");
        let count = dropped.get(&app).copied().unwrap_or(0);
        if count > 0 {
            if self
                .queue
                .try_send(Job::Line(app, dropped_marker(count)))
                .is_err()
            {
                *dropped.entry(app).or_default() += 1;
                return;
            }
            dropped.remove(&app);
        }
        if let Err(mpsc::error::TrySendError::Full(_)) = self.queue.try_send(Job::Line(app, line)) {
            *dropped.entry(app).or_default() += 1;
        }
    }

    /// Queues a line, waiting for room: for lines that must not be lost (platform events) and for a feeder
    /// that drops on its own side (the agent's output channel).
    pub async fn log(&self, app: AppId, line: LogLine) {
        let _ = self.queue.send(Job::Line(app, line)).await;
    }

    /// The last `n` kept lines of `app` that `filter` lets through, oldest first, including every line queued
    /// before this call.
    pub async fn tail(&self, app: AppId, n: usize, filter: Filter) -> Result<Vec<LogLine>, LogsError> {
        Ok(self.follow_from(app, n, filter, false).await?.0)
    }

    /// [`AppLogs::tail`], then every later line as it is written: no line is missed or repeated between the
    /// two (a follower that falls behind gets a marker instead of the lines it missed).
    pub async fn follow(
        &self,
        app: AppId,
        n: usize,
        filter: Filter,
    ) -> Result<(Vec<LogLine>, Follower), LogsError> {
        let (lines, follower) = self.follow_from(app, n, filter, true).await?;
        Ok((lines, follower.expect("asked for a follower")))
    }

    async fn follow_from(
        &self,
        app: AppId,
        n: usize,
        filter: Filter,
        follow: bool,
    ) -> Result<(Vec<LogLine>, Option<Follower>), LogsError> {
        // Lines queued before this call are written before this barrier is.
        self.barrier().await;
        let apps = self.apps.clone();
        let ended = self.ended.subscribe();
        tokio::task::spawn_blocking(move || {
            let Some(log) = apps.get(app)? else {
                // Removed: nothing kept, and a follower that ends at once.
                let (_, receiver) = broadcast::channel(1);
                let follower = Follower {
                    receiver,
                    filter,
                    ended,
                };
                return Ok((Vec::new(), follow.then_some(follower)));
            };
            let mut segments = log.segments.lock().expect("segments lock");
            // Subscribed under the writer's lock: the lines read now and the lines received later meet exactly.
            let receiver = follow.then(|| log.follow.subscribe());
            let lines = last_matching(segments.read_all()?, &filter, n);
            Ok((
                lines,
                receiver.map(|receiver| Follower {
                    receiver,
                    filter,
                    ended,
                }),
            ))
        })
        .await
        .map_err(|e| LogsError::Task(e.to_string()))?
    }

    /// Waits until the writer has taken everything queued so far.
    async fn barrier(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.queue.send(Job::Barrier(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Returns once every line queued before the call is in its file (not necessarily on disk: the page
    /// cache survives the process). For a server about to exit.
    pub async fn flush(&self) {
        self.barrier().await;
    }

    /// Ends every follower, now and later ([`Follower::next`] returns `None`): the server is shutting down
    /// and must not wait for clients that follow forever.
    pub fn end_followers(&self) {
        self.ended.send_replace(true);
    }

    /// Deletes an app's kept lines (the app was deleted).
    pub async fn remove(&self, app: AppId) -> Result<(), LogsError> {
        self.barrier().await;
        let dir = self.apps.cfg.dir.join(app.to_string());
        self.apps.removed.lock().expect("removed apps lock").insert(app);
        self.apps.open.lock().expect("app logs lock").remove(&app);
        match tokio::fs::remove_dir_all(&dir).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(LogsError::Io { path: dir, source: e }),
            _ => Ok(()),
        }
    }
}

/// What the writer thread takes from the queue.
enum Job {
    Line(AppId, LogLine),
    /// Answered once every job queued before it is done.
    Barrier(tokio::sync::oneshot::Sender<()>),
}

/// Lines of one app as they are written, filtered.
pub struct Follower {
    receiver: broadcast::Receiver<LogLine>,
    filter: Filter,
    ended: watch::Receiver<bool>,
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower").field("filter", &self.filter).finish()
    }
}

impl Follower {
    /// The next line that matches, or a dropped-lines marker when this follower fell behind; `None` once the
    /// logs are closed or [`AppLogs::end_followers`] was called.
    pub async fn next(&mut self) -> Option<LogLine> {
        loop {
            let received = tokio::select! {
                received = self.receiver.recv() => received,
                _ = self.ended.wait_for(|ended| *ended) => return None,
            };
            match received {
                Ok(line) if self.filter.matches(&line) => return Some(line),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(missed)) => return Some(dropped_marker(missed)),
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

fn write_loop(apps: &Apps, mut rx: mpsc::Receiver<Job>) {
    let mut dirty: HashMap<AppId, Arc<AppLog>> = HashMap::new();
    let mut failing: HashMap<AppId, ()> = HashMap::new();
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(job) = next.take() {
            match job {
                Job::Line(app, line) => write_one(apps, app, line, &mut dirty, &mut failing),
                Job::Barrier(done) => {
                    flush(&mut dirty);
                    let _ = done.send(());
                }
            }
            taken += 1;
            if taken < BATCH_LINES {
                next = rx.try_recv().ok();
            }
        }
        flush(&mut dirty);
    }
}

fn flush(dirty: &mut HashMap<AppId, Arc<AppLog>>) {
    for (app, log) in dirty.drain() {
        if let Err(error) = log.segments.lock().expect("segments lock").flush() {
            tracing::warn!(%app, error = %error_chain(&error), "flushing an app's log");
        }
    }
}

fn write_one(
    apps: &Apps,
    app: AppId,
    line: LogLine,
    dirty: &mut HashMap<AppId, Arc<AppLog>>,
    failing: &mut HashMap<AppId, ()>,
) {
    let result = apps.get(app).and_then(|log| {
        let Some(log) = log else { return Ok(()) };
        let mut segments = log.segments.lock().expect("segments lock");
        segments.append(&line)?;
        let _ = log.follow.send(line);
        drop(segments);
        dirty.insert(app, log);
        Ok(())
    });
    match result {
        // Said once per app until it works again, so a full disk does not turn into a log flood.
        Err(error) => {
            if failing.insert(app, ()).is_none() {
                tracing::warn!(%app, error = %error_chain(&error), "writing an app's log");
            }
        }
        Ok(()) => {
            failing.remove(&app);
        }
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
