//! Certificate uploads, with real certificates made by rcgen.

use axum::http::{Method, StatusCode};
use controller::Event;
use serde_json::json;

use crate::{Harness, Reply};

/// A self-signed certificate for `names`, valid from `from` to `until` (years), and its key.
fn certificate(names: &[&str], from: i32, until: i32) -> (String, String) {
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.not_before = rcgen::date_time_ymd(from, 1, 1);
    params.not_after = rcgen::date_time_ymd(until, 1, 1);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

async fn upload(h: &Harness, app: &str, token: &str, cert: &str, key: &str) -> Reply {
    let uri = format!("/v1/apps/{app}/certificates");
    let body = json!({ "cert_pem": cert, "key_pem": key });
    h.call(Method::POST, &uri, Some(token), Some(body)).await
}

async fn setup() -> (Harness, String) {
    let mut h = Harness::new().await;
    let alice = h.tenant("alice").await;
    h.create_app("shop", &alice).await;
    for domain in ["shop.example.com", "*.shop.example.org"] {
        let reply = h
            .call(
                Method::POST,
                "/v1/apps/shop/domains",
                Some(&alice),
                Some(json!({ "name": domain })),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED);
    }
    h.take_events();
    (h, alice)
}

#[tokio::test]
async fn upload_list_remove_without_ever_returning_the_key() {
    let (mut h, alice) = setup().await;
    let (cert, key) = certificate(&["shop.example.com", "www.shop.example.org"], 2020, 2099);
    let reply = upload(&h, "shop", &alice, &cert, &key).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(
        reply.body["hosts"],
        json!(["shop.example.com", "www.shop.example.org"])
    );
    assert!(reply.body["not_after"]
        .as_str()
        .unwrap()
        .starts_with("2099-01-01"));
    assert!(matches!(h.take_events().as_slice(), [Event::RoutesChanged(_)]));
    let id = reply.body["id"].as_str().unwrap().to_owned();

    let list = h.get("/v1/apps/shop/certificates", &alice).await;
    assert_eq!(list.body.as_array().unwrap().len(), 1);
    let text = list.body.to_string();
    assert!(
        !text.contains("PRIVATE KEY") && !text.contains("key_pem"),
        "{text}"
    );
    assert!(!reply.body.to_string().contains("PRIVATE KEY"));

    // Another tenant cannot see or remove it.
    let bob = h.tenant("bob").await;
    let uri = format!("/v1/apps/shop/certificates/{id}");
    assert_eq!(h.delete(&uri, &bob).await.status, StatusCode::NOT_FOUND);
    assert_eq!(h.delete(&uri, &alice).await.status, StatusCode::NO_CONTENT);
    assert!(matches!(h.take_events().as_slice(), [Event::RoutesChanged(_)]));
    assert_eq!(h.delete(&uri, &alice).await.status, StatusCode::NOT_FOUND);
    let reply = h.delete("/v1/apps/shop/certificates/nonsense", &alice).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_uploads_get_a_clear_422() {
    let (mut h, alice) = setup().await;
    let (good_cert, good_key) = certificate(&["shop.example.com"], 2020, 2099);
    let (_, other_key) = certificate(&["shop.example.com"], 2020, 2099);
    let (expired_cert, expired_key) = certificate(&["shop.example.com"], 2000, 2001);
    let (future_cert, future_key) = certificate(&["shop.example.com"], 2090, 2099);
    let (foreign_cert, foreign_key) = certificate(&["shop.example.com", "bank.example.net"], 2020, 2099);
    let (platform_cert, platform_key) = certificate(&["shop.berth.test"], 2020, 2099);
    let (wide_cert, wide_key) = certificate(&["*.example.org"], 2020, 2099);
    let (no_names_cert, no_names_key) = certificate(&[], 2020, 2099);
    let cases: Vec<(&str, &str, &str)> = vec![
        ("not a certificate", &good_key, "holds no PEM certificate"),
        (&good_cert, "not a key", "holds no PEM private key"),
        (&good_cert, &other_key, "does not belong to the certificate"),
        (&expired_cert, &expired_key, "expired at"),
        (&future_cert, &future_key, "not valid before"),
        (
            &foreign_cert,
            &foreign_key,
            "names bank.example.net, which are not custom domains",
        ),
        (&platform_cert, &platform_key, "shop.berth.test"),
        (&wide_cert, &wide_key, "*.example.org"),
        (&no_names_cert, &no_names_key, "names no DNS host"),
    ];
    for (cert, key, message) in cases {
        let reply = upload(&h, "shop", &alice, cert, key).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{message}: {}",
            reply.body
        );
        assert!(reply.error().contains(message), "{message}: {}", reply.error());
        assert!(!reply.error().contains("PRIVATE KEY"));
    }
    assert!(h.take_events().is_empty());
    assert!(h
        .get("/v1/apps/shop/certificates", &alice)
        .await
        .body
        .as_array()
        .unwrap()
        .is_empty());
}
