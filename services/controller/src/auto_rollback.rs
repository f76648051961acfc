//! What a deploy does when its release does not come up: roll back to the release before it, by making a new
//! release of that one ("Rollback to v4 (v5 failed: ...)", kind rollback) and rolling it out like any other.
//!
//! A new release rather than deleting or hiding the failed one keeps `latest_release` meaning "what should
//! run" everywhere (scheduler, API, `berth releases`) with no new state, and leaves the failure in the history.
//! The price: the old instances are replaced by fresh ones of the same image and config (started before the
//! old ones stop, so nothing is dropped). A rollback that fails stops there: it is never rolled back itself.

use std::time::Duration;

use store::{EventKind, NewRelease, Release, ReleaseKind};
use vocabulary::{AppId, ReleaseVersion};

use crate::deploy::{internal, record, OnFailure, Rollout};
use crate::Event;

impl Rollout {
    /// How long a deploy of `app` waits for its new instances: the app's setting, else the server's.
    pub(crate) async fn deploy_timeout(&self, app: AppId) -> Duration {
        match self.store.deploy_timeout_secs(app).await {
            Ok(Some(secs)) => Duration::from_secs(secs.into()),
            Ok(None) => self.config.rollout_timeout,
            Err(error) => {
                tracing::warn!(%app, error = %crate::reconcile::error_chain(&error), "reading the deploy timeout");
                self.config.rollout_timeout
            }
        }
    }

    /// Rolls `failed` (the app's latest release, which did not come up: `reason`) back to the release before
    /// it; returns what the person deploying is told. The first release has nothing to go back to: its
    /// instances are stopped instead. A release made meanwhile wins: nothing is rolled back then.
    pub(crate) async fn roll_back_failed(
        &self,
        app: &store::App,
        failed: &Release,
        reason: &str,
        log: &tokio::sync::mpsc::Sender<String>,
    ) -> String {
        let failure = format!("{} failed: {reason}", failed.version);
        let (rollback, previous) = {
            let _releasing = self.releasing.lock().await;
            match self.store.latest_release(app.id).await {
                Ok(Some(latest)) if latest.id == failed.id => {}
                Ok(Some(latest)) => {
                    return format!(
                        "{failure}; not rolled back: {} was released since",
                        latest.version
                    )
                }
                Ok(None) => return failure,
                Err(error) => return format!("{failure}; {}", internal(error)),
            }
            let previous = match failed.version.0.checked_sub(1).filter(|v| *v > 0) {
                Some(v) => match self.store.release_by_version(app.id, ReleaseVersion(v)).await {
                    Ok(previous) => previous,
                    Err(error) => return format!("{failure}; {}", internal(error)),
                },
                None => None,
            };
            let Some(previous) = previous else {
                return self.stop_first_release(app, &failure, log).await;
            };
            let made = self
                .store
                .create_release_with_checks(
                    NewRelease {
                        app: app.id,
                        image_digest: previous.image_digest.clone(),
                        processes: previous.processes.clone(),
                        config: previous.config.clone(),
                        description: format!("Rollback to {} ({failure})", previous.version),
                        created_by: failed.created_by,
                    },
                    ReleaseKind::Rollback,
                    previous.health_checks.clone(),
                )
                .await;
            let made = match made {
                Ok(made) => made,
                Err(error) => return format!("{failure}; {}", internal(error)),
            };
            (made, previous)
        };
        let _ = log
            .send(format!("-----> {failure}; rolling back to {}", previous.version))
            .await;
        let description = format!(
            "{failure}; rolling back to {} automatically as {}",
            previous.version, rollback.version
        );
        record(
            &self.store,
            app.id,
            EventKind::Rollback,
            &description,
            store::Event::BERTH,
        )
        .await;
        let rollback_version = rollback.version;
        match self.roll_out_then(app, rollback, log, OnFailure::Stop).await {
            Ok(_) => {
                let summary = format!("{failure}; rolled back to {}, which keeps serving", previous.version);
                let _ = log.send(format!("-----> {summary}")).await;
                summary
            }
            Err(why) => format!(
                "{failure}; the rollback to {} ({rollback_version}) failed too: {why}; not rolling back again",
                previous.version
            ),
        }
    }

    /// A failed first release has nothing to go back to: its instances are stopped by forgetting the app's
    /// formation, so that the next push (the fix) scales `web` to 1 and deploys like a first one, as Dokku
    /// does; stopping the app instead would make that push answer "the app is stopped".
    async fn stop_first_release(
        &self,
        app: &store::App,
        failure: &str,
        log: &tokio::sync::mpsc::Sender<String>,
    ) -> String {
        if let Err(error) = self.store.clear_formation(app.id).await {
            return format!("{failure}; {}", internal(error));
        }
        self.controller.notify(Event::FormationChanged(app.id));
        let summary = format!(
            "{failure}; there is no earlier release to roll back to, so its instances were stopped \
             (the next push deploys again)"
        );
        let _ = log.send(format!("-----> {summary}")).await;
        record(
            &self.store,
            app.id,
            EventKind::DeployFailed,
            &summary,
            store::Event::BERTH,
        )
        .await;
        summary
    }
}

/// Why a new instance that crashed while starting did not come up, from its last exit (a failure to start
/// names host paths, so only that it failed is said).
pub(crate) fn crash_reason(instance: &store::Instance) -> String {
    let name = format!("{}.{}", instance.process_type, instance.index);
    let Some(exit) = &instance.last_exit else {
        return format!("{name} crashed while starting");
    };
    let reason = exit.reason.as_str();
    if reason.starts_with("failed to start") {
        format!("{name} failed to start")
    } else if reason.starts_with("health check") {
        format!("{name}'s {reason}")
    } else if reason.starts_with("did not listen") {
        format!("{name} {reason}")
    } else if reason == "out of memory" {
        format!("{name} ran out of memory while starting (R14)")
    } else {
        format!("{name} {reason} while starting (check that its command starts a server on $PORT)")
    }
}

#[cfg(test)]
mod tests {
    use super::crash_reason;

    #[test]
    fn crash_reasons_say_what_happened() {
        let instance = |reason: Option<&str>| store::Instance {
            id: vocabulary::InstanceId::new(),
            app: vocabulary::AppId::new(),
            release: vocabulary::ReleaseId::new(),
            process_type: vocabulary::ProcessType::web(),
            index: 2,
            node: vocabulary::NodeId::new(),
            memory_bytes: 1 << 20,
            state: store::InstanceRowState::Crashed,
            stop_requested: false,
            replace_requested: false,
            address: None,
            hostname: None,
            restarts: 1,
            last_exit: reason.map(|r| store::InstanceExit {
                reason: r.into(),
                at: chrono::Utc::now(),
            }),
            created_at: chrono::Utc::now(),
        };
        let cases = [
            (None, "web.2 crashed while starting"),
            (
                Some("failed to start: /var/lib/berth/x: gone"),
                "web.2 failed to start",
            ),
            (
                Some("health check GET /health failed: 500 Internal Server Error"),
                "web.2's health check GET /health failed: 500 Internal Server Error",
            ),
            (
                Some("did not listen on its port within 60 s (R10)"),
                "web.2 did not listen on its port within 60 s (R10)",
            ),
            (
                Some("out of memory"),
                "web.2 ran out of memory while starting (R14)",
            ),
            (
                Some("exited with code 3"),
                "web.2 exited with code 3 while starting (check that its command starts a server on $PORT)",
            ),
        ];
        for (reason, want) in cases {
            assert_eq!(crash_reason(&instance(reason)), want);
        }
    }
}
