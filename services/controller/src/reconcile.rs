//! The reconcile loop.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent_contract::{ImageRef, InstanceSpec, Limits, NodeReport};
use chrono::{DateTime, Utc};
use route_table::RouteTable;
use scheduler::{AppDemand, Existing, Want};
use store::{Instance, InstanceRowState, Release, Store, StoreError};
use tokio::sync::{mpsc, watch};
use vocabulary::{CertificateId, InstanceId, NodeId, ReleaseId};

use crate::drain::{self, DrainDecision, DrainPolicy, DrainProbe};
use crate::routes::{build_table, certificate_expired, next_certificate_expiry, RouteInputs};
use crate::Event;

/// A one-off being started on a node: its session, or why not (for people).
pub type OneOffStart<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<agent_contract::OneOffSession, String>> + Send + 'a>,
>;

/// How the controller reaches one node's agent. In `berth server` the agent runs in-process.
pub trait NodeLink: Send + Sync + 'static {
    /// Replaces the node's whole desired set of instances.
    fn set_desired(&self, specs: Vec<InstanceSpec>);

    /// Starts a one-off run on the node (see `agent_contract::OneOffRequest`); the error says why not, for
    /// people. A node that cannot run them says so.
    fn run_one_off(&self, request: agent_contract::OneOffRequest) -> OneOffStart<'_> {
        let _ = request;
        Box::pin(async { Err("this node does not run one-off instances".to_owned()) })
    }
}

#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Apps are served at `NAME.DOMAIN`.
    pub domain: String,
    /// The port every instance listens on inside its own network namespace (given to it as `PORT`).
    pub instance_port: u16,
    /// CPU and pids limits for every instance; memory comes from the formation.
    pub cpu_millicores: u32,
    pub pids_max: u32,
    /// How often to re-check the world when nothing happens (catches anything missed).
    pub tick: Duration,
    /// The platform's certificate for `*.DOMAIN` and `DOMAIN`, put in every route table.
    pub platform_certificate: Option<route_table::Certificate>,
    /// How long instances being stopped may drain.
    pub drain: DrainPolicy,
}

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("reading or writing state")]
    Store(#[from] StoreError),
    #[error("release {0} of an instance is missing")]
    MissingRelease(ReleaseId),
}

/// The reconcile loop's state. Create with [`Controller::new`], then [`Controller::run`] it.
pub struct Controller {
    config: ControllerConfig,
    store: Store,
    nodes: HashMap<NodeId, Arc<dyn NodeLink>>,
    routes: watch::Sender<Arc<RouteTable>>,
    /// Bumped after every reconcile pass, so deploys can wait for the world to move.
    passes: watch::Sender<u64>,
    drain_probe: Arc<dyn DrainProbe>,
    /// Instances being stopped that still run.
    draining: Mutex<HashMap<InstanceId, Draining>>,
    /// Apps' certificates as of the last table: when the next one expires, and which expired ones were
    /// already warned about.
    certificates: Mutex<CertificateWatch>,
    /// Each crashed instance's restart count already recorded as an event.
    crashes: Mutex<HashMap<InstanceId, u32>>,
    /// Which nodes are down, and the pending instances last written.
    node_watch: crate::nodes::NodeWatch,
    /// True while this process leads ([`Controller::with_leadership`]); always true by default.
    leading: watch::Receiver<bool>,
}

#[derive(Default)]
struct CertificateWatch {
    next_expiry: Option<DateTime<Utc>>,
    warned: HashSet<CertificateId>,
}

/// Where an instance being stopped is in its draining.
#[derive(Debug, Clone, Copy)]
enum Draining {
    /// Kept running since the table without it was published at this time.
    Since(Instant),
    /// Left out of its node's desired set: the agent stops it.
    Released,
}

impl Controller {
    pub fn new(
        config: ControllerConfig,
        store: Store,
        nodes: HashMap<NodeId, Arc<dyn NodeLink>>,
        routes: watch::Sender<Arc<RouteTable>>,
        drain_probe: Arc<dyn DrainProbe>,
    ) -> Self {
        let (passes, _) = watch::channel(0);
        Self {
            config,
            store,
            nodes,
            routes,
            passes,
            drain_probe,
            draining: Mutex::new(HashMap::new()),
            certificates: Mutex::new(CertificateWatch::default()),
            crashes: Mutex::new(HashMap::new()),
            node_watch: crate::nodes::NodeWatch::new(crate::NodeHealthPolicy::default()),
            leading: watch::channel(true).1,
        }
    }

    /// When nodes count as down (default: no heartbeat for [`crate::NODE_DOWN_AFTER`]).
    pub fn with_node_health(mut self, policy: crate::NodeHealthPolicy) -> Self {
        self.node_watch = crate::nodes::NodeWatch::new(policy);
        self
    }

    /// Reconciles only while `leading` is true (see `crate::follow_leadership`): other control processes
    /// sharing the database keep applying their nodes' reports, and their passes change nothing.
    pub fn with_leadership(mut self, leading: watch::Receiver<bool>) -> Self {
        self.leading = leading;
        self
    }

    /// How long until a certificate in the table expires and the table must be built without it. A second
    /// late, so that the certificate has surely expired (notAfter itself is still valid) and a stale time
    /// (a pass that failed before publishing) is retried at most once a second.
    fn until_certificate_expiry(&self) -> Option<Duration> {
        let next = self.certificates.lock().expect("certificates lock").next_expiry?;
        let wait = (next - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        Some(wait + Duration::from_secs(1))
    }

    fn is_draining(&self) -> bool {
        let draining = self.draining.lock().expect("draining lock");
        draining.values().any(|d| matches!(d, Draining::Since(_)))
    }

    /// Records an event for each crash in `report` not recorded yet (a crashed instance is reported again
    /// after each restart, with a higher restart count).
    async fn record_crashes(&self, report: &NodeReport) {
        let new: Vec<(InstanceId, Option<i32>, Option<agent_contract::ExitReason>, u32)> = {
            let mut seen = self.crashes.lock().expect("crashes lock");
            seen.retain(|id, _| report.instances.iter().any(|i| i.id == *id));
            report
                .instances
                .iter()
                .filter_map(|status| match &status.state {
                    agent_contract::InstanceState::Crashed {
                        exit_code,
                        restarts,
                        reason,
                    } if seen.insert(status.id, *restarts) != Some(*restarts) => {
                        Some((status.id, *exit_code, reason.clone(), *restarts))
                    }
                    _ => None,
                })
                .collect()
        };
        if new.is_empty() {
            return;
        }
        let instances = match self.store.instances_on_node(report.node).await {
            Ok(instances) => instances,
            Err(error) => {
                tracing::error!(node = %report.node, error = %error_chain(&error), "reading instances for crash events");
                return;
            }
        };
        for (id, exit_code, reason, restarts) in new {
            let Some(instance) = instances.iter().find(|i| i.id == id) else {
                continue;
            };
            let description = crash_description(
                &format!("{}.{}", instance.process_type, instance.index),
                exit_code,
                reason.as_ref(),
                instance.memory_bytes,
                restarts,
            );
            crate::deploy::record(
                &self.store,
                instance.app,
                store::EventKind::Crashed,
                &description,
                store::Event::BERTH,
            )
            .await;
        }
    }

    /// A receiver that changes when a reconcile pass starts and when it ends: the count is odd while a pass
    /// (or the applying of a node's report that the next pass publishes) is under way, even once what it wrote
    /// is in the published route table.
    pub fn passes(&self) -> watch::Receiver<u64> {
        self.passes.subscribe()
    }

    /// Runs until `shutdown` resolves. Errors in one pass are logged and retried on the next.
    pub async fn run(
        self,
        mut events: mpsc::UnboundedReceiver<Event>,
        mut reports: mpsc::UnboundedReceiver<NodeReport>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(self.config.tick);
        let mut leading = self.leading.clone();
        loop {
            let expiry = self.until_certificate_expiry();
            tokio::select! {
                _ = &mut shutdown => break,
                Some(event) = events.recv() => tracing::debug!(?event, "controller event"),
                Some(report) = reports.recv() => {
                    // What the report writes (instances running) reaches the route table with the pass below.
                    self.pass_under_way();
                    self.record_crashes(&report).await;
                    if let Err(error) = self.store.apply_node_report(report.node, &report.instances).await {
                        tracing::error!(node = %report.node, error = %error_chain(&error), "applying node report");
                    }
                }
                _ = tick.tick() => {}
                // Became leader (a pass at once) or stopped leading.
                Ok(()) = leading.changed() => {}
                // While instances drain, look again soon rather than at the next tick.
                _ = tokio::time::sleep(self.config.drain.recheck), if self.is_draining() => {}
                // A certificate expires: routers must stop serving it then, not at the next tick.
                _ = tokio::time::sleep(expiry.unwrap_or_default()), if expiry.is_some() => {}
            }
            // Coalesce bursts: everything queued now is covered by one pass.
            while let Ok(event) = events.try_recv() {
                tracing::debug!(?event, "controller event");
            }
            self.pass_under_way();
            if !*leading.borrow_and_update() {
                // Another process leads: this pass changes nothing.
            } else if let Err(error) = self.reconcile().await {
                tracing::error!(error = %error_chain(&error), "reconcile pass failed");
            }
            self.passes.send_modify(|n| *n += *n % 2);
        }
    }

    /// Makes the pass count odd (see [`Controller::passes`]).
    fn pass_under_way(&self) {
        self.passes.send_if_modified(|n| {
            let even = *n % 2 == 0;
            *n += u64::from(even);
            even
        });
    }

    /// One pass: plan until stable, then tell nodes and the router.
    pub async fn reconcile(&self) -> Result<(), ControllerError> {
        let mut releases: HashMap<ReleaseId, Release> = HashMap::new();
        // A plan's stops can enable further stops (old release once new ones run), so plan until stable; a
        // few rounds always suffice because each round only removes or adds a bounded set.
        for _ in 0..4 {
            let demands = self.demands(&mut releases).await?;
            let instances = self.store.all_instances().await?;
            let nodes = self.node_watch.capacities(&self.store).await?;
            let existing: Vec<Existing> = instances
                .iter()
                .map(|i| existing_of(i, crate::nodes::cpu_reservation(self.config.cpu_millicores)))
                .collect();
            let plan = scheduler::plan(&demands, &existing, &nodes);
            self.node_watch
                .record_pending(&self.store, &plan.unplaced)
                .await?;
            if plan.is_empty() {
                break;
            }
            let now = Utc::now();
            for p in &plan.place {
                let instance = Instance {
                    id: InstanceId::new(),
                    app: p.app,
                    release: p.release,
                    process_type: p.process_type.clone(),
                    index: p.index,
                    node: p.node,
                    memory_bytes: p.memory_bytes,
                    state: InstanceRowState::Starting,
                    stop_requested: false,
                    replace_requested: false,
                    address: None,
                    hostname: None,
                    restarts: 0,
                    last_exit: None,
                    created_at: now,
                };
                tracing::info!(app = %p.app, release = %p.release, instance = %instance.id, node = %p.node,
                    "placing {}.{}", p.process_type, p.index);
                self.store.insert_instance(&instance).await?;
            }
            if !plan.stop.is_empty() {
                tracing::info!(count = plan.stop.len(), "stopping instances");
                self.store.request_stop(&plan.stop).await?;
            }
        }
        let instances = self.store.all_instances().await?;
        // Routes first: an instance being stopped leaves the table before its node is told anything.
        self.publish_routes(&instances).await?;
        let keep = self.still_draining(&instances);
        self.tell_nodes(&instances, &keep, &mut releases).await?;
        Ok(())
    }

    /// The instances being stopped that must keep running this pass to finish what routers sent them. Web
    /// instances that run and have an address drain; anything else had no traffic and stops at once. Once
    /// released, an instance is never kept again (its agent is already stopping it).
    fn still_draining(&self, instances: &[Instance]) -> HashSet<InstanceId> {
        let now = Instant::now();
        let mut draining = self.draining.lock().expect("draining lock");
        let mut keep = HashSet::new();
        let mut seen = HashSet::new();
        for instance in instances.iter().filter(|i| i.stop_requested) {
            let (true, true, Some(addr)) = (
                instance.process_type.is_web(),
                instance.state == InstanceRowState::Running,
                instance.address,
            ) else {
                continue;
            };
            seen.insert(instance.id);
            let state = draining.entry(instance.id).or_insert(Draining::Since(now));
            let Draining::Since(left_table) = *state else {
                continue;
            };
            let in_flight = self.drain_probe.in_flight(addr);
            match drain::decide(&self.config.drain, now - left_table, in_flight) {
                DrainDecision::KeepRunning => {
                    keep.insert(instance.id);
                }
                DrainDecision::Stop => {
                    *state = Draining::Released;
                    tracing::info!(app = %instance.app, instance = %instance.id, in_flight,
                        drained_ms = (now - left_table).as_millis() as u64, "drained; stopping");
                }
            }
        }
        draining.retain(|id, _| seen.contains(id));
        keep
    }

    async fn demands(
        &self,
        releases: &mut HashMap<ReleaseId, Release>,
    ) -> Result<Vec<AppDemand>, StoreError> {
        let mut demands = Vec::new();
        let stopped = self.store.stopped_apps().await?;
        let strategies = self.store.deploy_strategies().await?;
        let mut constraints = self.store.all_app_constraints().await?;
        for app in self.store.all_apps().await? {
            let release = self.store.latest_release(app.id).await?;
            let mut formation = self.store.formation(app.id).await?;
            // A stopped app keeps its formation in the store but wants nothing running.
            if stopped.contains(&app.id) {
                formation.values_mut().for_each(|f| f.quantity = 0);
            }
            let demand = AppDemand {
                strategy: strategies.get(&app.id).copied().unwrap_or_default(),
                app: app.id,
                release: release.as_ref().map(|r| r.id),
                release_processes: release
                    .as_ref()
                    .map(|r| r.processes.keys().cloned().collect())
                    .unwrap_or_default(),
                constraints: constraints.remove(&app.id).unwrap_or_default(),
                formation: formation
                    .into_iter()
                    .map(|(t, f)| {
                        (
                            t,
                            Want {
                                quantity: f.quantity,
                                memory_bytes: f.memory_bytes,
                                cpu_millicores: crate::nodes::cpu_reservation(self.config.cpu_millicores),
                            },
                        )
                    })
                    .collect(),
            };
            if let Some(release) = release {
                releases.insert(release.id, release);
            }
            demands.push(demand);
        }
        Ok(demands)
    }

    async fn tell_nodes(
        &self,
        instances: &[Instance],
        draining: &HashSet<InstanceId>,
        releases: &mut HashMap<ReleaseId, Release>,
    ) -> Result<(), ControllerError> {
        let mut apps = HashMap::new();
        for app in self.store.all_apps().await? {
            apps.insert(app.id, app);
        }
        let id_ranges = self.store.id_ranges().await?;
        let stop_graces = self.store.stop_graces().await?;
        let boot_timeouts = self.store.boot_timeouts().await?;
        let check_paths = self.store.health_check_paths().await?;
        let mut desired: HashMap<NodeId, Vec<InstanceSpec>> =
            self.nodes.keys().map(|n| (*n, Vec::new())).collect();
        for instance in instances
            .iter()
            .filter(|i| !i.stop_requested || draining.contains(&i.id))
        {
            let Some(app) = apps.get(&instance.app) else {
                continue;
            };
            if !releases.contains_key(&instance.release) {
                let release = self
                    .store
                    .release(instance.release)
                    .await?
                    .ok_or(ControllerError::MissingRelease(instance.release))?;
                releases.insert(release.id, release);
            }
            let release = &releases[&instance.release];
            let Some(command) = release.processes.get(&instance.process_type) else {
                continue;
            };
            let spec = instance_spec(
                &self.config,
                instance.id,
                SpecParts {
                    app,
                    release: release.id,
                    version: release.version,
                    image_digest: &release.image_digest,
                    config: &release.config,
                    process_type: instance.process_type.clone(),
                    index: instance.index,
                    command: command.clone(),
                    memory_bytes: instance.memory_bytes,
                    id_range: id_ranges.get(&app.owner).copied(),
                    stop_grace_secs: stop_graces.get(&app.id).copied(),
                    boot_timeout_secs: boot_timeouts.get(&app.id).copied(),
                    health_check: health_check(&instance.process_type, check_paths.get(&app.id), release),
                },
            );
            desired.entry(instance.node).or_default().push(spec);
        }
        for (node, specs) in desired {
            match self.nodes.get(&node) {
                Some(link) => link.set_desired(specs),
                None => tracing::warn!(node = %node, "instances placed on a node with no link"),
            }
        }
        Ok(())
    }

    async fn publish_routes(&self, instances: &[Instance]) -> Result<(), StoreError> {
        let apps = self.store.all_apps().await?;
        let domains = self.store.all_domains().await?;
        let certificates = self.store.all_certificates().await?;
        let settings = self.store.all_router_settings().await?;
        let now = Utc::now();
        self.watch_certificates(&certificates, now);
        let mut table = build_table(&RouteInputs {
            domain: &self.config.domain,
            apps: &apps,
            settings: &settings,
            domains: &domains,
            instances,
            certificates: &certificates,
            platform_certificate: self.config.platform_certificate.as_ref(),
            now,
        });
        self.routes.send_if_modified(|current| {
            let same = current.hosts == table.hosts
                && current.apps == table.apps
                && current.certificates == table.certificates;
            if !same {
                table.version = next_version(current.version);
                *current = Arc::new(std::mem::take(&mut table));
            }
            !same
        });
        Ok(())
    }

    /// Notes when the next certificate expires, and warns once about each one that has (by its names and
    /// app; never its key): the table built now leaves it out.
    fn watch_certificates(&self, certificates: &[store::StoredCertificate], now: DateTime<Utc>) {
        let mut watch = self.certificates.lock().expect("certificates lock");
        watch.next_expiry = next_certificate_expiry(certificates, now);
        let mut expired = HashSet::new();
        for certificate in certificates.iter().filter(|c| certificate_expired(c, now)) {
            expired.insert(certificate.id);
            if !watch.warned.contains(&certificate.id) {
                tracing::warn!(app = %certificate.app, certificate = %certificate.id,
                    domains = %certificate.hosts.join(","), not_after = %certificate.not_after,
                    "certificate expired: routers no longer serve it (upload a renewed one)");
            }
        }
        watch.warned = expired;
    }
}

/// The version after `current`: one more, but never behind the wall clock in milliseconds, so versions keep
/// increasing across restarts of the control plane and a router resuming a watch never mistakes a new table
/// for one it has.
fn next_version(current: u64) -> u64 {
    let now = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0);
    (current + 1).max(now)
}

/// What one instance of a release is, apart from its ID and where it runs.
pub(crate) struct SpecParts<'a> {
    pub(crate) app: &'a store::App,
    pub(crate) release: ReleaseId,
    pub(crate) version: vocabulary::ReleaseVersion,
    pub(crate) image_digest: &'a str,
    pub(crate) config: &'a std::collections::BTreeMap<String, String>,
    pub(crate) process_type: vocabulary::ProcessType,
    pub(crate) index: u32,
    pub(crate) command: String,
    pub(crate) memory_bytes: u64,
    pub(crate) id_range: Option<vocabulary::IdRange>,
    pub(crate) stop_grace_secs: Option<u32>,
    /// Web instances: how long to wait for PORT (R10), and the check that must pass before they count as up.
    pub(crate) boot_timeout_secs: Option<u32>,
    pub(crate) health_check: Option<agent_contract::HealthCheck>,
}

/// The spec a node gets for an instance: the release's config plus `PORT` and `DYNO`, the platform's limits,
/// the account's user namespace. The one place specs are made, for formation instances and one-off runs alike.
pub(crate) fn instance_spec(config: &ControllerConfig, id: InstanceId, parts: SpecParts<'_>) -> InstanceSpec {
    let mut env = parts.config.clone();
    env.insert("PORT".into(), config.instance_port.to_string());
    env.insert("DYNO".into(), format!("{}.{}", parts.process_type, parts.index));
    InstanceSpec {
        id,
        app_id: parts.app.id,
        app: parts.app.name.clone(),
        account: parts.app.owner,
        release: parts.release,
        release_version: parts.version,
        process_type: parts.process_type,
        index: parts.index,
        image: ImageRef {
            manifest_digest: parts.image_digest.to_owned(),
        },
        command: parts.command,
        env,
        port: config.instance_port,
        limits: Limits {
            memory_bytes: parts.memory_bytes,
            cpu_millicores: config.cpu_millicores,
            pids_max: config.pids_max,
            // Every instance the same share of the disks (the kernel's default, set explicitly).
            io_weight: Some(100),
            disk_bytes: agent_contract::DEFAULT_DISK_BYTES,
        },
        id_range: parts.id_range,
        stop_grace_secs: parts.stop_grace_secs,
        boot_timeout_secs: parts.boot_timeout_secs,
        health_check: parts.health_check,
    }
}

fn existing_of(instance: &Instance, cpu_millicores: u32) -> Existing {
    Existing {
        id: instance.id,
        app: instance.app,
        release: instance.release,
        process_type: instance.process_type.clone(),
        index: instance.index,
        node: instance.node,
        memory_bytes: instance.memory_bytes,
        cpu_millicores,
        running: instance.state == InstanceRowState::Running,
        stopping: instance.stop_requested,
        replace: instance.replace_requested,
    }
}

/// The check an instance must pass before it counts as up: for web, the app's own path wins over what its
/// release's app.json declared.
fn health_check(
    process_type: &vocabulary::ProcessType,
    app_path: Option<&String>,
    release: &Release,
) -> Option<agent_contract::HealthCheck> {
    match app_path {
        Some(path) if process_type.is_web() => Some(agent_contract::HealthCheck::of_path(path.clone())),
        _ => release.health_checks.get(process_type).cloned(),
    }
}

/// An error and its sources on one line, for logs.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// A crash event's text: which instance, why (an out-of-memory kill is Heroku's R14), its restart count.
/// "Failed to start" leaves out its error, which names host paths.
fn crash_description(
    instance: &str,
    exit_code: Option<i32>,
    reason: Option<&agent_contract::ExitReason>,
    memory_bytes: u64,
    restarts: u32,
) -> String {
    use agent_contract::ExitReason;
    let why = match (reason, exit_code) {
        (Some(ExitReason::OutOfMemory), _) => format!(
            "was killed out of memory (R14, memory quota of {} MiB exceeded)",
            memory_bytes >> 20
        ),
        (Some(ExitReason::Exited { code }), _) => format!("crashed with exit status {code}"),
        (None, Some(code)) => format!("crashed with exit status {code}"),
        (Some(ExitReason::Signaled { signal }), _) => format!("was killed by {signal}"),
        (Some(ExitReason::FailedToStart { .. }), _) => "failed to start".to_owned(),
        (Some(ExitReason::BootTimeout { secs }), _) => {
            format!("did not listen on PORT within {secs} s (R10, boot timeout) and was stopped")
        }
        (Some(ExitReason::HealthCheckFailed { path, error }), _) => {
            format!("failed its health check GET {path} ({error}) and was stopped")
        }
        (None, None) => "crashed with no exit status (killed)".to_owned(),
    };
    format!("{instance} {why} (restart {restarts})")
}

#[cfg(test)]
mod crash_description_tests {
    use super::crash_description;
    use agent_contract::ExitReason;

    #[test]
    fn says_why_and_hides_start_errors() {
        let mib = 512 << 20;
        let cases = [
            (
                Some(3),
                Some(ExitReason::Exited { code: 3 }),
                "web.1 crashed with exit status 3 (restart 2)",
            ),
            (
                None,
                Some(ExitReason::OutOfMemory),
                "web.1 was killed out of memory (R14, memory quota of 512 MiB exceeded) (restart 2)",
            ),
            (
                None,
                Some(ExitReason::Signaled {
                    signal: "SIGKILL".into(),
                }),
                "web.1 was killed by SIGKILL (restart 2)",
            ),
            (
                None,
                Some(ExitReason::FailedToStart {
                    error: "/var/lib/berth/layers: gone".into(),
                }),
                "web.1 failed to start (restart 2)",
            ),
            (Some(1), None, "web.1 crashed with exit status 1 (restart 2)"),
            (
                None,
                None,
                "web.1 crashed with no exit status (killed) (restart 2)",
            ),
        ];
        for (code, reason, want) in cases {
            assert_eq!(crash_description("web.1", code, reason.as_ref(), mib, 2), want);
        }
    }
}
