//! Changes to a running app that make no build: config vars set or unset, rollbacks, stopping and starting,
//! and restarting instances. Each release-making change creates a release from the latest one and rolls it out
//! exactly like a deploy ([`Rollout`]), and answers once it serves or says why not.

use std::collections::BTreeMap;

use store::{App, InstanceRowState, NewRelease, ReleaseKind, Store, StoreError};
use vocabulary::{AccountId, ProcessType, ReleaseVersion};

use crate::deploy::{DeployConfig, RolledOut, Rollout};
use crate::{ControllerHandle, Event};

/// Why a lifecycle change was not made.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// The change cannot be made as asked (no release yet, no such release, nothing to restart).
    #[error("{0}")]
    Refused(String),
    #[error("reading or writing the app's state")]
    Store(#[from] StoreError),
}

impl LifecycleError {
    pub(crate) fn no_release(app: &App) -> Self {
        Self::Refused(format!("app {} has no release yet: deploy it first", app.name))
    }
}

/// Config changes, rollbacks, stop/start and restarts. Cheap to clone.
#[derive(Clone)]
pub struct Lifecycle {
    rollout: Rollout,
}

/// Which of an app's instances to restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestartTarget {
    All,
    /// Every instance of one process type (`web`).
    Type(ProcessType),
    /// One instance (`web.1`).
    One(ProcessType, u32),
}

impl RestartTarget {
    /// `web` or `web.1`; `None` for something else.
    pub fn parse(text: &str) -> Option<Self> {
        match text.split_once('.') {
            None => ProcessType::new(text).ok().map(Self::Type),
            Some((kind, index)) => {
                let kind = ProcessType::new(kind).ok()?;
                let index = index.parse().ok().filter(|i| *i > 0)?;
                Some(Self::One(kind, index))
            }
        }
    }

    fn matches(&self, instance: &store::Instance) -> bool {
        match self {
            Self::All => true,
            Self::Type(kind) => &instance.process_type == kind,
            Self::One(kind, index) => &instance.process_type == kind && instance.index == *index,
        }
    }
}

impl std::fmt::Display for RestartTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::All => f.write_str("all instances"),
            Self::Type(kind) => write!(f, "{kind}"),
            Self::One(kind, index) => write!(f, "{kind}.{index}"),
        }
    }
}

/// "Set FOO, BAR", "Unset FOO", "Set FOO; unset BAR": names only, never values.
pub fn config_change_description(changes: &BTreeMap<String, Option<String>>) -> String {
    let set: Vec<&str> = changes
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| k.as_str())
        .collect();
    let unset: Vec<&str> = changes
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| k.as_str())
        .collect();
    match (set.is_empty(), unset.is_empty()) {
        (false, true) => format!("Set {}", set.join(", ")),
        (true, false) => format!("Unset {}", unset.join(", ")),
        (false, false) => format!("Set {}; unset {}", set.join(", "), unset.join(", ")),
        (true, true) => "Change no config vars".to_owned(),
    }
}

/// `config` with `changes` applied (a `None` value removes the name).
pub fn apply_config_changes(
    mut config: BTreeMap<String, String>,
    changes: &BTreeMap<String, Option<String>>,
) -> BTreeMap<String, String> {
    for (name, value) in changes {
        match value {
            Some(value) => config.insert(name.clone(), value.clone()),
            None => config.remove(name),
        };
    }
    config
}

/// What a config change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigChanged {
    pub config: BTreeMap<String, String>,
    /// `None` when the app had no release yet: the config waits for its first build.
    pub rolled_out: Option<RolledOut>,
}

impl Lifecycle {
    /// Built by [`crate::Deployments::lifecycle`] in the server; tests of the API make their own.
    pub fn new(
        config: DeployConfig,
        store: Store,
        controller: ControllerHandle,
        passes: tokio::sync::watch::Receiver<u64>,
    ) -> Self {
        Self {
            rollout: Rollout {
                config,
                store,
                controller,
                passes,
                releasing: Default::default(),
                one_offs: None,
                quotas: crate::quota::Quotas::default(),
            },
        }
    }

    /// Runs release phases, and `berth run`s through [`Lifecycle::one_offs`] (as
    /// [`crate::Deployments::with_one_offs`] does for the server's).
    pub fn with_one_offs(mut self, one_offs: crate::OneOffs) -> Self {
        self.rollout.one_offs = Some(one_offs);
        self
    }

    /// Enforces `quotas` (as [`crate::Deployments::with_quotas`] does for the server's).
    pub fn with_quotas(mut self, quotas: crate::quota::Quotas) -> Self {
        self.rollout.quotas = quotas;
        self
    }

    /// The platform's quotas, for the API to check app creation and scaling.
    pub fn quotas(&self) -> &crate::quota::Quotas {
        &self.rollout.quotas
    }

    /// One-off runs (`berth run`), when the server has them.
    pub fn one_offs(&self) -> Option<&crate::OneOffs> {
        self.rollout.one_offs.as_ref()
    }

    pub(crate) fn from_rollout(rollout: Rollout) -> Self {
        Self { rollout }
    }

    /// The app's config vars now.
    pub async fn config(&self, app: &App) -> Result<BTreeMap<String, String>, LifecycleError> {
        Ok(self.rollout.current_config(app.id).await?)
    }

    /// Applies already validated `changes` (`None` unsets). With a release, makes a new one with the same
    /// image and processes and rolls it out; before the first release, keeps the config for it.
    pub async fn change_config(
        &self,
        app: &App,
        by: AccountId,
        changes: &BTreeMap<String, Option<String>>,
    ) -> Result<ConfigChanged, LifecycleError> {
        let store = &self.rollout.store;
        {
            // Before the first release: no release to make. The lock keeps a first push from slipping in
            // between reading and writing (the store refuses the write once a release exists, too).
            let _releasing = self.rollout.releasing.lock().await;
            if store.latest_release(app.id).await?.is_none() {
                let config = apply_config_changes(store.pending_config(app.id).await?, changes);
                if store.set_pending_config(app.id, &config).await? {
                    tracing::info!(app = %app.name, names = ?changes.keys().collect::<Vec<_>>(),
                        "config changed before the first release");
                    return Ok(ConfigChanged {
                        config,
                        rolled_out: None,
                    });
                }
            }
        }
        let mut config = BTreeMap::new();
        let rolled = self
            .rollout
            .release_from_latest(app, ReleaseKind::Config, |latest| {
                config = apply_config_changes(latest.config, changes);
                NewRelease {
                    app: app.id,
                    image_digest: latest.image_digest,
                    processes: latest.processes,
                    config: config.clone(),
                    description: config_change_description(changes),
                    created_by: by,
                }
            })
            .await?;
        tracing::info!(app = %app.name, release = ?rolled.release, names = ?changes.keys().collect::<Vec<_>>(),
            "config changed");
        Ok(ConfigChanged {
            config,
            rolled_out: Some(rolled),
        })
    }

    /// A new release with `to`'s image, processes and config ("Rollback to vN"); `None` rolls back to the
    /// release before the latest.
    pub async fn rollback(
        &self,
        app: &App,
        by: AccountId,
        to: Option<ReleaseVersion>,
    ) -> Result<(ReleaseVersion, RolledOut), LifecycleError> {
        let store = &self.rollout.store;
        let latest = store
            .latest_release(app.id)
            .await?
            .ok_or_else(|| LifecycleError::no_release(app))?;
        let version = match to {
            Some(version) => version,
            None if latest.version.0 > 1 => ReleaseVersion(latest.version.0 - 1),
            None => {
                return Err(LifecycleError::Refused(format!(
                    "app {} has only {}: there is no earlier release to roll back to",
                    app.name, latest.version
                )))
            }
        };
        let target = store
            .release_by_version(app.id, version)
            .await?
            .ok_or_else(|| LifecycleError::Refused(format!("app {} has no release {version}", app.name)))?;
        let rolled = self
            .rollout
            .release_from_latest_with_checks(app, ReleaseKind::Rollback, |_| {
                let new = NewRelease {
                    app: app.id,
                    image_digest: target.image_digest,
                    processes: target.processes,
                    config: target.config,
                    description: format!("Rollback to {version}"),
                    created_by: by,
                };
                (new, target.health_checks)
            })
            .await?;
        tracing::info!(app = %app.name, to = %version, release = ?rolled.release, "rolled back");
        Ok((version, rolled))
    }

    /// Stops every instance of the app and keeps its formation; waits until none serves any more.
    pub async fn stop(&self, app: &App) -> Result<Result<String, String>, LifecycleError> {
        let store = &self.rollout.store;
        store.set_app_stopped(app.id, true).await?;
        self.rollout.controller.notify(Event::FormationChanged(app.id));
        tracing::info!(app = %app.name, "app stopped");
        let stopped = self
            .rollout
            .wait_until(
                |instances| instances.iter().all(|i| i.stop_requested).then_some(()),
                app.id,
            )
            .await;
        Ok(match stopped {
            Ok(()) => Ok(format!(
                "Stopped {}: its formation is kept; `berth apps start {}` runs it again",
                app.name, app.name
            )),
            Err(()) => Err(format!(
                "{}'s instances were not all stopped in time; they are stopping",
                app.name
            )),
        })
    }

    /// Runs a stopped app's formation again; waits until it serves.
    pub async fn start(&self, app: &App) -> Result<Result<String, String>, LifecycleError> {
        let store = &self.rollout.store;
        store.set_app_stopped(app.id, false).await?;
        self.rollout.controller.notify(Event::FormationChanged(app.id));
        tracing::info!(app = %app.name, "app started");
        let Some(release) = store.latest_release(app.id).await? else {
            return Ok(Ok(format!(
                "Started {}; it has no release yet, so nothing runs",
                app.name
            )));
        };
        let formation = store.formation(app.id).await?;
        let wanted: u32 = formation
            .iter()
            .filter(|(t, _)| release.processes.contains_key(*t))
            .map(|(_, f)| f.quantity)
            .sum();
        if wanted > 0 {
            if let Err(reason) = self.rollout.wait_for_rollout(&release, wanted).await {
                return Ok(Err(reason));
            }
        }
        Ok(Ok(format!(
            "Started {}: {wanted} instance(s) of {} at {}",
            app.name,
            release.version,
            self.rollout.app_url(app)
        )))
    }

    /// Replaces the instances `target` names with fresh ones of the same release, rolling: each fresh one
    /// starts beside the one it replaces, which stops once the fresh ones run. Waits until it is done.
    pub async fn restart(
        &self,
        app: &App,
        target: &RestartTarget,
    ) -> Result<Result<String, String>, LifecycleError> {
        let store = &self.rollout.store;
        let chosen: Vec<_> = store
            .instances_of_app(app.id)
            .await?
            .into_iter()
            .filter(|i| !i.stop_requested && !i.replace_requested && target.matches(i))
            .map(|i| i.id)
            .collect();
        if chosen.is_empty() {
            return Err(LifecycleError::Refused(format!(
                "app {} has no instance matching {target}",
                app.name
            )));
        }
        let marked = store.request_replace(app.id, &chosen).await?;
        self.rollout.controller.notify(Event::FormationChanged(app.id));
        tracing::info!(app = %app.name, %target, marked, "restarting instances");
        let outcome = self
            .rollout
            .wait_until(
                |instances| {
                    let old_gone = instances
                        .iter()
                        .filter(|i| chosen.contains(&i.id))
                        .all(|i| i.stop_requested);
                    let fresh = instances
                        .iter()
                        .filter(|i| !i.stop_requested && !i.replace_requested && target.matches(i));
                    let crashed = fresh
                        .clone()
                        .find(|i| i.state == InstanceRowState::Crashed)
                        .map(|i| format!("{}.{}", i.process_type, i.index));
                    if let Some(name) = crashed {
                        return Some(Err(format!(
                            "{name} crashed while restarting; the instance it replaces keeps serving"
                        )));
                    }
                    old_gone.then_some(Ok(()))
                },
                app.id,
            )
            .await
            .unwrap_or_else(|()| {
                Err(format!(
                    "the fresh instances of {} did not start in time",
                    app.name
                ))
            });
        Ok(outcome.map(|()| format!("Restarted {marked} instance(s) of {}", app.name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(pairs: &[(&str, Option<&str>)]) -> BTreeMap<String, Option<String>> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
            .collect()
    }

    #[test]
    fn descriptions_name_variables_never_values() {
        let cases = [
            (changes(&[("B", Some("secret")), ("A", Some("x"))]), "Set A, B"),
            (changes(&[("A", None)]), "Unset A"),
            (changes(&[("A", Some("secret")), ("B", None)]), "Set A; unset B"),
            (changes(&[]), "Change no config vars"),
        ];
        for (change, want) in cases {
            let got = config_change_description(&change);
            assert_eq!(got, want);
            assert!(!got.contains("secret"));
        }
    }

    #[test]
    fn changes_apply_over_the_current_config() {
        let current = BTreeMap::from([
            ("KEEP".to_owned(), "1".to_owned()),
            ("DROP".to_owned(), "2".to_owned()),
            ("EDIT".to_owned(), "3".to_owned()),
        ]);
        let after = apply_config_changes(
            current,
            &changes(&[
                ("DROP", None),
                ("EDIT", Some("three")),
                ("NEW", Some("")),
                ("ABSENT", None),
            ]),
        );
        assert_eq!(
            after,
            BTreeMap::from([
                ("EDIT".to_owned(), "three".to_owned()),
                ("KEEP".to_owned(), "1".to_owned()),
                ("NEW".to_owned(), String::new()),
            ])
        );
    }

    #[test]
    fn restart_targets() {
        let web = ProcessType::web();
        let cases = [
            ("web", Some(RestartTarget::Type(web.clone()))),
            ("web.1", Some(RestartTarget::One(web.clone(), 1))),
            (
                "worker.12",
                Some(RestartTarget::One(ProcessType::new("worker").unwrap(), 12)),
            ),
            ("web.0", None),
            ("web.", None),
            ("web.x", None),
            (".1", None),
            ("", None),
            ("Web!", None),
        ];
        for (text, want) in cases {
            assert_eq!(RestartTarget::parse(text), want, "{text}");
        }
        assert_eq!(RestartTarget::One(web, 2).to_string(), "web.2");
    }
}
