//! The operator's node routes: admin tokens only; list, cordon, uncordon, drain, remove; and app constraints
//! and pending instances as tenants see them.

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use serde_json::json;
use store::{NodeRegistration, NodeState};
use vocabulary::NodeId;

use crate::Harness;

async fn node(h: &Harness, name: &str) -> NodeId {
    let id = NodeId::new();
    h.store
        .register_node(&NodeRegistration {
            id,
            name: name.to_owned(),
            memory_capacity_bytes: 8 << 30,
            cpu_millicores: 4000,
            disk_bytes: 50 << 30,
            labels: BTreeMap::from([("region".to_owned(), "eu".to_owned())]),
            agent_version: "1.2.3".to_owned(),
        })
        .await
        .unwrap();
    id
}

/// A release with a `web` process, by the app's owner.
async fn release(h: &Harness, app: &store::App) -> store::Release {
    h.store
        .create_release(store::NewRelease {
            app: app.id,
            image_digest: format!("sha256:{}", "ab".repeat(32)),
            processes: BTreeMap::from([(vocabulary::ProcessType::web(), "run".to_owned())]),
            config: BTreeMap::new(),
            description: "Deploy".to_owned(),
            created_by: app.owner,
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn only_admins_reach_the_node_routes() {
    let h = Harness::new().await;
    node(&h, "node-a").await;
    let tenant = h.tenant("alice").await;
    let routes = [
        (Method::GET, "/v1/admin/nodes"),
        (Method::POST, "/v1/admin/nodes/node-a/cordon"),
        (Method::POST, "/v1/admin/nodes/node-a/uncordon"),
        (Method::POST, "/v1/admin/nodes/node-a/drain"),
        (Method::DELETE, "/v1/admin/nodes/node-a"),
    ];
    for (method, uri) in routes {
        let none = h.call(method.clone(), uri, None, None).await;
        assert_eq!(none.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        let reply = h.call(method.clone(), uri, Some(&tenant), None).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{method} {uri}");
        assert!(
            reply.error().starts_with("only an admin account may"),
            "{}",
            reply.error()
        );
    }
    // Nothing changed.
    let [record] = h.store.node_inventory().await.unwrap().try_into().unwrap();
    assert_eq!(record.state, NodeState::Ready);
}

#[tokio::test]
async fn admins_list_cordon_drain_and_remove_nodes() {
    let mut h = Harness::new().await;
    let a = node(&h, "node-a").await;
    node(&h, "node-b").await;
    let admin = h.admin.clone();

    let list = h.get("/v1/admin/nodes", &admin).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let nodes = list.body.as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0]["name"], "node-a");
    assert_eq!(nodes[0]["state"], "ready");
    assert_eq!(nodes[0]["health"], "up");
    assert_eq!(nodes[0]["cpu_millicores"], 4000);
    assert_eq!(nodes[0]["labels"], json!({"region": "eu"}));
    assert_eq!(nodes[0]["agent_version"], "1.2.3");
    assert_eq!(nodes[0]["instances"], 0);

    for (action, state) in [
        ("cordon", "cordoned"),
        ("drain", "draining"),
        ("uncordon", "ready"),
    ] {
        let uri = format!("/v1/admin/nodes/node-a/{action}");
        let reply = h.call(Method::POST, &uri, Some(&admin), None).await;
        assert_eq!(reply.status, StatusCode::OK, "{action}: {}", reply.body);
        assert_eq!(reply.body["state"], state, "{action}");
        let events = h.take_events();
        assert!(
            matches!(events.as_slice(), [controller::Event::NodesChanged]),
            "{events:?}"
        );
    }
    // By ID too; an unknown node is a clear 404.
    let by_id = format!("/v1/admin/nodes/{a}/cordon");
    assert_eq!(
        h.call(Method::POST, &by_id, Some(&admin), None).await.status,
        StatusCode::OK
    );
    h.take_events();
    let missing = h
        .call(Method::POST, "/v1/admin/nodes/node-z/drain", Some(&admin), None)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(
        missing.error().contains("no node \"node-z\""),
        "{}",
        missing.error()
    );

    // A node with an instance placed on it is not removed.
    let tenant = h.tenant("alice").await;
    assert_eq!(h.create_app("shop", &tenant).await.status, StatusCode::CREATED);
    let app = h.app("shop").await;
    let release = release(&h, &app).await;
    h.store
        .insert_instance(&store::Instance {
            id: vocabulary::InstanceId::new(),
            app: app.id,
            release: release.id,
            process_type: vocabulary::ProcessType::web(),
            index: 1,
            node: a,
            memory_bytes: 256 << 20,
            state: store::InstanceRowState::Running,
            stop_requested: false,
            replace_requested: false,
            address: None,
            hostname: None,
            restarts: 0,
            last_exit: None,
            created_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
    let list = h.get("/v1/admin/nodes", &admin).await;
    assert_eq!(list.body[0]["instances"], 1);
    assert_eq!(list.body[0]["allocated_memory_bytes"], 256 << 20);
    let refused = h.delete("/v1/admin/nodes/node-a", &admin).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.error().contains("drain it first"), "{}", refused.error());
    let removed = h.delete("/v1/admin/nodes/node-b", &admin).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.body);
    assert_eq!(
        h.get("/v1/admin/nodes", &admin)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn apps_take_constraints_and_show_pending_instances() {
    let mut h = Harness::new().await;
    let tenant = h.tenant("alice").await;
    let reply = h
        .call(
            Method::POST,
            "/v1/apps",
            Some(&tenant),
            Some(json!({"name": "shop", "constraints": {"region": "eu"}})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["constraints"], json!({"region": "eu"}));
    h.take_events();

    let bad = h
        .call(
            Method::PATCH,
            "/v1/apps/shop",
            Some(&tenant),
            Some(json!({"constraints": {"region": "e u"}})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.error().starts_with("constraint: label"), "{}", bad.error());
    let cleared = h
        .call(
            Method::PATCH,
            "/v1/apps/shop",
            Some(&tenant),
            Some(json!({"constraints": {}})),
        )
        .await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.body);
    assert_eq!(cleared.body["constraints"], json!({}));

    // What the controller recorded as pending is listed with the instances, with its reason.
    let app = h.app("shop").await;
    release(&h, &app).await;
    h.store
        .replace_pending_instances(&[store::PendingInstance {
            app: app.id,
            process_type: vocabulary::ProcessType::web(),
            index: 3,
            reason: "no node matches region=eu".to_owned(),
            since: chrono::Utc::now(),
        }])
        .await
        .unwrap();
    let instances = h.get("/v1/apps/shop/instances", &tenant).await;
    assert_eq!(instances.status, StatusCode::OK);
    let [pending] = instances.body.as_array().unwrap().clone().try_into().unwrap();
    assert_eq!(pending["name"], "web.3");
    assert_eq!(pending["state"], "pending");
    assert_eq!(pending["pending_reason"], "no node matches region=eu");
}
