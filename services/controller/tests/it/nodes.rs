//! Many nodes: spread, constraints and pending reasons, a node that misses its heartbeats and comes back,
//! cordon and drain. Three nodes with recording links; heartbeats are written by hand.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use agent_contract::{InstanceState, InstanceStatus};
use chrono::Utc;
use controller::{Controller, DrainPolicy, NodeHealthPolicy, NodeLink};
use route_table::RouteTable;
use store::testing::TestDatabase;
use store::{NodeRegistration, NodeState};
use tempfile::TempDir;
use tokio::sync::watch;
use vocabulary::{AppId, NodeId, ProcessType};

use crate::{config, RecordingNode, SetProbe};

struct Cluster {
    store: TestDatabase,
    controller: Controller,
    /// node-a, node-b, node-c (regions eu, eu, us).
    nodes: Vec<(NodeId, Arc<RecordingNode>)>,
    routes: watch::Receiver<Arc<RouteTable>>,
    app: AppId,
    _dir: TempDir,
}

impl Cluster {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = TestDatabase::from_env(&dir.path().join("berth.db"))
            .await
            .unwrap();
        let app = crate::shop(&store).await;
        let mut nodes = Vec::new();
        let mut links: HashMap<NodeId, Arc<dyn NodeLink>> = HashMap::new();
        for (name, region) in [("node-a", "eu"), ("node-b", "eu"), ("node-c", "us")] {
            let id = NodeId::new();
            store
                .register_node(&NodeRegistration {
                    id,
                    name: name.to_owned(),
                    memory_capacity_bytes: 4 << 30,
                    cpu_millicores: 4000,
                    disk_bytes: 10 << 30,
                    labels: BTreeMap::from([("region".to_owned(), region.to_owned())]),
                    agent_version: "test".to_owned(),
                })
                .await
                .unwrap();
            let link = Arc::new(RecordingNode::default());
            links.insert(id, link.clone());
            nodes.push((id, link));
        }
        let (routes_tx, routes) = watch::channel(Arc::new(RouteTable::default()));
        let drain = DrainPolicy {
            min_wait: Duration::ZERO,
            grace: Duration::from_secs(3600),
            recheck: Duration::from_millis(250),
        };
        let controller = Controller::new(
            config(drain),
            store.clone(),
            links,
            routes_tx,
            Arc::new(SetProbe::default()),
        )
        .with_node_health(NodeHealthPolicy {
            down_after: Duration::from_secs(30),
            startup_grace: Duration::ZERO,
        });
        Self {
            store,
            controller,
            nodes,
            routes,
            app,
            _dir: dir,
        }
    }

    async fn scale(&self, web: u32) {
        self.store
            .set_formation(self.app, &ProcessType::web(), web, 256 << 20)
            .await
            .unwrap();
        self.controller.reconcile().await.unwrap();
    }

    /// Every node that is up reports what it was told as running (the node at `skip` says nothing).
    async fn report_running(&self, skip: Option<usize>) {
        for (n, (node, link)) in self.nodes.iter().enumerate() {
            if Some(n) == skip {
                continue;
            }
            let statuses: Vec<InstanceStatus> = link
                .desired
                .lock()
                .unwrap()
                .iter()
                .map(|spec| InstanceStatus {
                    id: spec.id,
                    state: InstanceState::Running,
                    address: Some(format!("10.0.{n}.{}:5000", spec.index + 1).parse().unwrap()),
                    hostname: format!("shop-web-{}", spec.index),
                    last_exit: None,
                    oom_kills: 0,
                })
                .collect();
            self.store.apply_node_report(*node, &statuses).await.unwrap();
        }
        self.controller.reconcile().await.unwrap();
    }

    /// How many of the app's instances (not being stopped) each node has.
    async fn spread(&self) -> Vec<usize> {
        let instances = self.store.instances_of_app(self.app).await.unwrap();
        self.nodes
            .iter()
            .map(|(node, _)| {
                instances
                    .iter()
                    .filter(|i| i.node == *node && !i.stop_requested)
                    .count()
            })
            .collect()
    }

    async fn heartbeat(&self, n: usize, seconds_ago: i64) {
        let at = Utc::now() - chrono::Duration::seconds(seconds_ago);
        assert!(self.store.record_heartbeat(self.nodes[n].0, at).await.unwrap());
    }

    async fn pending(&self) -> Vec<(u32, String)> {
        self.store
            .pending_instances(self.app)
            .await
            .unwrap()
            .into_iter()
            .map(|p| (p.index, p.reason))
            .collect()
    }

    fn routed(&self) -> usize {
        self.routes.borrow().apps["shop"].backends.len()
    }
}

#[tokio::test]
async fn instances_spread_and_follow_constraints_or_say_why_they_wait() {
    let c = Cluster::new().await;
    c.scale(3).await;
    assert_eq!(c.spread().await, [1, 1, 1]);
    assert!(c.pending().await.is_empty());

    // Only eu: the us node's instance is replaced on an eu node... once the new one runs; scale-ups go to eu.
    let eu = BTreeMap::from([("region".to_owned(), "eu".to_owned())]);
    c.store.set_app_constraints(c.app, &eu).await.unwrap();
    c.scale(5).await;
    let spread = c.spread().await;
    assert_eq!(spread[2], 1, "what runs on the us node keeps running: {spread:?}");
    assert_eq!(spread[0] + spread[1], 4, "{spread:?}");

    // Nowhere to go: pending with the reason, and gone from the list once it can be placed.
    let ap = BTreeMap::from([("region".to_owned(), "ap".to_owned())]);
    c.store.set_app_constraints(c.app, &ap).await.unwrap();
    c.scale(6).await;
    assert_eq!(c.pending().await, [(6, "no node matches region=ap".to_owned())]);
    c.store
        .set_app_constraints(c.app, &BTreeMap::new())
        .await
        .unwrap();
    c.controller.reconcile().await.unwrap();
    assert!(c.pending().await.is_empty());
    assert_eq!(c.spread().await.iter().sum::<usize>(), 6);
}

#[tokio::test]
async fn a_down_node_is_replaced_and_its_stale_instances_stop_when_it_returns() {
    let c = Cluster::new().await;
    c.scale(2).await;
    c.report_running(None).await;
    // Which nodes got them depends on the random node IDs (ties go to the lowest).
    let spread = c.spread().await;
    let used: Vec<usize> = (0..3).filter(|n| spread[*n] == 1).collect();
    let [kept, lost] = used[..] else {
        panic!("{spread:?}")
    };
    let free = 3 - kept - lost;
    let layout = |on_kept, on_lost, on_free| {
        let mut want = [0; 3];
        (want[kept], want[lost], want[free]) = (on_kept, on_lost, on_free);
        want.to_vec()
    };

    // The node misses its heartbeats: its web instance is replaced on the free node and leaves the routes.
    c.heartbeat(kept, 0).await;
    c.heartbeat(free, 0).await;
    c.heartbeat(lost, 60).await;
    c.controller.reconcile().await.unwrap();
    assert_eq!(c.spread().await, layout(1, 0, 1));
    assert_eq!(
        c.routed(),
        1,
        "only the other instance serves until the replacement runs"
    );
    c.report_running(Some(lost)).await;
    assert_eq!(c.routed(), 2);

    // It comes back still running its old instance: its desired set (which a returning agent pulls) no
    // longer has it, so the agent stops it.
    c.heartbeat(lost, 0).await;
    c.controller.reconcile().await.unwrap();
    assert!(
        c.nodes[lost].1.desired_ids().is_empty(),
        "the stale instance must stop"
    );
    assert_eq!(c.spread().await, layout(1, 0, 1), "nothing moves back");

    // Every node down: the reason says so.
    for n in 0..3 {
        c.heartbeat(n, 120).await;
    }
    c.scale(3).await;
    let pending = c.pending().await;
    assert_eq!(pending.len(), 3, "{pending:?}");
    assert_eq!(pending[0].1, "no schedulable node (3 down)");
}

#[tokio::test]
async fn cordoned_nodes_take_nothing_new_and_drained_nodes_empty_by_rolling_replacement() {
    let c = Cluster::new().await;
    c.store
        .set_node_state(c.nodes[0].0, NodeState::Cordoned)
        .await
        .unwrap();
    c.scale(4).await;
    assert_eq!(c.spread().await, [0, 2, 2]);
    c.report_running(None).await;
    assert_eq!(c.routed(), 4);

    // Uncordon node-a and drain node-b: node-b's two instances get replacements elsewhere first...
    c.store
        .set_node_state(c.nodes[0].0, NodeState::Ready)
        .await
        .unwrap();
    c.store
        .set_node_state(c.nodes[1].0, NodeState::Draining)
        .await
        .unwrap();
    c.controller.reconcile().await.unwrap();
    let instances = c.store.instances_of_app(c.app).await.unwrap();
    assert_eq!(instances.len(), 6, "replacements start beside the old ones");
    assert_eq!(c.routed(), 4, "the old ones keep serving meanwhile");
    assert_eq!(c.nodes[1].1.desired_ids().len(), 2);

    // ...and once they run, the old ones leave the routes and their node is told to stop them.
    c.report_running(None).await;
    assert_eq!(c.spread().await, [2, 0, 2]);
    assert_eq!(c.routed(), 4);
    c.controller.reconcile().await.unwrap();
    assert!(c.nodes[1].1.desired_ids().is_empty());
}

#[tokio::test]
async fn one_offs_go_to_a_node_that_takes_new_instances() {
    let c = Cluster::new().await;
    let links: HashMap<NodeId, Arc<dyn NodeLink>> = c
        .nodes
        .iter()
        .map(|(id, link)| (*id, link.clone() as Arc<dyn NodeLink>))
        .collect();
    let one_offs = controller::OneOffs::new(
        config(DrainPolicy::default()),
        controller::OneOffLimits::default(),
        c.store.clone(),
        &links,
    );
    let app = c.store.app(c.app).await.unwrap().unwrap();
    let argv = ["true".to_owned()];
    let run = || one_offs.run(&app, &argv, None, None);

    // Every node cordoned, draining or down: refused, saying why.
    c.store
        .set_node_state(c.nodes[0].0, NodeState::Cordoned)
        .await
        .unwrap();
    c.store
        .set_node_state(c.nodes[1].0, NodeState::Draining)
        .await
        .unwrap();
    c.heartbeat(2, 120).await;
    let Err(refused) = run().await else {
        panic!("no node may take it")
    };
    let refused = refused.to_string();
    assert!(
        refused.contains("every node is cordoned, draining or down"),
        "{refused}"
    );

    // One comes back: it is asked (the recording node answers that it runs no one-offs).
    c.heartbeat(2, 0).await;
    let Err(asked) = run().await else {
        panic!("the test node refuses")
    };
    let asked = asked.to_string();
    assert!(asked.contains("does not run one-off instances"), "{asked}");
}
