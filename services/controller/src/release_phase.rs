//! The release phase: a release whose processes include `release` (Procfile `release: CMD`) runs CMD once, in a
//! one-off of that release (its image and config), before the release is written. Running it first is what
//! keeps an unproven release from the scheduler: until its row exists nothing can place its instances, so a
//! failure leaves nothing to undo, and no status column has to be honoured by every reader of releases.
//! The command runs without `Rollout::releasing` (one lock for every app: one tenant's long migration must not
//! hold up everybody's deploys); the release is then written only if the app's latest release (and config)
//! is still the one the command ran against, else the deploy fails and says why.
//! Pushes, image deploys, config changes and rollbacks all pass through it (as on Heroku).

use std::collections::BTreeMap;
use std::time::Duration;

use store::{EventKind, Release};
use tokio::sync::mpsc;
use vocabulary::{ProcessType, ReleaseId, ReleaseVersion};

use crate::deploy::{record, Rollout};
use agent_contract::OneOffOutput;

use crate::one_off::{OneOffRelease, RELEASE_PROCESS};

/// How long a release command may run (the branch has no per-app deploy timeout).
pub const RELEASE_PHASE_TIMEOUT: Duration = Duration::from_secs(600);

/// Whether a release with these processes has a release phase.
pub(crate) fn has_release_phase(processes: &BTreeMap<ProcessType, String>) -> bool {
    processes.keys().any(|p| p.as_str() == RELEASE_PROCESS)
}

/// Why a release whose command passed was not made: the app changed meanwhile.
pub(crate) fn changed_during(version: ReleaseVersion) -> String {
    format!(
        "The app changed while its release command ran (another deploy, config change or rollback); \
         {version} not made: deploy again"
    )
}

/// The release about to be made.
pub(crate) struct Pending<'a> {
    pub(crate) version: ReleaseVersion,
    pub(crate) image_digest: &'a str,
    pub(crate) processes: &'a BTreeMap<ProcessType, String>,
    pub(crate) config: &'a BTreeMap<String, String>,
    /// The release serving now, named in a failure.
    pub(crate) previous: Option<&'a Release>,
}

impl Rollout {
    /// Runs the pending release's `release` command if it has one, streaming its output to `log` (and to the
    /// app's log); `Err` says why the release must not be made (the line the push ends with).
    pub(crate) async fn release_phase(
        &self,
        app: &store::App,
        actor: &str,
        pending: Pending<'_>,
        log: &mpsc::Sender<String>,
    ) -> Result<(), String> {
        let Some(command) = pending
            .processes
            .get(&ProcessType::new(RELEASE_PROCESS).expect("valid"))
        else {
            return Ok(());
        };
        let say = |line: String| async move {
            if let Some(logs) = &self.config.app_logs {
                let entry = app_logs::line(app_logs::LogSource::Berth, RELEASE_PROCESS, line.as_bytes());
                logs.log(app.id, entry).await;
            }
            let _ = log.send(line).await;
        };
        say(format!("-----> Running release command: {command}")).await;
        let fail = |why: String| {
            let keeps = match pending.previous {
                Some(previous) => format!(", {} keeps serving", previous.version),
                None => String::new(),
            };
            format!("Release command {why}; {} not deployed{keeps}", pending.version)
        };
        let Some(one_offs) = &self.one_offs else {
            let reason = fail("cannot run here (this server runs no one-off instances)".into());
            say(format!("-----> {reason}")).await;
            return Err(reason);
        };
        let target = OneOffRelease {
            // Not a release yet: an ID of its own, the version it will have.
            id: ReleaseId::new(),
            version: pending.version,
            image_digest: pending.image_digest,
            config: pending.config,
        };
        let outcome = match one_offs.release_phase(app, target, command).await {
            Err(e) => Err(fail(format!("failed to start ({e})"))),
            Ok(mut started) => {
                let mut partial = Vec::new();
                let waited = tokio::time::timeout(
                    RELEASE_PHASE_TIMEOUT,
                    wait_exit_streaming(&mut started.session, &mut partial, log),
                )
                .await;
                if !partial.is_empty() {
                    let _ = log.send(indent(&partial)).await;
                }
                match waited {
                    // Dropping `started` kills it.
                    Err(_) => Err(fail(format!(
                        "timed out after {} s",
                        RELEASE_PHASE_TIMEOUT.as_secs()
                    ))),
                    Ok(None) => Err(fail("ended without an exit code (its node went away)".into())),
                    Ok(Some(exit)) if exit.code == 0 => Ok(()),
                    Ok(Some(exit)) => Err(fail(format!("failed (exit {})", exit.code))),
                }
            }
        };
        match &outcome {
            Ok(()) => say("-----> Release command succeeded".into()).await,
            Err(reason) => {
                say(format!("-----> {reason}")).await;
                record(&self.store, app.id, EventKind::DeployFailed, reason, actor).await;
            }
        }
        outcome
    }
}

/// Reads the one-off's output until it exits, sending each complete line to the push as it comes, indented.
async fn wait_exit_streaming(
    session: &mut agent_contract::OneOffSession,
    partial: &mut Vec<u8>,
    log: &mpsc::Sender<String>,
) -> Option<agent_contract::OneOffExit> {
    while let Some(message) = session.output.recv().await {
        let bytes = match message {
            OneOffOutput::Stdout(bytes) | OneOffOutput::Stderr(bytes) => bytes,
            OneOffOutput::Exited(exit) => return Some(exit),
        };
        partial.extend_from_slice(&bytes);
        while let Some(at) = partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = partial.drain(..=at).collect();
            let _ = log.send(indent(&line)).await;
        }
    }
    None
}

fn indent(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    format!("       {}", text.trim_end_matches(['\n', '\r']))
}
