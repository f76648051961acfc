//! The node agent: makes the instances running on one node match the set the control plane placed there
//! (`agent_contract::InstanceSpec`), and reports what runs (`NodeReport`, on a watch channel, on every change).
//!
//! Per instance it unpacks the image's layers (once per digest), creates a cgroup with the instance's limits
//! (cgroups-rs, v1 or v2), a network namespace joined to the node's bridge by a veth pair, and runs the
//! container through the `container` crate; it probes the port, forwards stdout/stderr lines to
//! `AgentConfig::output` (never waiting; drops counted) and keeps the last of them in a small rotated file per
//! instance, restarts crashed instances with backoff, and removes everything on stop. On start it
//! removes what a crashed previous run with the same names left behind.
//!
//! It does not decide placement (the scheduler does), talk to a database or build images. The all-in-one
//! server depends on it; nothing in the control plane's crates is used here.

mod disk;
mod health;
mod instance;
mod layers;
mod one_off;
mod output;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agent_contract::{InstanceSpec, InstanceState, InstanceStatus, NodeReport, OneOffRequest, OneOffSession};
pub use netns::Ipv4Net;
use netns::{NetworkConfig, NodeNetwork};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use vocabulary::{InstanceId, NodeId};

/// Everything the agent needs, read once by the binary.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub node: NodeId,
    /// The agent's own directory: `layers/` (unpacked, shared) and `instances/<id>/` (writable layer, log).
    pub data_dir: PathBuf,
    pub image_store: image_store::ImageStore,
    /// The binary that dispatches `container::INIT_ARG` (normally `/proc/self/exe` of `berth`).
    pub init_program: PathBuf,
    /// Parent cgroup of every instance (`berth`, or a test's own name); created and removed by the agent.
    pub cgroup_parent: String,
    /// The node's bridge (≤ 15 characters); created if missing, removed on shutdown.
    pub bridge: String,
    /// The instances' subnet; its first host is the bridge's address.
    pub subnet: Ipv4Net,
    /// Prefix of the instances' network namespace names (`ip netns`), such as `berth-`.
    pub netns_prefix: String,
    /// How long a stopping instance gets between SIGTERM and SIGKILL when its spec does not say
    /// (`InstanceSpec::stop_grace_secs`).
    pub stop_grace: Duration,
    /// Where instances' output lines (and the agent's lines about them: exits, restarts) go, if anywhere.
    /// Sending never waits: when the channel is full lines are dropped and counted, and the count is sent
    /// (`OutputLine::Dropped`) as soon as there is room again, so an app never blocks on its logs.
    pub output: Option<mpsc::Sender<agent_contract::InstanceOutput>>,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("bad agent config: {0}")]
    Config(String),
    #[error("node network")]
    Net(#[from] netns::NetError),
    #[error(transparent)]
    Cgroup(#[from] cgroups::CgroupError),
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading image {digest}")]
    Image {
        digest: String,
        #[source]
        source: image_store::ImageStoreError,
    },
    #[error("unpacking layer {digest}")]
    Unpack {
        digest: String,
        #[source]
        source: image_store::ImageStoreError,
    },
    #[error("starting the container")]
    Container(#[from] container::ContainerError),
    #[error("agent task failed: {0}")]
    Task(String),
}

/// State shared by the agent loop and the instance supervisors.
struct Shared {
    cfg: AgentConfig,
    /// The bridge, its nftables rules and the instances' addresses.
    network: NodeNetwork,
    /// Layers are unpacked one at a time, so that two instances of one image never unpack the same layer.
    unpack_lock: tokio::sync::Mutex<()>,
    events: mpsc::UnboundedSender<Event>,
}

/// What supervisors tell the agent loop.
enum Event {
    Status(InstanceStatus),
    /// Torn down completely.
    Gone(InstanceId),
}

pub struct Agent;

/// Controls a started agent. Dropping it stops nothing; call [`AgentHandle::shutdown`].
#[derive(Debug)]
pub struct AgentHandle {
    desired: watch::Sender<Vec<InstanceSpec>>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
    network: NodeNetwork,
    one_offs: OneOffs,
}

/// The one-offs of an agent: what starts them and what its shutdown waits for.
struct OneOffs {
    shared: Arc<Shared>,
    tracker: one_off::Tracker,
    stop: watch::Sender<bool>,
    gone: mpsc::Receiver<()>,
}

impl std::fmt::Debug for OneOffs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneOffs").finish_non_exhaustive()
    }
}

impl Agent {
    /// Checks the config, removes leftovers of a previous run with the same names (processes, cgroups,
    /// network namespaces, veths, instance directories), sets up the bridge and starts reconciling.
    pub async fn start(cfg: AgentConfig) -> Result<(AgentHandle, watch::Receiver<NodeReport>), AgentError> {
        check(&cfg)?;
        // Compiled once here, so that no instance start pays for it and an architecture without a profile
        // fails now rather than at the first start.
        container::seccomp::hardened().map_err(|e| AgentError::Config(e.to_string()))?;
        remove_leftovers(&cfg).await?;
        for dir in [cfg.data_dir.join("layers"), cfg.data_dir.join("instances")] {
            std::fs::create_dir_all(&dir).map_err(|source| AgentError::Io {
                path: dir.clone(),
                source,
            })?;
        }
        let network = NodeNetwork::install(network_config(&cfg)).await?;

        let (events, events_rx) = mpsc::unbounded_channel();
        let (desired, desired_rx) = watch::channel(Vec::new());
        let (report_tx, report_rx) = watch::channel(NodeReport {
            node: cfg.node,
            instances: Vec::new(),
        });
        let (shutdown, shutdown_rx) = oneshot::channel();
        tracing::info!(node = %cfg.node, bridge = %cfg.bridge, subnet = %cfg.subnet, "node agent started");
        let shared = Arc::new(Shared {
            cfg,
            network: network.clone(),
            unpack_lock: Default::default(),
            events,
        });
        let (stop, stop_rx) = watch::channel(false);
        let (alive, gone) = mpsc::channel(1);
        let one_offs = OneOffs {
            shared: shared.clone(),
            tracker: one_off::Tracker { stop: stop_rx, alive },
            stop,
            gone,
        };
        let task = tokio::spawn(run(shared, desired_rx, events_rx, report_tx, shutdown_rx));
        Ok((
            AgentHandle {
                desired,
                shutdown,
                task,
                network,
                one_offs,
            },
            report_rx,
        ))
    }
}

impl AgentHandle {
    /// Replaces the set of instances this node should run.
    pub fn set_desired(&self, specs: Vec<InstanceSpec>) {
        self.desired.send_replace(specs);
    }

    /// The node network, for builds on this node: [`NodeNetwork::sandbox`] gives a build a namespace on the
    /// same bridge with the same isolation (its namespaces share the agent's prefix, so an agent restart
    /// removes a crashed build's too). It is removed by [`AgentHandle::shutdown`].
    pub fn network(&self) -> NodeNetwork {
        self.network.clone()
    }

    /// Starts a one-off run (see [`OneOffRequest`]): set up like any instance, attached to the returned
    /// channels, never restarted, removed when it exits, killed when the input sender is dropped or
    /// [`agent_contract::OneOffInput::Kill`] comes. It is not part of the desired set nor of the reports.
    pub async fn run_one_off(&self, request: OneOffRequest) -> Result<OneOffSession, AgentError> {
        one_off::start(
            self.one_offs.shared.clone(),
            request,
            self.one_offs.tracker.clone(),
        )
        .await
    }

    /// Stops every instance (SIGTERM, grace, SIGKILL) and removes the bridge, the cgroup parent and the
    /// instance directories. Returns when all is gone.
    pub async fn shutdown(self) {
        // One-offs first: they are killed and removed before the network and cgroups they use go.
        let OneOffs {
            shared,
            tracker,
            stop,
            mut gone,
        } = self.one_offs;
        stop.send_replace(true);
        drop(tracker);
        drop(shared);
        while gone.recv().await.is_some() {}
        let _ = self.shutdown.send(());
        let _ = self.task.await;
    }
}

fn check(cfg: &AgentConfig) -> Result<(), AgentError> {
    let bad = |m: String| Err(AgentError::Config(m));
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    network_config(cfg)
        .check()
        .map_err(|e| AgentError::Config(e.to_string()))?;
    // The parent is removed with everything in it: it must be a plain name of our own, never a cgroup root.
    if !cfg.cgroup_parent.split('/').all(name_ok) {
        return bad(format!(
            "cgroup parent {:?}: names of letters, digits, - or _",
            cfg.cgroup_parent
        ));
    }
    if !cfg.data_dir.is_absolute() {
        return bad(format!("data dir {} must be absolute", cfg.data_dir.display()));
    }
    Ok(())
}

fn network_config(cfg: &AgentConfig) -> NetworkConfig {
    NetworkConfig {
        bridge: cfg.bridge.clone(),
        subnet: cfg.subnet,
        netns_prefix: cfg.netns_prefix.clone(),
        host_dns: Default::default(),
        address_state: Some(cfg.data_dir.join("addresses")),
    }
}

async fn remove_leftovers(cfg: &AgentConfig) -> Result<(), AgentError> {
    // Processes first (through the cgroups), so that nothing holds the namespaces or directories.
    cgroups::remove_children(&cfg.cgroup_parent, false).await?;
    netns::remove_leftovers(&cfg.netns_prefix, &cfg.bridge).await?;
    let instances = cfg.data_dir.join("instances");
    // A crashed agent's instance disks, before their directories go.
    disk::unmount_all_under(&instances)?;
    if instances.exists() {
        std::fs::remove_dir_all(&instances).map_err(|source| AgentError::Io {
            path: instances,
            source,
        })?;
    }
    layers::remove_leftovers(&cfg.data_dir.join("layers"))
}

struct Supervised {
    stop: watch::Sender<bool>,
    /// The spec's stop grace, updated while the instance runs: an app's new setting applies to instances
    /// already running (everything else in a spec is immutable).
    grace: watch::Sender<Option<u32>>,
    task: JoinHandle<()>,
}

async fn run(
    shared: Arc<Shared>,
    mut desired: watch::Receiver<Vec<InstanceSpec>>,
    mut events: mpsc::UnboundedReceiver<Event>,
    report: watch::Sender<NodeReport>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let mut supervised: HashMap<InstanceId, Supervised> = HashMap::new();
    let mut statuses: BTreeMap<InstanceId, InstanceStatus> = BTreeMap::new();
    let mut shutting_down = false;
    loop {
        tokio::select! {
            changed = desired.changed(), if !shutting_down => {
                shutting_down |= changed.is_err();
            }
            _ = &mut shutdown, if !shutting_down => shutting_down = true,
            Some(event) = events.recv() => {
                match event {
                    Event::Status(status) => {
                        statuses.insert(status.id, status);
                    }
                    Event::Gone(id) => {
                        statuses.remove(&id);
                        if let Some(s) = supervised.remove(&id) {
                            let _ = s.task.await;
                        }
                    }
                }
                report.send_replace(NodeReport { node: shared.cfg.node, instances: statuses.values().cloned().collect() });
            }
        }
        let wanted: Vec<InstanceSpec> = if shutting_down {
            Vec::new()
        } else {
            desired.borrow_and_update().clone()
        };
        for spec in &wanted {
            match supervised.entry(spec.id) {
                std::collections::hash_map::Entry::Vacant(slot) => {
                    let (stop, stop_rx) = watch::channel(false);
                    let (grace, grace_rx) = watch::channel(spec.stop_grace_secs);
                    let task = tokio::spawn(instance::supervise(
                        shared.clone(),
                        spec.clone(),
                        instance::Control {
                            stop: stop_rx,
                            grace: grace_rx,
                        },
                    ));
                    slot.insert(Supervised { stop, grace, task });
                }
                std::collections::hash_map::Entry::Occupied(running) => {
                    running.get().grace.send_if_modified(|g| {
                        let changed = *g != spec.stop_grace_secs;
                        *g = spec.stop_grace_secs;
                        changed
                    });
                }
            }
        }
        for (id, s) in &supervised {
            if !wanted.iter().any(|w| w.id == *id) && !*s.stop.borrow() {
                s.stop.send_replace(true);
                if let Some(st) = statuses.get_mut(id) {
                    st.state = InstanceState::Stopping;
                }
            }
        }
        if shutting_down && supervised.is_empty() {
            break;
        }
    }
    let cfg = &shared.cfg;
    if let Err(e) = cgroups::remove_children(&cfg.cgroup_parent, true).await {
        tracing::error!(error = %e, "removing the cgroup parent");
    }
    if let Err(e) = shared.network.remove().await {
        tracing::error!(error = %e, "removing the node network");
    }
    let instances = cfg.data_dir.join("instances");
    if let Err(e) = std::fs::remove_dir_all(&instances) {
        tracing::error!(error = %e, path = %instances.display(), "removing instance directories");
    }
    report.send_replace(NodeReport {
        node: cfg.node,
        instances: Vec::new(),
    });
    tracing::info!(node = %cfg.node, "node agent stopped");
}
