//! The node inventory, app constraints and pending instances.
use store::testing::TestDatabase;

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use store::{NodeRegistration, NodeRemoval, NodeState, PendingInstance};
use vocabulary::{NodeId, ProcessType};

use crate::{account, app};

fn registration(name: &str) -> NodeRegistration {
    NodeRegistration {
        id: NodeId::new(),
        name: name.to_owned(),
        memory_capacity_bytes: 8 << 30,
        cpu_millicores: 4000,
        disk_bytes: 100 << 30,
        labels: BTreeMap::from([("region".to_owned(), "eu".to_owned())]),
        agent_version: "0.1.0".to_owned(),
    }
}

async fn nodes_register_heartbeat_and_change_state(store: TestDatabase) {
    let mut node = registration("node-a");
    store.register_node(&node).await.unwrap();
    let [record] = store.node_inventory().await.unwrap().try_into().unwrap();
    assert_eq!(
        (record.id, record.cpu_millicores, record.disk_bytes, record.state),
        (node.id, 4000, 100 << 30, NodeState::Ready)
    );
    assert_eq!(record.labels, node.labels);
    assert_eq!(record.agent_version, "0.1.0");
    assert!(
        record.last_heartbeat_at.is_some(),
        "registering counts as a heartbeat"
    );

    // A heartbeat at a given time is what the inventory then says.
    let at = Utc::now() - Duration::seconds(90);
    assert!(store.record_heartbeat(node.id, at).await.unwrap());
    let record = store.find_node("node-a").await.unwrap().unwrap();
    let seen = record.last_heartbeat_at.unwrap();
    assert!((seen - at).num_milliseconds().abs() < 1, "{seen} vs {at}");
    assert!(
        !store.record_heartbeat(NodeId::new(), at).await.unwrap(),
        "unknown node"
    );

    // The operator's state survives a new registration (an agent restart) with new capacity and labels.
    assert!(store.set_node_state(node.id, NodeState::Cordoned).await.unwrap());
    node.cpu_millicores = 8000;
    node.labels.insert("disk".to_owned(), "ssd".to_owned());
    store.register_node(&node).await.unwrap();
    let record = store.find_node(&node.id.to_string()).await.unwrap().unwrap();
    assert_eq!(
        (record.state, record.cpu_millicores, record.labels.len()),
        (NodeState::Cordoned, 8000, 2)
    );
    assert!(store.find_node("node-z").await.unwrap().is_none());

    // The older view of nodes still sees it.
    assert_eq!(store.nodes().await.unwrap()[0].id, node.id);
}

async fn a_node_is_removed_only_when_nothing_is_placed_on_it(store: TestDatabase) {
    let node = registration("node-a");
    store.register_node(&node).await.unwrap();
    let (owner, _) = account(&store, "alice").await;
    let a = app(&store, &owner, "shop").await;
    let release = crate::release(&store, &a, &owner, &["web"]).await;
    let instance = store::Instance {
        id: vocabulary::InstanceId::new(),
        app: a.id,
        release: release.id,
        process_type: ProcessType::web(),
        index: 1,
        node: node.id,
        memory_bytes: 256 << 20,
        state: store::InstanceRowState::Running,
        stop_requested: false,
        replace_requested: false,
        address: None,
        hostname: None,
        restarts: 0,
        last_exit: None,
        created_at: Utc::now(),
    };
    store.insert_instance(&instance).await.unwrap();
    assert_eq!(
        store.remove_node(node.id).await.unwrap(),
        NodeRemoval::StillPlaced(1)
    );
    store.delete_app(a.id).await.unwrap();
    assert_eq!(store.remove_node(node.id).await.unwrap(), NodeRemoval::Removed);
    assert_eq!(store.remove_node(node.id).await.unwrap(), NodeRemoval::NotFound);
    assert!(store.node_inventory().await.unwrap().is_empty());
}

async fn apps_keep_constraints(store: TestDatabase) {
    let (owner, _) = account(&store, "alice").await;
    let a = app(&store, &owner, "shop").await;
    let b = app(&store, &owner, "blog").await;
    assert!(store.app_constraints(a.id).await.unwrap().is_empty());
    let eu = BTreeMap::from([("region".to_owned(), "eu".to_owned())]);
    store.set_app_constraints(a.id, &eu).await.unwrap();
    assert_eq!(store.app_constraints(a.id).await.unwrap(), eu);
    let all = store.all_app_constraints().await.unwrap();
    assert_eq!((all.len(), all.get(&a.id)), (1, Some(&eu)));
    assert!(!all.contains_key(&b.id));
    store.set_app_constraints(a.id, &BTreeMap::new()).await.unwrap();
    assert!(store.all_app_constraints().await.unwrap().is_empty());
}

async fn pending_instances_are_replaced_and_keep_their_since(store: TestDatabase) {
    let (owner, _) = account(&store, "alice").await;
    let a = app(&store, &owner, "shop").await;
    let pending = |index, reason: &str| PendingInstance {
        app: a.id,
        process_type: ProcessType::web(),
        index,
        reason: reason.to_owned(),
        since: Utc::now(),
    };
    store
        .replace_pending_instances(&[
            pending(2, "no node matches region=eu"),
            pending(3, "no node matches region=eu"),
        ])
        .await
        .unwrap();
    let first = store.pending_instances(a.id).await.unwrap();
    assert_eq!(first.iter().map(|p| p.index).collect::<Vec<_>>(), [2, 3]);

    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    store
        .replace_pending_instances(&[
            pending(3, "no node matches region=eu"),
            pending(4, "no schedulable node (1 down)"),
        ])
        .await
        .unwrap();
    let second = store.pending_instances(a.id).await.unwrap();
    assert_eq!(second.iter().map(|p| p.index).collect::<Vec<_>>(), [3, 4]);
    assert_eq!(
        second[0].since, first[1].since,
        "web.3 waits for the same reason since before"
    );
    assert!(second[1].since > first[1].since);
    assert_eq!(second[1].reason, "no schedulable node (1 down)");

    store.replace_pending_instances(&[]).await.unwrap();
    assert!(store.pending_instances(a.id).await.unwrap().is_empty());
}

on_both_backends!(
    nodes_register_heartbeat_and_change_state,
    a_node_is_removed_only_when_nothing_is_placed_on_it,
    apps_keep_constraints,
    pending_instances_are_replaced_and_keep_their_since,
);
