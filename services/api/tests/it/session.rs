//! The dashboard's session cookie as a way into `/v1`: reads need only the cookie, changes also the session's
//! CSRF token; a bearer token wins over a cookie; ended and expired sessions and other accounts' sessions get
//! nothing.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;

use crate::{Harness, Reply};

async fn with_cookie(
    h: &Harness,
    method: Method,
    uri: &str,
    cookie: &str,
    csrf: Option<&str>,
    body: Option<serde_json::Value>,
) -> Reply {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("cookie", format!("theme=dark; berth_session={cookie}"));
    if let Some(csrf) = csrf {
        req = req.header("x-csrf-token", csrf);
    }
    let body = match body {
        Some(json) => {
            req = req.header("content-type", "application/json");
            Body::from(json.to_string())
        }
        None => Body::empty(),
    };
    h.send(req.body(body).unwrap()).await
}

/// A new session of the account whose API token is `token`.
async fn session_of(h: &Harness, token: &str) -> store::NewSession {
    let account = h.store.account_for_token(token).await.unwrap().unwrap();
    h.store
        .create_session(account.id, chrono::Duration::hours(1))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_session_cookie_reads_and_with_its_csrf_token_changes() {
    let mut h = Harness::new().await;
    let carol = h.tenant("carol").await;
    let s = session_of(&h, &carol).await;

    let me = with_cookie(&h, Method::GET, "/v1/account", &s.id, None, None).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["name"], "carol");

    // A change without the CSRF header, or with another value, is refused and changes nothing.
    for csrf in [None, Some("0".repeat(64).as_str()), Some(s.id.as_str()), Some("")] {
        let refused = with_cookie(
            &h,
            Method::POST,
            "/v1/apps",
            &s.id,
            csrf,
            Some(json!({"name": "forged"})),
        )
        .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "csrf {csrf:?}");
        assert!(refused.error().contains("X-CSRF-Token"), "{}", refused.error());
    }
    assert!(h.take_events().is_empty());
    let apps = with_cookie(&h, Method::GET, "/v1/apps", &s.id, None, None).await;
    assert_eq!(apps.body, json!([]));

    let made = with_cookie(
        &h,
        Method::POST,
        "/v1/apps",
        &s.id,
        Some(&s.csrf_token),
        Some(json!({"name": "shop"})),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    assert_eq!(
        h.app("shop").await.owner,
        h.store.session(&s.id).await.unwrap().unwrap().account.id
    );
    let deleted = with_cookie(
        &h,
        Method::DELETE,
        "/v1/apps/shop",
        &s.id,
        Some(&s.csrf_token),
        None,
    )
    .await;
    assert!(deleted.status.is_success(), "{}", deleted.body);
}

#[tokio::test]
async fn sessions_are_their_accounts_and_end() {
    let mut h = Harness::new().await;
    let dave = h.tenant("dave").await;
    let erin_token = h.tenant("erin").await;
    assert_eq!(h.create_app("daves", &dave).await.status, StatusCode::CREATED);
    let erin = session_of(&h, &erin_token).await;

    // Erin's session sees none of Dave's apps, and Dave's app is "not found" to it.
    let apps = with_cookie(&h, Method::GET, "/v1/apps", &erin.id, None, None).await;
    assert_eq!(apps.body, json!([]));
    let other = with_cookie(&h, Method::GET, "/v1/apps/daves", &erin.id, None, None).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);

    // A bearer token wins over the cookie: no CSRF header needed, and it is the token's account.
    let req = Request::builder()
        .method(Method::POST)
        .uri("/v1/apps")
        .header("authorization", format!("Bearer {dave}"))
        .header("cookie", format!("berth_session={}", erin.id))
        .header("content-type", "application/json");
    let reply = h
        .send(
            req.body(Body::from(json!({"name": "daves2"}).to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let owner = h.app("daves2").await.owner;
    assert_eq!(
        Some(owner),
        h.store.account_for_token(&dave).await.unwrap().map(|a| a.id)
    );

    // Unknown, ended and expired sessions get 401.
    let unknown = with_cookie(&h, Method::GET, "/v1/apps", &"f".repeat(64), None, None).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert!(unknown.error().contains("sign in again"), "{}", unknown.error());
    assert!(h.store.delete_session(&erin.id).await.unwrap());
    let ended = with_cookie(&h, Method::GET, "/v1/apps", &erin.id, None, None).await;
    assert_eq!(ended.status, StatusCode::UNAUTHORIZED);
    let erin_account = h.store.account_for_token(&erin_token).await.unwrap().unwrap();
    let expired = h
        .store
        .create_session(erin_account.id, chrono::Duration::seconds(-5))
        .await
        .unwrap();
    let reply = with_cookie(&h, Method::GET, "/v1/apps", &expired.id, None, None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_route_stream_takes_no_session() {
    let h = Harness::new().await;
    let s = session_of(&h, &h.admin).await;
    let reply = with_cookie(&h, Method::GET, "/v1/routes/watch", &s.id, None, None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_account_sets_its_own_password() {
    let h = Harness::new().await;
    let fay = h.tenant("fay").await;
    let name = vocabulary::AccountName::new("fay").unwrap();
    let short = h
        .call(
            Method::PUT,
            "/v1/account/password",
            Some(&fay),
            Some(json!({"password": "short"})),
        )
        .await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(short.error().contains("at least 12"), "{}", short.error());

    let set = h
        .call(
            Method::PUT,
            "/v1/account/password",
            Some(&fay),
            Some(json!({"password": "a long passphrase"})),
        )
        .await;
    assert_eq!(set.status, StatusCode::NO_CONTENT, "{}", set.body);
    let signed = h
        .store
        .account_for_password(&name, "a long passphrase")
        .await
        .unwrap();
    assert_eq!(signed.map(|a| a.name), Some(name.clone()));

    // With a session, setting it is a change like any other: the CSRF token is needed.
    let s = session_of(&h, &fay).await;
    let body = Some(json!({"password": "another passphrase"}));
    let refused = with_cookie(&h, Method::PUT, "/v1/account/password", &s.id, None, body.clone()).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let done = with_cookie(
        &h,
        Method::PUT,
        "/v1/account/password",
        &s.id,
        Some(&s.csrf_token),
        body,
    )
    .await;
    assert_eq!(done.status, StatusCode::NO_CONTENT);
    assert!(h
        .store
        .account_for_password(&name, "another passphrase")
        .await
        .unwrap()
        .is_some());
}
