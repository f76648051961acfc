//! Which control process reconciles: several may share one PostgreSQL database and all serve the API, but only
//! the one holding the store's leader lock ([`store::Store::try_lead`]) runs the scheduler and reconcilers.
//! On SQLite the one process always leads.

use std::time::Duration;

use store::Store;
use tokio::sync::watch;

use crate::reconcile::error_chain;

/// How often a follower tries to take the lead, and how often the leader checks that it still holds it.
#[derive(Debug, Clone, Copy)]
pub struct LeadershipConfig {
    pub retry: Duration,
    pub check: Duration,
}

impl Default for LeadershipConfig {
    fn default() -> Self {
        Self {
            retry: Duration::from_secs(2),
            check: Duration::from_secs(2),
        }
    }
}

/// Starts following leadership: the receiver is true while this process leads (hand it to
/// [`crate::Controller::with_leadership`]). Logs "became leader" and "lost leadership". The task ends, giving
/// leadership up, when every receiver is gone or when it is aborted.
pub fn follow_leadership(
    store: Store,
    config: LeadershipConfig,
) -> (watch::Receiver<bool>, tokio::task::JoinHandle<()>) {
    let (leading_tx, leading_rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            match store.try_lead().await {
                Ok(Some(mut leadership)) => {
                    tracing::info!("became leader");
                    if leading_tx.send(true).is_err() {
                        return;
                    }
                    let lost = loop {
                        tokio::select! {
                            _ = tokio::time::sleep(config.check) => {}
                            _ = leading_tx.closed() => return,
                        }
                        if let Err(error) = leadership.check().await {
                            break error;
                        }
                    };
                    // Stop reconciling first: another process may be taking over already.
                    let _ = leading_tx.send(false);
                    tracing::warn!(error = %error_chain(&lost), "lost leadership");
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(error = %error_chain(&error), "could not try to take the lead");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(config.retry) => {}
                _ = leading_tx.closed() => return,
            }
        }
    });
    (leading_rx, task)
}
