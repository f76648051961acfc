//! Collaborators, token scopes, suspension, quotas, the admin API and the audit log, through the real router.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::Harness;

async fn post(h: &Harness, uri: &str, token: &str, body: serde_json::Value) -> crate::Reply {
    h.call(Method::POST, uri, Some(token), Some(body)).await
}

#[tokio::test]
async fn collaborators_deploy_and_read_but_do_not_manage() {
    let mut h = Harness::new().await;
    let owner = h.tenant("owner").await;
    let friend = h.tenant("friend").await;
    let stranger = h.tenant("stranger").await;
    h.create_app("shop", &owner).await;

    // Unknown accounts are named; only the owner adds.
    let reply = post(
        &h,
        "/v1/apps/shop/collaborators",
        &owner,
        json!({"account": "nobody"}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.body);
    assert!(reply.error().contains("nobody"));
    let reply = post(
        &h,
        "/v1/apps/shop/collaborators",
        &owner,
        json!({"account": "friend"}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let again = post(
        &h,
        "/v1/apps/shop/collaborators",
        &owner,
        json!({"account": "friend"}),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT);

    let list = h.get("/v1/apps/shop/collaborators", &friend).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["owner"], "owner");
    assert_eq!(list.body["collaborators"][0]["account"], "friend");
    assert_eq!(list.body["collaborators"][0]["added_by"], "owner");

    // The collaborator sees the app in its list with its role, and may scale it.
    let apps = h.get("/v1/apps", &friend).await;
    assert_eq!(apps.body[0]["name"], "shop");
    assert_eq!(apps.body[0]["role"], "collaborator");
    assert_eq!(h.get("/v1/apps", &owner).await.body[0]["role"], "owner");
    let scaled = h
        .call(
            Method::PATCH,
            "/v1/apps/shop/formation",
            Some(&friend),
            Some(json!({"web": 1})),
        )
        .await;
    assert_eq!(scaled.status, StatusCode::OK, "{}", scaled.body);

    // Not delete it, nor manage access: 403 saying who may.
    let refused = h.delete("/v1/apps/shop", &friend).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.error().contains("only the owner"), "{}", refused.error());
    let refused = post(
        &h,
        "/v1/apps/shop/collaborators",
        &friend,
        json!({"account": "stranger"}),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // Others still cannot tell the app exists.
    assert_eq!(
        h.get("/v1/apps/shop", &stranger).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.get("/v1/apps/shop/collaborators", &stranger).await.status,
        StatusCode::NOT_FOUND
    );

    // Removed, the collaborator loses access.
    let removed = h.delete("/v1/apps/shop/collaborators/friend", &owner).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    assert_eq!(
        h.get("/v1/apps/shop", &friend).await.status,
        StatusCode::NOT_FOUND
    );
    let gone = h.delete("/v1/apps/shop/collaborators/friend", &owner).await;
    assert_eq!(gone.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn read_only_tokens_read_and_are_refused_everything_else() {
    let mut h = Harness::new().await;
    let owner = h.tenant("owner").await;
    h.create_app("shop", &owner).await;
    let made = post(&h, "/v1/tokens", &owner, json!({"scope": "read"})).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    assert_eq!(made.body["scope"], "read");
    let read = made.body["token"].as_str().unwrap().to_owned();
    let id = made.body["id"].as_str().unwrap().to_owned();

    assert_eq!(h.get("/v1/apps/shop", &read).await.status, StatusCode::OK);
    let refused = h
        .call(
            Method::PATCH,
            "/v1/apps/shop/formation",
            Some(&read),
            Some(json!({"web": 1})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused.error().contains("this token is read-only"),
        "{}",
        refused.error()
    );
    assert_eq!(
        post(&h, "/v1/tokens", &read, json!({})).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        h.delete("/v1/apps/shop", &read).await.status,
        StatusCode::FORBIDDEN
    );

    let bad = post(&h, "/v1/tokens", &owner, json!({"scope": "write"})).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    let listed = h.get("/v1/tokens", &owner).await;
    let scopes: Vec<&str> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["scope"].as_str().unwrap())
        .collect();
    assert_eq!(scopes.len(), 2);
    assert!(scopes.contains(&"read") && scopes.contains(&"full"));
    assert!(
        !listed.body.to_string().contains(&read),
        "a listing shows a token"
    );

    assert_eq!(
        h.delete("/v1/tokens/zz", &owner).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        h.delete(&format!("/v1/tokens/{id}"), &owner).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.get("/v1/apps/shop", &read).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        h.delete(&format!("/v1/tokens/{id}"), &owner).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn quotas_refuse_growth_with_a_clear_message_and_admins_set_them() {
    let mut h = Harness::new().await;
    let admin = h.admin.clone();
    let dev = h.tenant("dev").await;
    let set = h
        .call(
            Method::PUT,
            "/v1/admin/accounts/dev/quotas",
            Some(&admin),
            Some(json!({"apps": 1, "instances": 2})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.body["limits"]["apps"], 1);
    assert_eq!(set.body["overrides"]["memory_bytes"], serde_json::Value::Null);

    assert_eq!(h.create_app("shop", &dev).await.status, StatusCode::CREATED);
    let refused = h.create_app("blog", &dev).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        refused.error(),
        "apps quota exceeded: the account uses 1 apps, this would make it 2 apps, and its limit is 1 apps; \
         scale down or delete something, or ask an operator to raise the quota"
    );
    let scale = |n: u32| {
        h.call(
            Method::PATCH,
            "/v1/apps/shop/formation",
            Some(&dev),
            Some(json!({"web": n})),
        )
    };
    assert_eq!(scale(2).await.status, StatusCode::OK);
    let refused = scale(3).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused.error().starts_with("instances quota exceeded"),
        "{}",
        refused.error()
    );
    assert_eq!(scale(1).await.status, StatusCode::OK);

    // Usage shows in the admin listing.
    let accounts = h.get("/v1/admin/accounts", &admin).await;
    let dev_row = accounts
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "dev")
        .unwrap()
        .clone();
    assert_eq!(dev_row["usage"]["apps"], 1);
    assert_eq!(dev_row["usage"]["instances"], 1);
    assert_eq!(dev_row["usage"]["memory_bytes"], crate::DEFAULT_MEMORY);
}

#[tokio::test]
async fn suspension_refuses_tokens_stops_apps_and_deletion_needs_no_apps() {
    let mut h = Harness::new().await;
    let admin = h.admin.clone();
    let dev = h.tenant("dev").await;
    h.create_app("shop", &dev).await;
    let tenant_refused = post(&h, "/v1/admin/accounts/dev/suspend", &dev, json!({})).await;
    assert_eq!(tenant_refused.status, StatusCode::FORBIDDEN);

    let done = post(&h, "/v1/admin/accounts/dev/suspend", &admin, json!({})).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let refused = h.get("/v1/apps", &dev).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.error(), "account suspended: ask an operator");
    assert!(h.store.app_stopped(h.app("shop").await.id).await.unwrap());
    let listed = h.get("/v1/admin/apps?q=dev", &admin).await;
    assert_eq!(listed.body[0]["name"], "shop");
    assert_eq!(listed.body[0]["stopped"], true);
    assert!(h
        .get("/v1/admin/apps?q=zzz", &admin)
        .await
        .body
        .as_array()
        .unwrap()
        .is_empty());

    let back = post(&h, "/v1/admin/accounts/dev/unsuspend", &admin, json!({})).await;
    assert_eq!(back.status, StatusCode::OK);
    assert_eq!(h.get("/v1/apps", &dev).await.status, StatusCode::OK);
    // Apps stay stopped until started.
    assert!(h.store.app_stopped(h.app("shop").await.id).await.unwrap());

    let busy = h.delete("/v1/admin/accounts/dev", &admin).await;
    assert_eq!(busy.status, StatusCode::CONFLICT);
    assert!(busy.error().contains("shop"), "{}", busy.error());
    assert_eq!(
        h.delete("/v1/apps/shop", &dev).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.delete("/v1/admin/accounts/dev", &admin).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(h.get("/v1/apps", &dev).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        h.delete("/v1/admin/accounts/dev", &admin).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn changes_are_audited_without_bodies_and_reads_are_not() {
    let mut h = Harness::new().await;
    let admin = h.admin.clone();
    let dev = h.tenant("dev").await;
    h.create_app("shop", &dev).await;
    let secret = "hunter2-very-secret";
    h.call(
        Method::PATCH,
        "/v1/apps/shop/config",
        Some(&dev),
        Some(json!({"SECRET": secret})),
    )
    .await;
    h.get("/v1/apps/shop", &dev).await;
    h.delete("/v1/apps/nope", &dev).await;

    let log = h.get("/v1/admin/audit?account=dev", &admin).await;
    assert_eq!(log.status, StatusCode::OK, "{}", log.body);
    assert!(!log.body.to_string().contains(secret), "{}", log.body);
    let rows: Vec<(String, String, u64)> = log
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["target"].as_str().unwrap_or("-").to_owned(),
                e["status"].as_u64().unwrap(),
            )
        })
        .collect();
    let config_status = rows[1].2;
    assert_eq!(
        rows,
        vec![
            ("DELETE /v1/apps/{name}".to_owned(), "app nope".to_owned(), 404),
            (
                "PATCH /v1/apps/{name}/config".to_owned(),
                "app shop".to_owned(),
                config_status
            ),
            ("POST /v1/apps".to_owned(), "-".to_owned(), 201),
        ]
    );
    assert_eq!(log.body[0]["token_scope"], "full");
    let limited = h.get("/v1/admin/audit?limit=1", &admin).await;
    assert_eq!(limited.body.as_array().unwrap().len(), 1);
    assert_eq!(h.get("/v1/admin/audit", &dev).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        h.get("/v1/admin/audit?limit=0", &admin).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}
