//! The control plane's engine: runs deploys (build → release → roll out) and rebases (the current release
//! moved onto the current stack without a build), and keeps the world matching the store. Whenever
//! something may have changed (an API call, a node's report, a tick) it re-plans placements
//! with the pure `scheduler`, writes the plan to the store, hands each node agent its full desired set of
//! instances, and publishes a fresh route table for the router. An instance being stopped leaves the table
//! first and stays in its node's desired set until routers have drained it (see [`DrainProbe`]).
//!
//! It owns no HTTP: the API tells it about changes through [`ControllerHandle`], git receive calls it through
//! the [`git_receive::Deployer`] it implements ([`Deployments`]). It talks to node agents only through
//! [`NodeLink`] and `agent_contract` types, so an agent in another process (later, over HTTP) fits the same
//! seam. [`ImageDeploys`] deploys an existing image from a registry (pulled with skopeo) instead of a push;
//! [`Lifecycle`] makes releases without a build (config changes, rollbacks) and stops, starts and restarts apps.
//! [`quota`] decides whether a change fits an account's quotas (the API and the deploy path enforce it).
//! When several control processes share one database, only the leader ([`follow_leadership`]) reconciles.

pub mod app_json;
mod auto_rollback;
mod deploy;
mod drain;
mod image_deploy;
mod leadership;
mod lifecycle;
mod nodes;
mod one_off;
pub mod quota;
mod rebase;
mod reconcile;
mod release_phase;
mod routes;

pub use deploy::{DeployConfig, Deployments, RolledOut};
pub use drain::{decide as drain_decision, DrainDecision, DrainPolicy, DrainProbe, NothingInFlight};
pub use image_deploy::{image_processes, ImageDeployConfig, ImageDeployRequest, ImageDeploys, ImageRef};
pub use leadership::{follow_leadership, LeadershipConfig};
pub use lifecycle::{
    apply_config_changes, config_change_description, ConfigChanged, Lifecycle, LifecycleError, RestartTarget,
};
pub use nodes::{
    cpu_reservation, heartbeat_missed, NodeHealthPolicy, CPU_OVERCOMMIT, INSTANCE_CPU_MILLICORES,
    NODE_DOWN_AFTER,
};
pub use one_off::{
    shell_join, OneOffError, OneOffLimits, OneOffs, RunningOneOff, StartedOneOff, RELEASE_PROCESS,
    RUN_PROCESS,
};
pub use rebase::{rebase, RebaseContext, RebaseError, RebaseOutcome};
pub use reconcile::{Controller, ControllerConfig, ControllerError, NodeLink, OneOffStart};
pub use routes::{build_table, certificate_expired, next_certificate_expiry, RouteInputs};

use tokio::sync::mpsc;
use vocabulary::AppId;

/// What happened that may need the world changed.
#[derive(Debug, Clone)]
pub enum Event {
    /// An app was created: the router should know its host.
    AppCreated(AppId),
    /// An app's formation (scale) changed.
    FormationChanged(AppId),
    /// An app was deleted from the store; its instances must go.
    AppDeleted(AppId),
    /// A new release was created and should roll out.
    ReleaseCreated(AppId),
    /// An app's custom domains (or other router settings) changed: the route table must follow.
    RoutesChanged(AppId),
    /// A node was cordoned, uncordoned, drained or removed: placements may change.
    NodesChanged,
}

/// A cheap, cloneable way to tell the controller that something changed.
#[derive(Clone, Debug)]
pub struct ControllerHandle {
    events: mpsc::UnboundedSender<Event>,
}

impl ControllerHandle {
    pub fn new(events: mpsc::UnboundedSender<Event>) -> Self {
        Self { events }
    }

    /// Tells the controller; never blocks. A stopped controller is ignored (the server is shutting down).
    pub fn notify(&self, event: Event) {
        let _ = self.events.send(event);
    }
}
