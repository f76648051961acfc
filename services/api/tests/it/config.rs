//! Config vars, release details, rollbacks and stop/start/restart through the API, against a real store
//! (no controller runs: these apps are not scaled, or a wait says it timed out).

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use store::NewRelease;
use vocabulary::ProcessType;

use crate::{Harness, DEFAULT_MEMORY};

async fn patch_config(h: &Harness, token: &str, body: Value) -> crate::Reply {
    h.call(Method::PATCH, "/v1/apps/shop/config", Some(token), Some(body))
        .await
}

async fn post(h: &Harness, token: &str, what: &str, body: Value) -> crate::Reply {
    h.call(
        Method::POST,
        &format!("/v1/apps/shop/{what}"),
        Some(token),
        Some(body),
    )
    .await
}

/// A built release of `shop` with a web process, as a push makes it; web stays scaled to 0 (otherwise a
/// first release scales it to 1, and waits here would wait for a controller that does not run).
async fn build(h: &Harness, digest: &str) -> store::Release {
    let app = h.app("shop").await;
    h.store
        .set_formation(app.id, &ProcessType::web(), 0, DEFAULT_MEMORY)
        .await
        .unwrap();
    h.store
        .create_release(NewRelease {
            app: app.id,
            image_digest: digest.to_owned(),
            processes: BTreeMap::from([(ProcessType::web(), "run web".to_owned())]),
            config: BTreeMap::new(),
            description: "Deploy 1a2b3c4".to_owned(),
            created_by: app.owner,
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn config_before_the_first_release_waits_for_it() {
    let mut h = Harness::new().await;
    let alice = h.tenant("alice").await;
    h.create_app("shop", &alice).await;

    let reply = patch_config(&h, &alice, json!({"GREETING": "hi\nthere ✓", "TOKEN": "hunter2"})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["rollout"], Value::Null);
    assert_eq!(reply.body["config"]["GREETING"], "hi\nthere ✓");
    let reply = patch_config(&h, &alice, json!({"TOKEN": null})).await;
    assert_eq!(reply.body["config"], json!({"GREETING": "hi\nthere ✓"}));
    assert!(h.store.releases(h.app("shop").await.id).await.unwrap().is_empty());

    // The first release takes it, and it is not kept apart any more.
    let v1 = build(&h, "sha256:01").await;
    assert_eq!(
        v1.config,
        BTreeMap::from([("GREETING".to_owned(), "hi\nthere ✓".to_owned())])
    );
    assert!(h.store.pending_config(v1.app).await.unwrap().is_empty());
    let reply = h.get("/v1/apps/shop/config", &alice).await;
    assert_eq!(reply.body, json!({"GREETING": "hi\nthere ✓"}));
}

#[tokio::test]
async fn a_config_change_makes_a_release_with_the_same_image() {
    let mut h = Harness::new().await;
    let alice = h.tenant("alice").await;
    h.create_app("shop", &alice).await;
    let v1 = build(&h, "sha256:01").await;

    let reply = patch_config(&h, &alice, json!({"B": "2", "A": "one\ntwo"})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["rollout"]["release"], 2);
    // Not scaled: released, nothing to wait for.
    assert_eq!(reply.body["rollout"]["deployed"], true, "{}", reply.body);
    let reply = patch_config(&h, &alice, json!({"A": null})).await;
    assert_eq!(reply.body["rollout"]["release"], 3);
    assert_eq!(reply.body["config"], json!({"B": "2"}));
    let reply = patch_config(&h, &alice, json!({"C": "3", "B": null})).await;
    assert_eq!(reply.body["rollout"]["release"], 4);

    let releases = h.get("/v1/apps/shop/releases", &alice).await.body;
    let rows: Vec<(u64, &str, &str)> = releases
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["version"].as_u64().unwrap(),
                r["kind"].as_str().unwrap(),
                r["description"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (4, "config", "Set C; unset B"),
            (3, "config", "Unset A"),
            (2, "config", "Set A, B"),
            (1, "build", "Deploy 1a2b3c4"),
        ]
    );
    assert!(!releases.to_string().contains("one\\ntwo"), "{releases}");
    let app = h.app("shop").await;
    for release in h.store.releases(app.id).await.unwrap() {
        assert_eq!(release.image_digest, v1.image_digest);
        assert_eq!(release.processes, v1.processes);
    }

    // One release in full, values and all, for its owner.
    let reply = h.get("/v1/apps/shop/releases/v2", &alice).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["config"], json!({"A": "one\ntwo", "B": "2"}));
    assert_eq!(reply.body["kind"], "config");
    assert_eq!(reply.body["image_digest"], "sha256:01");
    assert_eq!(h.get("/v1/apps/shop/releases/2", &alice).await.body["version"], 2);
    for missing in ["v9", "0", "x", "v-1"] {
        let reply = h.get(&format!("/v1/apps/shop/releases/{missing}"), &alice).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{missing}");
    }

    // Scaled while no controller runs: the answer says it did not start.
    h.store
        .set_formation(app.id, &ProcessType::web(), 1, DEFAULT_MEMORY)
        .await
        .unwrap();
    let reply = patch_config(&h, &alice, json!({"D": "4"})).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["rollout"]["release"], 5);
    assert_eq!(reply.body["rollout"]["deployed"], false);
    let message = reply.body["rollout"]["message"].as_str().unwrap();
    // It is rolled back to v4 (as v6), which does not start either: that stops there.
    assert!(
        message.starts_with("v5 failed: its instances were not up within the deploy timeout"),
        "{message}"
    );
    assert!(
        message.contains("the rollback to v4 (v6) failed too"),
        "{message}"
    );
    assert!(message.ends_with("not rolling back again"), "{message}");
    let latest = h.store.latest_release(app.id).await.unwrap().unwrap();
    assert_eq!((latest.version.0, latest.kind), (6, store::ReleaseKind::Rollback));
    assert!(
        latest.description.starts_with("Rollback to v4 (v5 failed: "),
        "{}",
        latest.description
    );
}

#[tokio::test]
async fn bad_config_is_refused_whole() {
    let mut h = Harness::new().await;
    let alice = h.tenant("alice").await;
    h.create_app("shop", &alice).await;
    build(&h, "sha256:01").await;
    let cases = [
        (json!({}), StatusCode::UNPROCESSABLE_ENTITY, "nothing to change"),
        (
            json!({"PORT": "80"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "set by the platform",
        ),
        (
            json!({"OK": "1", "9LIVES": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            json!({"BIG": "x".repeat(40_000)}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "too large",
        ),
        (
            json!({"NUM": 5}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid type",
        ),
        (json!(["A"]), StatusCode::UNPROCESSABLE_ENTITY, "invalid type"),
    ];
    for (body, status, text) in cases {
        let reply = patch_config(&h, &alice, body.clone()).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.body);
        assert!(reply.error().contains(text), "{body}: {}", reply.error());
    }
    let too_big = json!({"BIG": "x".repeat(100_000)});
    let reply = patch_config(&h, &alice, too_big).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Nothing changed.
    assert_eq!(h.get("/v1/apps/shop/config", &alice).await.body, json!({}));
    assert_eq!(h.get("/v1/apps/shop", &alice).await.body["release"], 1);
}

#[tokio::test]
async fn rollbacks() {
    let mut h = Harness::new().await;
    let alice = h.tenant("alice").await;
    h.create_app("shop", &alice).await;

    let reply = post(&h, &alice, "rollback", json!({})).await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert!(reply.error().contains("no release yet"), "{}", reply.error());
    build(&h, "sha256:01").await;
    let reply = post(&h, &alice, "rollback", json!({})).await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert!(reply.error().contains("no earlier release"), "{}", reply.error());

    patch_config(&h, &alice, json!({"GREETING": "v2"})).await; // v2
    build(&h, "sha256:03").await; // v3, keeps no config (as stored here)

    // Default: the release before the latest.
    let reply = post(&h, &alice, "rollback", json!({})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["to"], 2);
    assert_eq!(reply.body["rollout"]["release"], 4);
    let v4 = h.get("/v1/apps/shop/releases/v4", &alice).await.body;
    assert_eq!(
        (
            &v4["kind"],
            &v4["description"],
            &v4["image_digest"],
            &v4["config"]
        ),
        (
            &json!("rollback"),
            &json!("Rollback to v2"),
            &json!("sha256:01"),
            &json!({"GREETING": "v2"})
        )
    );

    let reply = post(&h, &alice, "rollback", json!({"version": 3})).await;
    assert_eq!(reply.body["rollout"]["release"], 5);
    let v5 = h.get("/v1/apps/shop/releases/v5", &alice).await.body;
    assert_eq!(
        (&v5["image_digest"], &v5["config"]),
        (&json!("sha256:03"), &json!({}))
    );

    let reply = post(&h, &alice, "rollback", json!({"version": 42})).await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert!(reply.error().contains("no release v42"), "{}", reply.error());
    let reply = post(&h, &alice, "rollback", json!({"version": "v2"})).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn stop_start_and_restart() {
    let mut h = Harness::new().await;
    let alice = h.tenant("alice").await;
    h.create_app("shop", &alice).await;
    build(&h, "sha256:01").await;

    let reply = post(&h, &alice, "stop", json!(null)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["done"], true);
    assert_eq!(h.get("/v1/apps/shop", &alice).await.body["stopped"], true);
    // A config change while stopped is released but not run.
    let reply = patch_config(&h, &alice, json!({"A": "1"})).await;
    let message = reply.body["rollout"]["message"].as_str().unwrap();
    assert!(message.contains("stopped"), "{message}");
    let reply = post(&h, &alice, "start", json!(null)).await;
    assert_eq!(reply.body["done"], true, "{}", reply.body);
    assert_eq!(h.get("/v1/apps/shop", &alice).await.body["stopped"], false);

    let reply = post(&h, &alice, "restart", json!({})).await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert!(reply.error().contains("no instance"), "{}", reply.error());
    for bad in ["web.0", "web.x", "Web!", ""] {
        let reply = post(&h, &alice, "restart", json!({"instance": bad})).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
}

#[tokio::test]
async fn another_account_sees_none_of_it() {
    let mut h = Harness::new().await;
    let alice = h.tenant("alice").await;
    let mallory = h.tenant("mallory").await;
    h.create_app("shop", &alice).await;
    build(&h, "sha256:01").await;
    patch_config(&h, &alice, json!({"TOKEN": "hunter2"})).await;

    let get = |path: &'static str| h.get(path, &mallory);
    for path in [
        "/v1/apps/shop/config",
        "/v1/apps/shop/releases",
        "/v1/apps/shop/releases/v2",
    ] {
        let reply = get(path).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert!(!reply.body.to_string().contains("hunter2"));
    }
    let reply = patch_config(&h, &mallory, json!({"TOKEN": "mine"})).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    for what in ["rollback", "stop", "start", "restart"] {
        let reply = post(&h, &mallory, what, json!({})).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{what}");
    }
    // Untouched.
    assert_eq!(
        h.get("/v1/apps/shop/config", &alice).await.body,
        json!({"TOKEN": "hunter2"})
    );
    assert_eq!(h.get("/v1/apps/shop", &alice).await.body["stopped"], false);
    let releases = h.get("/v1/apps/shop/releases", &alice).await.body;
    assert!(!releases.to_string().contains("hunter2"), "{releases}");
}
