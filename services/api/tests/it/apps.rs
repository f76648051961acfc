use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use controller::Event;
use serde_json::{json, Value};

use crate::Harness;

#[tokio::test]
async fn create_list_show_delete() {
    let mut h = Harness::new().await;
    let alice = h.tenant("alice").await;
    let reply = h.create_app("shop", &alice).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["name"], "shop");
    assert_eq!(reply.body["url"], "http://shop.berth.test:8080");
    assert_eq!(reply.body["release"], Value::Null);
    h.create_app("blog", &alice).await;

    let list = h.get("/v1/apps", &alice).await;
    let names: Vec<_> = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["blog", "shop"]);
    assert_eq!(h.get("/v1/apps/shop", &alice).await.body["name"], "shop");

    let app_id = h
        .store
        .all_apps()
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.name.as_str() == "shop")
        .unwrap()
        .id;
    let reply = h.call(Method::DELETE, "/v1/apps/shop", Some(&alice), None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let events = h.take_events();
    assert!(
        matches!(events.as_slice(), [Event::AppDeleted(id)] if *id == app_id),
        "{events:?}"
    );
    assert_eq!(h.get("/v1/apps/shop", &alice).await.status, StatusCode::NOT_FOUND);
    assert_eq!(h.get("/v1/apps", &alice).await.body.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn invalid_names_get_a_clear_422() {
    let mut h = Harness::new().await;
    let alice = h.tenant("alice").await;
    let cases = [
        (
            "My_App",
            "app name \"My_App\" is not valid: use lowercase letters, digits and dashes",
        ),
        ("", "app name must not be empty"),
        ("api", "app name \"api\" is reserved"),
        ("a234567890123456789012345678901", "is too long"),
    ];
    for (name, message) in cases {
        let reply = h.create_app(name, &alice).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        assert!(reply.error().contains(message), "{name}: {}", reply.error());
    }
    assert!(h.store.all_apps().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_name_taken_by_anyone_is_409() {
    let mut h = Harness::new().await;
    let alice = h.tenant("alice").await;
    let bob = h.tenant("bob").await;
    assert_eq!(h.create_app("shop", &alice).await.status, StatusCode::CREATED);
    for token in [&alice, &bob] {
        let reply = h.create_app("shop", token).await;
        assert_eq!(reply.status, StatusCode::CONFLICT);
        assert_eq!(
            reply.error(),
            "app name \"shop\" is already taken: choose another"
        );
    }
}

#[tokio::test]
async fn another_tenants_app_is_indistinguishable_from_a_missing_one() {
    let mut h = Harness::new().await;
    let alice = h.tenant("alice").await;
    let bob = h.tenant("bob").await;
    h.create_app("shop", &alice).await;

    let requests = [
        (Method::GET, "/v1/apps/{}", None),
        (Method::DELETE, "/v1/apps/{}", None),
        (Method::GET, "/v1/apps/{}/formation", None),
        (Method::PATCH, "/v1/apps/{}/formation", Some(json!({"web": 3}))),
        (Method::GET, "/v1/apps/{}/instances", None),
        (Method::GET, "/v1/apps/{}/releases", None),
    ];
    for (method, uri, body) in requests {
        let theirs = h
            .call(
                method.clone(),
                &uri.replace("{}", "shop"),
                Some(&bob),
                body.clone(),
            )
            .await;
        let missing = h
            .call(method.clone(), &uri.replace("{}", "nosuch"), Some(&bob), body)
            .await;
        assert_eq!(theirs.status, StatusCode::NOT_FOUND, "{method} {uri}");
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{method} {uri}");
        assert_eq!(
            theirs.error().replace("shop", "X"),
            missing.error().replace("nosuch", "X")
        );
    }
    assert!(h.take_events().is_empty(), "nothing may happen to alice's app");
    assert!(h.get("/v1/apps", &bob).await.body.as_array().unwrap().is_empty());
    // Alice's app is intact.
    assert_eq!(h.get("/v1/apps/shop", &alice).await.status, StatusCode::OK);
    assert!(h
        .store
        .formation(h.store.all_apps().await.unwrap()[0].id)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn bad_bodies_get_json_errors() {
    let h = Harness::new().await;
    let alice = h.tenant("alice").await;
    let send = |body: Vec<u8>, content_type: &str| {
        Request::post("/v1/apps")
            .header("authorization", format!("Bearer {alice}"))
            .header("content-type", content_type)
            .body(Body::from(body))
            .unwrap()
    };
    let reply = h.send(send(b"{not json".to_vec(), "application/json")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.error().contains("JSON"), "{}", reply.error());

    let reply = h
        .send(send(br#"{"nom": "x"}"#.to_vec(), "application/json"))
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        reply.error().contains("missing field `name`"),
        "{}",
        reply.error()
    );

    let reply = h.send(send(br#"{"name": "x"}"#.to_vec(), "text/plain")).await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let huge = format!(r#"{{"name": "{}"}}"#, "a".repeat(api::BODY_LIMIT_BYTES));
    let reply = h.send(send(huge.into_bytes(), "application/json")).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.error(), "request body is too large: at most 64 KiB");
    assert!(h.store.all_apps().await.unwrap().is_empty());
}

#[tokio::test]
async fn router_settings_are_patched_shown_and_validated() {
    let mut h = Harness::new().await;
    let alice = h.tenant("alice").await;
    h.create_app("shop", &alice).await;
    let reply = h.get("/v1/apps/shop", &alice).await;
    assert_eq!(reply.body["redirect_https"], false);
    assert_eq!(reply.body["first_byte_timeout"], Value::Null);

    let patch = |body| h.call(Method::PATCH, "/v1/apps/shop", Some(&alice), Some(body));
    let reply = patch(json!({ "redirect_https": true, "first_byte_timeout": 90 })).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["redirect_https"], true);
    assert_eq!(reply.body["first_byte_timeout"], 90);
    // Fields left out keep their value.
    let reply = patch(json!({ "redirect_https": false })).await;
    assert_eq!(reply.body["first_byte_timeout"], 90);
    assert_eq!(reply.body["redirect_https"], false);
    assert_eq!(h.get("/v1/apps", &alice).await.body[0]["first_byte_timeout"], 90);

    for (body, message) in [
        (
            json!({ "first_byte_timeout": 0 }),
            "between 1 and 300 seconds, got 0",
        ),
        (
            json!({ "first_byte_timeout": 301 }),
            "between 1 and 300 seconds, got 301",
        ),
        (
            json!({ "first_byte_timeout": -5 }),
            "between 1 and 300 seconds, got -5",
        ),
    ] {
        let reply = patch(body).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(reply.error(), format!("first_byte_timeout must be {message}"));
    }
    let reply = patch(json!({ "redirect": true })).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(reply.error().contains("unknown field"), "{}", reply.error());
    let events = h.take_events();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events.iter().all(|e| matches!(e, Event::RoutesChanged(_))));

    let bob = h.tenant("bob").await;
    let reply = h
        .call(
            Method::PATCH,
            "/v1/apps/shop",
            Some(&bob),
            Some(json!({ "redirect_https": true })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(h.get("/v1/apps/shop", &alice).await.body["redirect_https"], false);
}

#[tokio::test]
async fn an_explicit_null_resets_the_first_byte_timeout_and_an_absent_field_keeps_it() {
    let mut h = Harness::new().await;
    let alice = h.tenant("alice").await;
    h.create_app("shop", &alice).await;
    h.take_events();
    let patch = |body| h.call(Method::PATCH, "/v1/apps/shop", Some(&alice), Some(body));
    let reply = patch(json!({ "redirect_https": true, "first_byte_timeout": 90 })).await;
    assert_eq!(reply.body["first_byte_timeout"], 90, "{}", reply.body);

    // Absent: unchanged.
    let reply = patch(json!({ "redirect_https": true })).await;
    assert_eq!(reply.body["first_byte_timeout"], 90, "{}", reply.body);

    // null: back to the routers' default, and only that.
    let reply = patch(json!({ "first_byte_timeout": null })).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["first_byte_timeout"], Value::Null);
    assert_eq!(reply.body["redirect_https"], true);
    let shown = h.get("/v1/apps/shop", &alice).await;
    assert_eq!(shown.body["first_byte_timeout"], Value::Null);
    let app = h.store.all_apps().await.unwrap().remove(0);
    let settings = h.store.router_settings(app.id).await.unwrap();
    assert_eq!(settings.first_byte_timeout_secs, None);
    assert!(settings.redirect_https);

    // Resetting what is already the default is fine; a string is not a number of seconds.
    let reply = patch(json!({ "first_byte_timeout": null })).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let reply = patch(json!({ "first_byte_timeout": "default" })).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    let events = h.take_events();
    assert_eq!(events.len(), 4, "{events:?}");
    assert!(events.iter().all(|e| matches!(e, Event::RoutesChanged(_))));
}

/// The app settings in seconds: (field, a good value, values out of range, its range in words).
const SECONDS_SETTINGS: &[(&str, i64, &[i64], &str)] = &[
    (
        "build_timeout",
        1800,
        &[59, 7201, -1],
        "between 60 and 7200 seconds",
    ),
    ("stop_grace", 45, &[0, 601, -1], "between 1 and 600 seconds"),
    ("boot_timeout", 90, &[0, 601, -1], "between 1 and 600 seconds"),
    (
        "deploy_timeout",
        300,
        &[0, 3601, -1],
        "between 1 and 3600 seconds",
    ),
];

#[tokio::test]
async fn seconds_settings_are_patched_shown_validated_and_reset() {
    let mut h = Harness::new().await;
    let alice = h.tenant("alice").await;
    h.create_app("shop", &alice).await;
    let app = h.store.all_apps().await.unwrap().remove(0);
    for (field, good, bads, range) in SECONDS_SETTINGS {
        let stored = || async {
            match *field {
                "build_timeout" => h.store.build_timeout_secs(app.id).await.unwrap(),
                "boot_timeout" => h.store.boot_timeout_secs(app.id).await.unwrap(),
                "deploy_timeout" => h.store.deploy_timeout_secs(app.id).await.unwrap(),
                _ => h.store.stop_grace_secs(app.id).await.unwrap(),
            }
        };
        assert_eq!(h.get("/v1/apps/shop", &alice).await.body[field], Value::Null);
        let patch = |body| h.call(Method::PATCH, "/v1/apps/shop", Some(&alice), Some(body));

        let reply = patch(json!({ *field: good })).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.body[field], *good);
        assert_eq!(stored().await, Some(*good as u32), "{field}");
        // Other changes keep it.
        let reply = patch(json!({ "redirect_https": true })).await;
        assert_eq!(reply.body[field], *good, "{}", reply.body);

        for bad in *bads {
            let reply = patch(json!({ *field: bad })).await;
            assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(reply.error(), format!("{field} must be {range}, got {bad}"));
        }
        assert_eq!(stored().await, Some(*good as u32), "{field}");

        let reply = patch(json!({ *field: null })).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.body[field], Value::Null);
        assert_eq!(stored().await, None, "{field}");
    }
}

#[tokio::test]
async fn health_check_and_deploy_strategy_are_patched_validated_and_reset() {
    let mut h = Harness::new().await;
    let alice = h.tenant("alice").await;
    h.create_app("shop", &alice).await;
    let app = h.store.all_apps().await.unwrap().remove(0);
    let patch = |body| h.call(Method::PATCH, "/v1/apps/shop", Some(&alice), Some(body));
    let shown = h.get("/v1/apps/shop", &alice).await.body;
    assert_eq!(
        (&shown["health_check"], &shown["deploy_strategy"]),
        (&Value::Null, &json!("all-at-once"))
    );

    let reply = patch(json!({ "health_check": "/health", "deploy_strategy": "rolling" })).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        (&reply.body["health_check"], &reply.body["deploy_strategy"]),
        (&json!("/health"), &json!("rolling"))
    );
    assert_eq!(
        h.store.health_check_path(app.id).await.unwrap().as_deref(),
        Some("/health")
    );

    for (body, error) in [
        (
            json!({ "health_check": "health" }),
            "health_check must start with /, got \"health\"",
        ),
        (
            json!({ "health_check": "/a\r\nX: y" }),
            "health_check must hold only visible ASCII characters, got '\\r'",
        ),
        (
            json!({ "deploy_strategy": "blue-green" }),
            "unknown deploy strategy \"blue-green\": expected rolling or all-at-once",
        ),
    ] {
        let reply = patch(body).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(reply.error(), error);
    }
    let reply = patch(json!({ "health_check": null, "deploy_strategy": "all-at-once" })).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        (&reply.body["health_check"], &reply.body["deploy_strategy"]),
        (&Value::Null, &json!("all-at-once"))
    );
    assert_eq!(h.store.health_check_path(app.id).await.unwrap(), None);
}
