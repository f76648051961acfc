use axum::http::{Method, StatusCode};
use controller::Event;
use serde_json::json;

use crate::{Harness, Reply};

async fn add_domain(h: &Harness, app: &str, token: &str, name: &str) -> Reply {
    let uri = format!("/v1/apps/{app}/domains");
    h.call(Method::POST, &uri, Some(token), Some(json!({ "name": name })))
        .await
}

#[tokio::test]
async fn add_list_remove_domains() {
    let mut h = Harness::new().await;
    let alice = h.tenant("alice").await;
    h.create_app("shop", &alice).await;

    let reply = add_domain(&h, "shop", &alice, "Shop.Example.com.").await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["name"], "shop.example.com");
    assert!(matches!(h.take_events().as_slice(), [Event::RoutesChanged(_)]));
    let reply = add_domain(&h, "shop", &alice, "*.shop.example.org").await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);

    let list = h.get("/v1/apps/shop/domains", &alice).await;
    let names: Vec<_> = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].clone())
        .collect();
    assert_eq!(names, [json!("*.shop.example.org"), json!("shop.example.com")]);

    h.take_events();
    let reply = h.delete("/v1/apps/shop/domains/shop.example.com", &alice).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert!(matches!(h.take_events().as_slice(), [Event::RoutesChanged(_)]));
    let reply = h.delete("/v1/apps/shop/domains/shop.example.com", &alice).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error(), "app \"shop\" has no domain \"shop.example.com\"");
    assert!(h.take_events().is_empty());
    let list = h.get("/v1/apps/shop/domains", &alice).await;
    assert_eq!(list.body.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_domain_in_use_is_refused_without_saying_by_whom() {
    let mut h = Harness::new().await;
    let alice = h.tenant("alice").await;
    let bob = h.tenant("bob").await;
    h.create_app("shop", &alice).await;
    h.create_app("blog", &bob).await;
    let reply = add_domain(&h, "shop", &alice, "www.example.com").await;
    assert_eq!(reply.status, StatusCode::CREATED);
    h.take_events();

    let reply = add_domain(&h, "blog", &bob, "www.example.com").await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(reply.error(), "domain www.example.com is already in use");
    assert!(!reply.body.to_string().contains("shop") && !reply.body.to_string().contains("alice"));
    // Bob cannot see, remove or add to alice's app either.
    assert_eq!(
        h.get("/v1/apps/shop/domains", &bob).await.status,
        StatusCode::NOT_FOUND
    );
    let reply = h.delete("/v1/apps/shop/domains/www.example.com", &bob).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let reply = h.delete("/v1/apps/blog/domains/www.example.com", &bob).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(h.take_events().is_empty());
    assert_eq!(
        h.get("/v1/apps/shop/domains", &alice)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn invalid_and_platform_domains_get_a_clear_422() {
    let mut h = Harness::new().await;
    let alice = h.tenant("alice").await;
    h.create_app("shop", &alice).await;
    let cases = [
        ("localhost", "at least two labels"),
        ("shop_1.example.com", "lowercase letters"),
        ("*.com", "at least two labels"),
        ("blog.berth.test", "belongs to the platform"),
        ("berth.test", "belongs to the platform"),
        ("*.test", "at least two labels"),
    ];
    for (name, message) in cases {
        let reply = add_domain(&h, "shop", &alice, name).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        assert!(reply.error().contains(message), "{name}: {}", reply.error());
    }
    assert!(h.take_events().is_empty());
}
