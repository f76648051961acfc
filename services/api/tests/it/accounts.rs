use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::Harness;

#[tokio::test]
async fn admin_creates_accounts_whose_tokens_work() {
    let h = Harness::new().await;
    let reply = h
        .call(
            Method::POST,
            "/v1/accounts",
            Some(&h.admin),
            Some(json!({"name": "alice"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["name"], "alice");
    let token = reply.body["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("berth_"));

    let me = h.get("/v1/account", &token).await;
    assert_eq!(me.body["name"], "alice");
    assert_eq!(me.body["is_admin"], false, "new accounts are not admins");

    let again = h
        .call(
            Method::POST,
            "/v1/accounts",
            Some(&h.admin),
            Some(json!({"name": "alice"})),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.error(), "account name \"alice\" is already taken");
}

#[tokio::test]
async fn only_admins_create_accounts() {
    let h = Harness::new().await;
    let alice = h.tenant("alice").await;
    let reply = h
        .call(
            Method::POST,
            "/v1/accounts",
            Some(&alice),
            Some(json!({"name": "mallory"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.error(), "only an admin account may create accounts");
    // Nothing was created.
    let reply = h
        .call(
            Method::POST,
            "/v1/accounts",
            Some(&h.admin),
            Some(json!({"name": "mallory"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
}

#[tokio::test]
async fn account_names_are_validated() {
    let h = Harness::new().await;
    let reply = h
        .call(
            Method::POST,
            "/v1/accounts",
            Some(&h.admin),
            Some(json!({"name": "Bad Name"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        reply.error().contains("account name \"Bad Name\" is not valid"),
        "{}",
        reply.error()
    );
}
