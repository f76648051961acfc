//! One-off runs: `berth run` (the app's current release running a command, attached or detached) and release
//! phases (a new release's `release` command, before it is written). Each is one instance on a node, made
//! with the same spec code as the formation's instances ([`crate::reconcile::instance_spec`]), named
//! `run.N` / `release.N` in the app's log, never in the store: the scheduler and `berth ps` do not see it.
//! An account runs at most [`OneOffLimits::per_account`] `berth run`s at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use agent_contract::{OneOffInput, OneOffOutput, OneOffRequest, OneOffSession, WindowSize};
use store::{App, Store, StoreError};
use vocabulary::{AccountId, AppId, InstanceId, NodeId, ProcessType, ReleaseId, ReleaseVersion};

use crate::reconcile::{instance_spec, ControllerConfig, NodeLink, SpecParts};

/// The process type of a release phase's one-off, and the Procfile entry that asks for one.
pub const RELEASE_PROCESS: &str = "release";
/// The process type of `berth run`'s one-offs.
pub const RUN_PROCESS: &str = "run";

#[derive(Debug, Clone)]
pub struct OneOffLimits {
    /// Memory of a one-off that does not ask for a size.
    pub default_memory_bytes: u64,
    /// The most a one-off may ask for.
    pub max_memory_bytes: u64,
    /// How many `berth run`s one account may have running at once (release phases do not count).
    pub per_account: usize,
}

impl Default for OneOffLimits {
    fn default() -> Self {
        Self {
            default_memory_bytes: 512 << 20,
            max_memory_bytes: 4 << 30,
            per_account: 5,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OneOffError {
    /// Not started as asked (the cap, a bad size, no release): the message is for the person asking.
    #[error("{0}")]
    Refused(String),
    /// The account runs as many as it may.
    #[error("{0}")]
    TooMany(String),
    /// The node could not start it.
    #[error("starting the one-off on its node: {0}")]
    Node(String),
    #[error("reading the app's state")]
    Store(#[from] StoreError),
}

/// The release a one-off runs: an existing one, or one about to be written (a release phase).
#[derive(Debug, Clone)]
pub struct OneOffRelease<'a> {
    pub id: ReleaseId,
    pub version: ReleaseVersion,
    pub image_digest: &'a str,
    pub config: &'a std::collections::BTreeMap<String, String>,
}

/// Starts one-offs on the nodes. Cheap to clone.
#[derive(Clone)]
pub struct OneOffs {
    inner: Arc<Inner>,
}

struct Inner {
    config: ControllerConfig,
    limits: OneOffLimits,
    store: Store,
    /// By node ID, so that the choice is stable.
    nodes: Vec<(NodeId, Arc<dyn NodeLink>)>,
    /// The last number given per app and process type (`run.3`).
    numbers: Mutex<HashMap<(AppId, String), u32>>,
    /// `berth run`s running per account.
    running: Mutex<HashMap<AccountId, usize>>,
    /// What runs now, per app, for `berth ps`.
    listed: Mutex<HashMap<AppId, Vec<RunningOneOff>>>,
    /// Each running one-off's input, by app and name, to kill it with (`berth ps stop run.3`, an app deleted).
    inputs: Mutex<HashMap<(AppId, String), tokio::sync::mpsc::Sender<OneOffInput>>>,
}

/// A one-off that runs now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningOneOff {
    /// `run.3`
    pub name: String,
    pub command: String,
    pub release: ReleaseVersion,
    pub started_at: chrono::DateTime<chrono::Utc>,
}

/// Keeps a one-off in the app's running list until dropped.
struct Listed {
    inner: Arc<Inner>,
    app: AppId,
    name: String,
}

impl std::fmt::Debug for Listed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listed").field("name", &self.name).finish()
    }
}

impl Drop for Listed {
    fn drop(&mut self) {
        let key = (self.app, self.name.clone());
        self.inner.inputs.lock().expect("one-offs lock").remove(&key);
        let mut listed = self.inner.listed.lock().expect("one-offs lock");
        if let Some(list) = listed.get_mut(&self.app) {
            list.retain(|r| r.name != self.name);
            if list.is_empty() {
                listed.remove(&self.app);
            }
        }
    }
}

/// A started one-off. Keep it until its `Exited` comes: dropping it (its session's input) kills the one-off.
#[derive(Debug)]
pub struct StartedOneOff {
    /// `run.3`
    pub name: String,
    pub session: OneOffSession,
    _slot: Option<Slot>,
    _listed: Listed,
}

/// One of an account's `berth run` places, given back when dropped.
struct Slot {
    inner: Arc<Inner>,
    account: AccountId,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot").field("account", &self.account).finish()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut running = self.inner.running.lock().expect("one-offs lock");
        if let Some(n) = running.get_mut(&self.account) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                running.remove(&self.account);
            }
        }
    }
}

impl OneOffs {
    /// `config` is the controller's (the instances' port and limits), `nodes` its links.
    pub fn new(
        config: ControllerConfig,
        limits: OneOffLimits,
        store: Store,
        nodes: &HashMap<NodeId, Arc<dyn NodeLink>>,
    ) -> Self {
        let mut nodes: Vec<_> = nodes.iter().map(|(id, link)| (*id, link.clone())).collect();
        nodes.sort_by_key(|(id, _)| *id);
        Self {
            inner: Arc::new(Inner {
                config,
                limits,
                store,
                nodes,
                numbers: Mutex::default(),
                running: Mutex::default(),
                inputs: Mutex::default(),
                listed: Mutex::default(),
            }),
        }
    }

    /// `berth run`: `argv` (shell-quoted and joined, run with `/bin/sh -c`) in a one-off of the app's current
    /// release, on a terminal of `terminal`'s size if given.
    pub async fn run(
        &self,
        app: &App,
        argv: &[String],
        memory_bytes: Option<u64>,
        terminal: Option<WindowSize>,
    ) -> Result<StartedOneOff, OneOffError> {
        if argv.is_empty() || argv.iter().all(|a| a.trim().is_empty()) {
            return Err(OneOffError::Refused(
                "no command: give one after --, such as `berth run -a APP -- bash`".into(),
            ));
        }
        let memory_bytes = memory_bytes.unwrap_or(self.inner.limits.default_memory_bytes);
        if !(64 << 20..=self.inner.limits.max_memory_bytes).contains(&memory_bytes) {
            return Err(OneOffError::Refused(format!(
                "a one-off's size must be from 64 MiB to {} MiB",
                self.inner.limits.max_memory_bytes >> 20
            )));
        }
        let release = self.inner.store.latest_release(app.id).await?.ok_or_else(|| {
            OneOffError::Refused(format!("app {} has no release yet: deploy it first", app.name))
        })?;
        let slot = self.take_slot(app.owner)?;
        let target = OneOffRelease {
            id: release.id,
            version: release.version,
            image_digest: &release.image_digest,
            config: &release.config,
        };
        let mut started = self
            .start(app, target, RUN_PROCESS, shell_join(argv), memory_bytes, terminal)
            .await?;
        started._slot = Some(slot);
        Ok(started)
    }

    /// A release phase: `command` in a one-off of the release about to be made.
    pub(crate) async fn release_phase(
        &self,
        app: &App,
        target: OneOffRelease<'_>,
        command: &str,
    ) -> Result<StartedOneOff, OneOffError> {
        let memory = self.inner.limits.default_memory_bytes;
        self.start(app, target, RELEASE_PROCESS, command.to_owned(), memory, None)
            .await
    }

    /// Keeps a started one-off running with nobody attached: its output goes to the app's log only, and it
    /// ends by itself.
    pub fn detach(started: StartedOneOff) {
        tokio::spawn(async move {
            let StartedOneOff {
                name,
                mut session,
                _slot,
                _listed,
            } = started;
            while let Some(message) = session.output.recv().await {
                if let OneOffOutput::Exited(exit) = message {
                    tracing::info!(instance = %name, code = exit.code, "detached one-off ended");
                    break;
                }
            }
        });
    }

    /// Kills the app's one-off `name` (`run.3`); false when none of that name runs. Whoever is attached gets
    /// its exit (killed by SIGKILL) as usual.
    pub async fn stop(&self, app: AppId, name: &str) -> bool {
        let input = self
            .inner
            .inputs
            .lock()
            .expect("one-offs lock")
            .get(&(app, name.to_owned()))
            .cloned();
        match input {
            Some(input) => input.send(OneOffInput::Kill).await.is_ok(),
            None => false,
        }
    }

    /// Kills every one-off of the app (it is being deleted); returns how many were asked to stop.
    pub async fn stop_all(&self, app: AppId) -> usize {
        let inputs: Vec<_> = self
            .inner
            .inputs
            .lock()
            .expect("one-offs lock")
            .iter()
            .filter(|((a, _), _)| *a == app)
            .map(|(_, input)| input.clone())
            .collect();
        let mut stopped = 0;
        for input in inputs {
            stopped += usize::from(input.send(OneOffInput::Kill).await.is_ok());
        }
        stopped
    }

    /// The app's one-offs running now (`berth run`s and release phases), oldest first.
    pub fn running(&self, app: AppId) -> Vec<RunningOneOff> {
        let listed = self.inner.listed.lock().expect("one-offs lock");
        listed.get(&app).cloned().unwrap_or_default()
    }

    fn take_slot(&self, account: AccountId) -> Result<Slot, OneOffError> {
        let max = self.inner.limits.per_account;
        let mut running = self.inner.running.lock().expect("one-offs lock");
        let n = running.entry(account).or_default();
        if *n >= max {
            return Err(OneOffError::TooMany(format!(
                "your account already runs {max} one-off instances (the most at once): wait for one to end"
            )));
        }
        *n += 1;
        Ok(Slot {
            inner: self.inner.clone(),
            account,
        })
    }

    async fn start(
        &self,
        app: &App,
        target: OneOffRelease<'_>,
        process_type: &str,
        command: String,
        memory_bytes: u64,
        terminal: Option<WindowSize>,
    ) -> Result<StartedOneOff, OneOffError> {
        // The first ready node that is up; a node the inventory does not list (or a store that cannot say)
        // counts as ready.
        let unschedulable = crate::nodes::unschedulable(&self.inner.store).await;
        let Some((_, node)) = self
            .inner
            .nodes
            .iter()
            .find(|(id, _)| !unschedulable.contains(id))
        else {
            return Err(OneOffError::Node(
                "no node to run it on (every node is cordoned, draining or down)".into(),
            ));
        };
        let index = {
            let mut numbers = self.inner.numbers.lock().expect("one-offs lock");
            let n = numbers.entry((app.id, process_type.to_owned())).or_default();
            *n += 1;
            *n
        };
        let process_type = ProcessType::new(process_type).expect("a valid process type");
        let name = format!("{process_type}.{index}");
        let store = &self.inner.store;
        let spec = instance_spec(
            &self.inner.config,
            InstanceId::new(),
            SpecParts {
                app,
                release: target.id,
                version: target.version,
                image_digest: target.image_digest,
                config: target.config,
                process_type,
                index,
                command,
                memory_bytes,
                id_range: store.id_range(app.owner).await?,
                stop_grace_secs: store.stop_grace_secs(app.id).await?,
                // One-offs bind no port (their process type is never web): no boot timeout, no check.
                boot_timeout_secs: None,
                health_check: None,
            },
        );
        tracing::info!(app = %app.name, instance = %spec.id, release = %target.version, "starting one-off {name}");
        let running = RunningOneOff {
            name: name.clone(),
            command: spec.command.clone(),
            release: target.version,
            started_at: chrono::Utc::now(),
        };
        let session = node
            .run_one_off(OneOffRequest { spec, terminal })
            .await
            .map_err(OneOffError::Node)?;
        self.inner
            .inputs
            .lock()
            .expect("one-offs lock")
            .insert((app.id, name.clone()), session.input.clone());
        self.inner
            .listed
            .lock()
            .expect("one-offs lock")
            .entry(app.id)
            .or_default()
            .push(running);
        Ok(StartedOneOff {
            _listed: Listed {
                inner: self.inner.clone(),
                app: app.id,
                name: name.clone(),
            },
            name,
            session,
            _slot: None,
        })
    }
}

/// The words of `berth run` as one shell command: each word as it is when it holds only characters a shell
/// leaves alone, else in single quotes (a `'` inside as `'\''`), joined by spaces.
pub fn shell_join(argv: &[String]) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    argv.iter()
        .map(|word| {
            if !word.is_empty() && word.chars().all(plain) {
                word.clone()
            } else {
                format!("'{}'", word.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_for_the_shell() {
        let cases: &[(&[&str], &str)] = &[
            (&["ls", "-la", "/app"], "ls -la /app"),
            (
                &["sh", "-c", "echo out; echo err >&2; exit 3"],
                "sh -c 'echo out; echo err >&2; exit 3'",
            ),
            (&["echo", "it's"], r"echo 'it'\''s'"),
            (&["echo", ""], "echo ''"),
            (&["echo", "$HOME", "a b"], "echo '$HOME' 'a b'"),
            (&["python", "manage.py", "migrate"], "python manage.py migrate"),
            (&["env", "A=1"], "env A=1"),
        ];
        for (argv, want) in cases {
            let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
            assert_eq!(shell_join(&argv), *want, "{argv:?}");
        }
    }
}
