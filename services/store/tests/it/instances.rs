use agent_contract::{ExitReason, InstanceState, InstanceStatus, LastExit};
use store::{App, Instance, InstanceExit, InstanceRowState, Node, Release, Store};
use vocabulary::{InstanceId, NodeId, ProcessType};

use crate::{account, app, release};
use store::testing::TestDatabase;

pub async fn node(store: &Store) -> Node {
    let node = Node {
        id: NodeId::new(),
        name: "node-1".to_owned(),
        memory_capacity_bytes: 8 << 30,
    };
    store.upsert_node(&node).await.expect("upsert node");
    node
}

pub fn instance(app: &App, release: &Release, node: &Node, index: u32) -> Instance {
    Instance {
        id: InstanceId::new(),
        app: app.id,
        release: release.id,
        process_type: ProcessType::web(),
        index,
        node: node.id,
        memory_bytes: 256 << 20,
        state: InstanceRowState::Starting,
        stop_requested: false,
        replace_requested: false,
        address: None,
        hostname: None,
        restarts: 0,
        last_exit: None,
        created_at: chrono::Utc::now(),
    }
}

fn status(id: InstanceId, state: InstanceState, addr: &str) -> InstanceStatus {
    InstanceStatus {
        id,
        state,
        address: Some(addr.parse().unwrap()),
        hostname: format!("host-{}", id.short()),
        last_exit: None,
        oom_kills: 0,
    }
}

async fn nodes_upsert(store: TestDatabase) {
    let mut n = node(&store).await;
    n.memory_capacity_bytes = 1 << 30;
    n.name = "renamed".to_owned();
    store.upsert_node(&n).await.unwrap();
    assert_eq!(store.nodes().await.unwrap(), vec![n]);
}

async fn instances_are_listed_by_app_and_node(store: TestDatabase) {
    let (alice, _) = account(&store, "alice").await;
    let shop = app(&store, &alice, "shop").await;
    let blog = app(&store, &alice, "blog").await;
    let shop_v1 = release(&store, &shop, &alice, &["web"]).await;
    let blog_v1 = release(&store, &blog, &alice, &["web"]).await;
    let n1 = node(&store).await;
    let n2 = node(&store).await;
    let a = instance(&shop, &shop_v1, &n1, 2);
    let b = instance(&shop, &shop_v1, &n2, 1);
    let c = instance(&blog, &blog_v1, &n1, 1);
    for i in [&a, &b, &c] {
        store.insert_instance(i).await.unwrap();
    }
    let ids = |v: Vec<Instance>| v.into_iter().map(|i| i.id).collect::<Vec<_>>();
    assert_eq!(ids(store.instances_of_app(shop.id).await.unwrap()), [b.id, a.id]);
    let on_n1 = ids(store.instances_on_node(n1.id).await.unwrap());
    assert_eq!(on_n1.len(), 2);
    assert!(on_n1.contains(&a.id) && on_n1.contains(&c.id));
    assert_eq!(store.all_instances().await.unwrap().len(), 3);
    let stored = store.instances_of_app(blog.id).await.unwrap().remove(0);
    assert_eq!(stored.state, InstanceRowState::Starting);
    assert_eq!(
        (stored.index, stored.memory_bytes, stored.node),
        (1, 256 << 20, n1.id)
    );
    // The same ID twice is refused.
    assert!(store.insert_instance(&a).await.is_err());
}

async fn node_reports_update_rows_and_reap_stopped_ones(store: TestDatabase) {
    let (alice, _) = account(&store, "alice").await;
    let shop = app(&store, &alice, "shop").await;
    let v1 = release(&store, &shop, &alice, &["web"]).await;
    let n1 = node(&store).await;
    let n2 = node(&store).await;
    let web1 = instance(&shop, &v1, &n1, 1);
    let web2 = instance(&shop, &v1, &n1, 2);
    let elsewhere = instance(&shop, &v1, &n2, 3);
    for i in [&web1, &web2, &elsewhere] {
        store.insert_instance(i).await.unwrap();
    }
    let get = |id: InstanceId| {
        let store = store.clone();
        async move {
            store
                .all_instances()
                .await
                .unwrap()
                .into_iter()
                .find(|i| i.id == id)
        }
    };

    // web.1 runs; web.2 is not reported yet and stays as it was.
    let report = [status(web1.id, InstanceState::Running, "10.0.0.2:5000")];
    assert!(store.apply_node_report(n1.id, &report).await.unwrap());
    let row = get(web1.id).await.unwrap();
    assert_eq!(row.state, InstanceRowState::Running);
    assert_eq!(row.address, Some("10.0.0.2:5000".parse().unwrap()));
    assert_eq!(
        row.hostname.as_deref(),
        Some(format!("host-{}", web1.id.short()).as_str())
    );
    assert_eq!(get(web2.id).await.unwrap().state, InstanceRowState::Starting);

    // The same report again changes nothing.
    assert!(!store.apply_node_report(n1.id, &report).await.unwrap());

    // A crash records the restart count and the last exit; running again keeps both (a report without a
    // last exit, from an older agent, does not erase it).
    let crashed = InstanceState::Crashed {
        exit_code: Some(137),
        reason: Some(ExitReason::OutOfMemory),
        restarts: 2,
    };
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-30T01:02:03.456789Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let mut crash = status(web1.id, crashed, "10.0.0.2:5000");
    crash.last_exit = Some(LastExit {
        reason: ExitReason::OutOfMemory,
        at,
    });
    assert!(store.apply_node_report(n1.id, &[crash]).await.unwrap());
    let row = get(web1.id).await.unwrap();
    assert_eq!((row.state, row.restarts), (InstanceRowState::Crashed, 2));
    let want = Some(InstanceExit {
        reason: "out of memory".into(),
        at,
    });
    assert_eq!(row.last_exit, want);
    assert!(store.apply_node_report(n1.id, &report).await.unwrap());
    let row = get(web1.id).await.unwrap();
    assert_eq!((row.restarts, row.last_exit), (2, want));

    // A report from n1 cannot touch an instance placed on n2, and unknown IDs are ignored.
    let foreign = [
        status(elsewhere.id, InstanceState::Running, "10.0.0.9:5000"),
        status(InstanceId::new(), InstanceState::Running, "10.0.0.8:5000"),
    ];
    assert!(!store.apply_node_report(n1.id, &foreign).await.unwrap());
    assert_eq!(get(elsewhere.id).await.unwrap().state, InstanceRowState::Starting);

    // Stop requested: listed while the node still reports it, deleted once it does not.
    store.request_stop(&[web1.id]).await.unwrap();
    assert!(get(web1.id).await.unwrap().stop_requested);
    assert!(store
        .apply_node_report(
            n1.id,
            &[status(web1.id, InstanceState::Stopping, "10.0.0.2:5000")]
        )
        .await
        .unwrap());
    assert_eq!(get(web1.id).await.unwrap().state, InstanceRowState::Stopping);
    assert!(store.apply_node_report(n1.id, &[]).await.unwrap());
    assert!(get(web1.id).await.is_none());
    // Not asked to stop: an unreported row stays.
    assert!(get(web2.id).await.is_some());
    assert!(get(elsewhere.id).await.is_some());
}

async fn replacing_marks_only_the_apps_own_live_instances(store: TestDatabase) {
    let (alice, _) = account(&store, "alice").await;
    let shop = app(&store, &alice, "shop").await;
    let blog = app(&store, &alice, "blog").await;
    let n = node(&store).await;
    let shop_v1 = release(&store, &shop, &alice, &["web"]).await;
    let blog_v1 = release(&store, &blog, &alice, &["web"]).await;
    let web1 = instance(&shop, &shop_v1, &n, 1);
    let mut leaving = instance(&shop, &shop_v1, &n, 2);
    leaving.stop_requested = true;
    let other = instance(&blog, &blog_v1, &n, 1);
    for i in [&web1, &leaving, &other] {
        store.insert_instance(i).await.unwrap();
    }
    // Another app's instance and one already stopping are left alone.
    let marked = store
        .request_replace(shop.id, &[web1.id, leaving.id, other.id])
        .await
        .unwrap();
    assert_eq!(marked, 1);
    let marked: Vec<_> = store
        .all_instances()
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i.replace_requested)
        .map(|i| i.id)
        .collect();
    assert_eq!(marked, vec![web1.id]);
}

on_both_backends!(
    nodes_upsert,
    instances_are_listed_by_app_and_node,
    node_reports_update_rows_and_reap_stopped_ones,
    replacing_marks_only_the_apps_own_live_instances,
);
