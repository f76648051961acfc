//! `POST /v1/apps/{name}/deploys` before any deploy starts: only the owner, a checked reference, a clear
//! answer when the server has image deploys off (this harness does), and nothing sent to the controller.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::Harness;

#[tokio::test]
async fn image_deploys_are_checked_before_they_start() {
    let mut h = Harness::new().await;
    let alice = h.tenant("alice").await;
    let bob = h.tenant("bob").await;
    h.create_app("web1", &alice).await;

    let cases = [
        (
            &bob,
            json!({ "image": "reg.io/x:1" }),
            StatusCode::NOT_FOUND,
            "app \"web1\" not found",
        ),
        (
            &alice,
            json!({ "image": "x:1" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "names no registry",
        ),
        (
            &alice,
            json!({ "image": "reg.io/x@sha256:abc", "tls_verify": false }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "is not sha256",
        ),
        (
            &alice,
            json!({ "tls_verify": false }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "image",
        ),
        (
            &alice,
            json!({ "image": "reg.io/x:1" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "does not deploy images",
        ),
    ];
    for (token, body, status, message) in cases {
        let reply = h
            .call(
                Method::POST,
                "/v1/apps/web1/deploys",
                Some(token),
                Some(body.clone()),
            )
            .await;
        assert_eq!(reply.status, status, "{body}: {}", reply.body);
        let error = reply.body["error"].as_str().unwrap_or_default();
        assert!(error.contains(message), "{body}: {error}");
    }
    assert!(h.take_events().is_empty());
    let reply = h
        .call(
            Method::POST,
            "/v1/apps/web1/deploys",
            None,
            Some(json!({ "image": "reg.io/x:1" })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}
