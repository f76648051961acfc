//! The reconcile loop against a real temp SQLite store (or a fresh PostgreSQL database with
//! `BERTH_TEST_BACKEND=postgres`, see `store::testing`), with a node link that records what each node is told
//! and a drain probe the test sets.

mod certificates;
mod drain;
mod leadership;
mod nodes;
mod release_phase;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_contract::{InstanceSpec, InstanceState, InstanceStatus};
use controller::{Controller, ControllerConfig, DrainPolicy, DrainProbe, NodeLink};
use route_table::RouteTable;
use store::testing::TestDatabase;
use store::NewRelease;
use tempfile::TempDir;
use tokio::sync::watch;
use vocabulary::{AccountName, AppId, AppName, InstanceId, NodeId, ProcessType};

/// Records the last desired set it was given.
#[derive(Default)]
pub struct RecordingNode {
    pub desired: Mutex<Vec<InstanceSpec>>,
}

impl NodeLink for RecordingNode {
    fn set_desired(&self, specs: Vec<InstanceSpec>) {
        *self.desired.lock().unwrap() = specs;
    }
}

impl RecordingNode {
    pub fn desired_ids(&self) -> Vec<InstanceId> {
        let mut ids: Vec<InstanceId> = self.desired.lock().unwrap().iter().map(|s| s.id).collect();
        ids.sort();
        ids
    }
}

/// In-flight counts the test sets per backend.
#[derive(Default)]
pub struct SetProbe(pub Mutex<HashMap<SocketAddr, usize>>);

impl DrainProbe for SetProbe {
    fn in_flight(&self, backend: SocketAddr) -> usize {
        self.0.lock().unwrap().get(&backend).copied().unwrap_or(0)
    }
}

/// The tests' controller config: port 5000, one core, a tick that never comes by itself.
pub fn config(drain: DrainPolicy) -> ControllerConfig {
    ControllerConfig {
        domain: "apps.test".into(),
        instance_port: 5000,
        cpu_millicores: 1000,
        pids_max: 100,
        tick: Duration::from_secs(3600),
        platform_certificate: None,
        drain,
    }
}

pub struct World {
    pub store: TestDatabase,
    pub controller: Controller,
    pub node: NodeId,
    pub link: Arc<RecordingNode>,
    pub probe: Arc<SetProbe>,
    pub routes: watch::Receiver<Arc<RouteTable>>,
    pub app: AppId,
    _dir: TempDir,
}

impl World {
    /// One node, one app `shop` with a release that has a `web` process, and `drain` as the policy.
    pub async fn new(drain: DrainPolicy) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = TestDatabase::from_env(&dir.path().join("berth.db"))
            .await
            .unwrap();
        let app = shop(&store).await;
        let node = NodeId::new();
        store
            .upsert_node(&store::Node {
                id: node,
                name: "local".into(),
                memory_capacity_bytes: 8 << 30,
            })
            .await
            .unwrap();
        let link = Arc::new(RecordingNode::default());
        let probe = Arc::new(SetProbe::default());
        let (routes_tx, routes) = watch::channel(Arc::new(RouteTable::default()));
        let links: HashMap<NodeId, Arc<dyn NodeLink>> =
            HashMap::from([(node, link.clone() as Arc<dyn NodeLink>)]);
        let controller = Controller::new(
            config(drain),
            store.store.clone(),
            links,
            routes_tx,
            probe.clone(),
        );
        Self {
            store,
            controller,
            node,
            link,
            probe,
            routes,
            app,
            _dir: dir,
        }
    }

    pub async fn scale(&self, web: u32) {
        self.store
            .set_formation(self.app, &ProcessType::web(), web, 64 << 20)
            .await
            .unwrap();
        self.controller.reconcile().await.unwrap();
    }

    /// The node reports every instance it was told about as running at 10.0.0.(index+1):5000, like an agent.
    pub async fn report_running(&self) {
        let statuses: Vec<InstanceStatus> = self
            .link
            .desired
            .lock()
            .unwrap()
            .iter()
            .map(|spec| InstanceStatus {
                id: spec.id,
                state: InstanceState::Running,
                address: Some(address(spec.index)),
                hostname: format!("shop-web-{}", spec.index),
                last_exit: None,
                oom_kills: 0,
            })
            .collect();
        self.store.apply_node_report(self.node, &statuses).await.unwrap();
        self.controller.reconcile().await.unwrap();
    }

    pub fn routed(&self) -> Vec<String> {
        let table = self.routes.borrow();
        table.apps["shop"]
            .backends
            .iter()
            .map(|b| b.instance.clone())
            .collect()
    }
}

/// Account `alice` with app `shop` and a release that has a `web` process.
pub async fn shop(store: &store::Store) -> AppId {
    let (owner, _) = store
        .create_account(&AccountName::new("alice").unwrap(), false)
        .await
        .unwrap();
    let app = store
        .create_app(owner.id, &AppName::new("shop").unwrap())
        .await
        .unwrap();
    store
        .create_release(NewRelease {
            app: app.id,
            image_digest: format!("sha256:{}", "ab".repeat(32)),
            processes: BTreeMap::from([(ProcessType::web(), "python3 app.py".to_owned())]),
            config: BTreeMap::new(),
            description: "Deploy".to_owned(),
            created_by: owner.id,
        })
        .await
        .unwrap();
    app.id
}

pub fn address(index: u32) -> SocketAddr {
    format!("10.0.0.{}:5000", index + 1).parse().unwrap()
}

#[tokio::test]
async fn the_apps_stop_grace_goes_into_its_instances_specs() {
    let w = World::new(controller::DrainPolicy::default()).await;
    w.scale(1).await;
    let graces = || -> Vec<Option<u32>> {
        w.link
            .desired
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.stop_grace_secs)
            .collect()
    };
    assert_eq!(graces(), [None], "unset: the agent's default");
    w.store.set_stop_grace_secs(w.app, Some(45)).await.unwrap();
    w.controller.reconcile().await.unwrap();
    assert_eq!(graces(), [Some(45)]);
}

#[tokio::test]
async fn boot_timeout_and_health_checks_go_into_specs() {
    use agent_contract::HealthCheck;
    let w = World::new(controller::DrainPolicy::default()).await;
    w.scale(1).await;
    let spec = || w.link.desired.lock().unwrap()[0].clone();
    assert_eq!((spec().boot_timeout_secs, spec().health_check), (None, None));
    // What a new release's app.json declared...
    let v1 = w.store.latest_release(w.app).await.unwrap().unwrap();
    let declared = HealthCheck {
        path: "/health".into(),
        timeout_secs: 2,
        attempts: 9,
        wait_secs: 1,
    };
    let checks = BTreeMap::from([(ProcessType::web(), declared.clone())]);
    let new = NewRelease {
        app: w.app,
        image_digest: v1.image_digest.clone(),
        processes: v1.processes.clone(),
        config: v1.config.clone(),
        description: "Deploy with app.json".to_owned(),
        created_by: v1.created_by,
    };
    let v2 = w
        .store
        .create_release_with_checks(new, store::ReleaseKind::Build, checks)
        .await
        .unwrap();
    w.store.set_boot_timeout_secs(w.app, Some(7)).await.unwrap();
    w.controller.reconcile().await.unwrap();
    // (v1's instance keeps running beside it until v2's runs.)
    let spec = || {
        let desired = w.link.desired.lock().unwrap();
        desired.iter().find(|s| s.release == v2.id).unwrap().clone()
    };
    assert_eq!(
        (spec().boot_timeout_secs, spec().health_check),
        (Some(7), Some(declared))
    );
    // ...and the app's own path, which wins.
    w.store.set_health_check_path(w.app, Some("/up")).await.unwrap();
    w.controller.reconcile().await.unwrap();
    assert_eq!(spec().health_check, Some(HealthCheck::of_path("/up")));
}

/// A rolling deploy of web=3 through the reconcile loop: one new instance at a time, and one old one leaves the
/// route table each time a new one runs.
#[tokio::test]
async fn a_rolling_deploy_replaces_one_instance_at_a_time() {
    let w = World::new(controller::DrainPolicy::default()).await;
    w.store
        .set_deploy_strategy(w.app, vocabulary::DeployStrategy::Rolling)
        .await
        .unwrap();
    w.scale(3).await;
    w.report_running().await;
    let v1 = w.store.latest_release(w.app).await.unwrap().unwrap();
    let v2 = w
        .store
        .create_release(NewRelease {
            app: w.app,
            image_digest: v1.image_digest.clone(),
            processes: v1.processes.clone(),
            config: BTreeMap::from([("V".to_owned(), "2".to_owned())]),
            description: "Set V".to_owned(),
            created_by: v1.created_by,
        })
        .await
        .unwrap();
    // (instances of v2, of v1 not asked to stop) after each step.
    let counts = || async {
        let instances = w.store.instances_of_app(w.app).await.unwrap();
        let new = instances.iter().filter(|i| i.release == v2.id).count();
        let old = instances
            .iter()
            .filter(|i| i.release == v1.id && !i.stop_requested)
            .count();
        (new, old)
    };
    w.controller.reconcile().await.unwrap();
    assert_eq!(
        counts().await,
        (1, 3),
        "one new instance starts, the old ones stay"
    );
    w.controller.reconcile().await.unwrap();
    assert_eq!(
        counts().await,
        (1, 3),
        "no second one while the first is starting"
    );
    for (step, want) in [(1, (2, 2)), (2, (3, 1)), (3, (3, 0))] {
        w.report_running().await;
        assert_eq!(counts().await, want, "after new instance {step} runs");
    }
}
