use axum::body::Body;
use axum::http::{Method, Request, StatusCode};

use crate::Harness;

#[tokio::test]
async fn healthz_needs_no_token() {
    let h = Harness::new().await;
    let reply = h.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn every_v1_route_needs_a_valid_token() {
    let h = Harness::new().await;
    let routes = [
        (Method::GET, "/v1/account"),
        (Method::POST, "/v1/accounts"),
        (Method::GET, "/v1/apps"),
        (Method::POST, "/v1/apps"),
        (Method::GET, "/v1/apps/shop"),
        (Method::DELETE, "/v1/apps/shop"),
        (Method::PATCH, "/v1/apps/shop"),
        (Method::GET, "/v1/apps/shop/formation"),
        (Method::PATCH, "/v1/apps/shop/formation"),
        (Method::GET, "/v1/apps/shop/instances"),
        (Method::GET, "/v1/apps/shop/releases"),
        (Method::GET, "/v1/apps/shop/domains"),
        (Method::GET, "/v1/apps/shop/certificates"),
        (Method::POST, "/v1/apps/shop/certificates"),
        (Method::DELETE, "/v1/apps/shop/certificates/x"),
        (Method::POST, "/v1/apps/shop/domains"),
        (Method::DELETE, "/v1/apps/shop/domains/a.example.com"),
        (Method::GET, "/v1/routes/watch"),
        (Method::POST, "/v1/router-tokens"),
    ];
    for (method, uri) in routes {
        let missing = h
            .call(method.clone(), uri, None, Some(serde_json::json!({"name": "x"})))
            .await;
        assert_eq!(missing.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        assert!(
            missing.error().contains("missing API token"),
            "{}",
            missing.error()
        );
        assert_eq!(missing.headers["www-authenticate"], "Bearer realm=\"berth\"");

        let wrong = h
            .call(
                method.clone(),
                uri,
                Some("berth_0000"),
                Some(serde_json::json!({"name": "x"})),
            )
            .await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        assert_eq!(wrong.error(), "invalid API token");
    }
}

#[tokio::test]
async fn other_schemes_and_malformed_headers_are_refused() {
    let h = Harness::new().await;
    for header in [format!("Basic {}", h.admin), h.admin.clone(), "Bearer".to_owned()] {
        let req = Request::get("/v1/account")
            .header("authorization", header.as_str())
            .body(Body::empty())
            .unwrap();
        let reply = h.send(req).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{header}");
    }
    // The token is never echoed back.
    let req = Request::get("/v1/account")
        .header("authorization", "Bearer secret-guess")
        .body(Body::empty())
        .unwrap();
    let reply = h.send(req).await;
    assert!(!reply.body.to_string().contains("secret-guess"));
}

#[tokio::test]
async fn whoami_names_the_tokens_account() {
    let h = Harness::new().await;
    let alice = h.tenant("alice").await;
    let reply = h.get("/v1/account", &alice).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["name"], "alice");
    assert_eq!(reply.body["is_admin"], false);
    let reply = h.get("/v1/account", &h.admin).await;
    assert_eq!(reply.body["is_admin"], true);
}

#[tokio::test]
async fn unknown_routes_get_a_json_404() {
    let h = Harness::new().await;
    let reply = h.get("/v1/nothing-here", &h.admin).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let reply = h.call(Method::GET, "/nope", None, None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error(), "no route for GET /nope");
}
