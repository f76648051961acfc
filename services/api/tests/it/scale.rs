use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use controller::Event;
use serde_json::json;
use store::{Instance, InstanceRowState, NewRelease, Node};
use vocabulary::{InstanceId, NodeId, ProcessType};

use crate::{Harness, DEFAULT_MEMORY};

async fn deploy(h: &Harness, app: &str, processes: &[&str]) -> store::Release {
    let app = h.app(app).await;
    h.store
        .create_release(NewRelease {
            app: app.id,
            image_digest: "sha256:00".to_owned(),
            processes: processes
                .iter()
                .map(|p| (ProcessType::new(*p).unwrap(), format!("run {p}")))
                .collect(),
            config: BTreeMap::from([("SECRET_KEY".to_owned(), "hunter2".to_owned())]),
            description: "Deploy 1a2b3c4".to_owned(),
            created_by: app.owner,
        })
        .await
        .unwrap()
}

async fn scale(h: &Harness, token: &str, body: serde_json::Value) -> crate::Reply {
    h.call(Method::PATCH, "/v1/apps/shop/formation", Some(token), Some(body))
        .await
}

#[tokio::test]
async fn scaling_web_before_any_release_and_events() {
    let mut h = Harness::new().await;
    let alice = h.tenant("alice").await;
    h.create_app("shop", &alice).await;
    let app_id = h.store.all_apps().await.unwrap()[0].id;

    let reply = scale(&h, &alice, json!({"web": 2})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!([{"type": "web", "quantity": 2, "memory_bytes": DEFAULT_MEMORY}])
    );
    let events = h.take_events();
    assert!(
        matches!(events.as_slice(), [Event::FormationChanged(id)] if *id == app_id),
        "{events:?}"
    );
    assert_eq!(h.get("/v1/apps/shop/formation", &alice).await.body, reply.body);

    let reply = scale(&h, &alice, json!({"worker": 1})).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        reply.error(),
        "app shop has no release yet: only web can be scaled before the first deploy"
    );
    assert!(h.take_events().is_empty());
}

#[tokio::test]
async fn process_types_come_from_the_latest_release() {
    let mut h = Harness::new().await;
    let alice = h.tenant("alice").await;
    h.create_app("shop", &alice).await;
    deploy(&h, "shop", &["web", "worker"]).await;

    // The formation shows the release's types, unscaled.
    let reply = h.get("/v1/apps/shop/formation", &alice).await;
    assert_eq!(reply.body.as_array().unwrap().len(), 2);
    assert!(reply.body.as_array().unwrap().iter().all(|l| l["quantity"] == 0));

    let reply = scale(&h, &alice, json!({"web": 1, "worker": 3})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let quantities: Vec<_> = reply
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["quantity"].as_u64().unwrap())
        .collect();
    assert_eq!(quantities, [1, 3]);
    assert_eq!(h.take_events().len(), 1);

    let reply = scale(&h, &alice, json!({"clock": 1})).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        reply.error(),
        "app shop has no process type clock: release v1 has web, worker"
    );
}

#[tokio::test]
async fn invalid_scale_requests_change_nothing() {
    let mut h = Harness::new().await;
    let alice = h.tenant("alice").await;
    h.create_app("shop", &alice).await;
    let app_id = h.store.all_apps().await.unwrap()[0].id;
    let cases = [
        (
            json!({"web": 101}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "quantity of web must be from 0 to 100, not 101",
        ),
        (
            json!({"web": -1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "quantity of web must be from 0 to 100, not -1",
        ),
        (
            json!({"web": 1, "Bad": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "process type \"Bad\" is not valid",
        ),
        (json!({}), StatusCode::UNPROCESSABLE_ENTITY, "nothing to scale"),
        (
            json!({"web": "two"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid type",
        ),
        (json!([1]), StatusCode::UNPROCESSABLE_ENTITY, "invalid type"),
    ];
    for (body, status, message) in cases {
        let reply = scale(&h, &alice, body.clone()).await;
        assert_eq!(reply.status, status, "{body}");
        assert!(reply.error().contains(message), "{body}: {}", reply.error());
    }
    assert!(h.store.formation(app_id).await.unwrap().is_empty());
    assert!(h.take_events().is_empty());

    // Zero is allowed.
    assert_eq!(scale(&h, &alice, json!({"web": 0})).await.status, StatusCode::OK);
}

#[tokio::test]
async fn instances_and_releases_are_listed() {
    let mut h = Harness::new().await;
    let alice = h.tenant("alice").await;
    h.create_app("shop", &alice).await;
    let v1 = deploy(&h, "shop", &["web"]).await;
    let v2 = deploy(&h, "shop", &["web", "worker"]).await;
    let node = Node {
        id: NodeId::new(),
        name: "local".to_owned(),
        memory_capacity_bytes: 1 << 30,
    };
    h.store.upsert_node(&node).await.unwrap();
    let instance = |release: &store::Release, index, stop_requested| Instance {
        id: InstanceId::new(),
        app: release.app,
        release: release.id,
        process_type: ProcessType::web(),
        index,
        node: node.id,
        memory_bytes: DEFAULT_MEMORY,
        state: InstanceRowState::Running,
        stop_requested,
        replace_requested: false,
        address: Some("10.0.0.2:5000".parse().unwrap()),
        hostname: Some("web-1".to_owned()),
        restarts: 1,
        last_exit: None,
        created_at: chrono::Utc::now(),
    };
    let mut web2 = instance(&v2, 2, false);
    web2.last_exit = Some(store::InstanceExit {
        reason: "out of memory".into(),
        at: "2026-11-30T01:02:03Z".parse().unwrap(),
    });
    h.store.insert_instance(&web2).await.unwrap();
    h.store.insert_instance(&instance(&v1, 1, true)).await.unwrap();

    let reply = h.get("/v1/apps/shop/instances", &alice).await;
    assert_eq!(reply.status, StatusCode::OK);
    let list = reply.body.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(
        (&list[0]["name"], &list[0]["state"], &list[0]["release"]),
        (&json!("web.1"), &json!("stopping"), &json!(1))
    );
    assert_eq!(
        (&list[1]["name"], &list[1]["state"], &list[1]["release"]),
        (&json!("web.2"), &json!("running"), &json!(2))
    );
    assert_eq!(list[1]["address"], "10.0.0.2:5000");
    assert_eq!(list[1]["restarts"], 1);
    assert_eq!(
        list[1]["last_exit"],
        json!({ "reason": "out of memory", "at": "2026-11-30T01:02:03Z" })
    );
    assert_eq!(list[0]["last_exit"], serde_json::Value::Null);
    assert_eq!(list[1]["node"], node.name.as_str());
    assert_eq!(list[1]["memory_bytes"], DEFAULT_MEMORY);

    let reply = h.get("/v1/apps/shop/releases", &alice).await;
    let list = reply.body.as_array().unwrap();
    assert_eq!(
        list.iter()
            .map(|r| r["version"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [2, 1]
    );
    assert_eq!(list[0]["created_by"], "alice");
    assert_eq!(list[0]["config_keys"], json!(["SECRET_KEY"]));
    assert!(
        !reply.body.to_string().contains("hunter2"),
        "config values must not be shown"
    );
    assert_eq!(h.get("/v1/apps/shop", &alice).await.body["release"], 2);
}
