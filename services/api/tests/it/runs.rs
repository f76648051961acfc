//! `/v1/apps/{name}/runs` without a node to run on (the harness's lifecycle has no one-offs): refusals are
//! clear, another tenant's app is not found, the list is empty; `release` is never scaled.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::Harness;

#[tokio::test]
async fn runs_are_refused_clearly() {
    let mut h = Harness::new().await;
    let alice = h.tenant("alice").await;
    let mallory = h.tenant("mallory").await;
    assert_eq!(h.create_app("shop", &alice).await.status, StatusCode::CREATED);
    let post = |token: String, body: serde_json::Value| {
        let h = &h;
        async move {
            h.call(Method::POST, "/v1/apps/shop/runs", Some(&token), Some(body))
                .await
        }
    };

    let reply = post(mallory.clone(), json!({ "command": ["ls"], "detach": true })).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.body);

    let reply = post(alice.clone(), json!({ "command": "ls" })).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(reply.error().contains("not a run request"), "{}", reply.body);

    let reply = post(alice.clone(), json!({ "command": ["ls"], "detach": true })).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.error(), "this server runs no one-off instances");

    let reply = h.get("/v1/apps/shop/runs", &alice).await;
    assert_eq!((reply.status, reply.body.clone()), (StatusCode::OK, json!([])));
    assert_eq!(
        h.get("/v1/apps/shop/runs", &mallory).await.status,
        StatusCode::NOT_FOUND
    );

    let reply = h
        .call(
            Method::PATCH,
            "/v1/apps/shop/formation",
            Some(&alice),
            Some(json!({ "release": 1 })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        reply
            .error()
            .starts_with("release is not a process type that can be scaled"),
        "{}",
        reply.body
    );

    // The formation does not offer it either.
    let app = h.app("shop").await;
    h.store
        .create_release(store::NewRelease {
            app: app.id,
            image_digest: "sha256:00".to_owned(),
            processes: [("web", "serve"), ("release", "migrate")]
                .into_iter()
                .map(|(p, c)| (vocabulary::ProcessType::new(p).unwrap(), c.to_owned()))
                .collect(),
            config: Default::default(),
            description: "Deploy".to_owned(),
            created_by: app.owner,
        })
        .await
        .unwrap();
    let reply = h.get("/v1/apps/shop/formation", &alice).await;
    let types: Vec<&str> = reply
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["type"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(types, ["web"], "{}", reply.body);
}
