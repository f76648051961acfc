//! In-process tests of the dashboard's routes against a real temp SQLite store: signing in (origin check,
//! wrong tokens, the cookie's attributes), the page, signing out (CSRF), and the embedded files.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::response::Response;
use tower::ServiceExt;
use vocabulary::AccountName;

const HOST: &str = "127.0.0.1:7070";

struct Harness {
    router: axum::Router,
    store: store::Store,
    token: String,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new(secure_cookies: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = store::Store::open_sqlite(&dir.path().join("berth.db"))
            .await
            .unwrap();
        let (_, token) = store
            .create_account(&AccountName::new("alice").unwrap(), false)
            .await
            .unwrap();
        let router = dashboard::routes(dashboard::DashboardConfig {
            store: store.clone(),
            secure_cookies,
            session_lifetime: dashboard::DEFAULT_SESSION_LIFETIME,
        });
        Self {
            router,
            store,
            token,
            _dir: dir,
        }
    }

    async fn send(&self, req: Request<Body>) -> (Response, String) {
        let response = self.router.clone().oneshot(req).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        (
            Response::from_parts(parts, Body::empty()),
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    /// A form post with the given extra headers.
    async fn post(&self, uri: &str, form: &str, headers: &[(&str, &str)]) -> (Response, String) {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header("host", HOST)
            .header("content-type", "application/x-www-form-urlencoded");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        self.send(req.body(Body::from(form.to_owned())).unwrap()).await
    }

    async fn get(&self, uri: &str, cookie: Option<&str>) -> (Response, String) {
        let mut req = Request::builder().uri(uri).header("host", HOST);
        if let Some(cookie) = cookie {
            req = req.header("cookie", format!("berth_session={cookie}"));
        }
        self.send(req.body(Body::empty()).unwrap()).await
    }

    /// Signs in from the dashboard's own page; returns the session id and the Set-Cookie header.
    async fn sign_in(&self, extra: &[(&str, &str)]) -> (String, String) {
        let origin = format!("http://{HOST}");
        let mut headers = vec![("origin", origin.as_str())];
        headers.extend_from_slice(extra);
        let (response, body) = self
            .post("/dashboard/sign-in", &format!("token={}", self.token), &headers)
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{body}");
        assert_eq!(response.headers()["location"], "/dashboard");
        let cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
        let id = cookie
            .strip_prefix("berth_session=")
            .and_then(|rest| rest.split(';').next())
            .expect("the session cookie")
            .to_owned();
        (id, cookie)
    }
}

fn location(response: &Response) -> &str {
    response.headers()["location"].to_str().unwrap()
}

#[tokio::test]
async fn signing_in_sets_a_strict_http_only_cookie_for_a_session() {
    let h = Harness::new(false).await;
    let (form, body) = h.get("/dashboard/sign-in", None).await;
    assert_eq!(form.status(), StatusCode::OK);
    assert!(body.contains(r#"name="token""#), "{body}");
    assert!(form.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));

    // A session that expired earlier is swept by the next sign-in.
    let alice = h.store.account_for_token(&h.token).await.unwrap().unwrap();
    let stale = h
        .store
        .create_session(alice.id, chrono::Duration::seconds(-60))
        .await
        .unwrap();
    let (id, cookie) = h.sign_in(&[]).await;
    assert!(
        !h.store.delete_session(&stale.id).await.unwrap(),
        "the expired session was kept"
    );
    assert_eq!(id.len(), 64);
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP gets no Secure cookie: {cookie}"
    );
    let session = h.store.session(&id).await.unwrap().expect("a live session");
    assert_eq!(session.account.name.as_str(), "alice");

    // The page carries the CSRF token for its script; signed in, the form sends you on.
    let (page, body) = h.get("/dashboard", Some(&id)).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        body.contains(&format!(r#"content="{}""#, session.csrf_token)),
        "{body}"
    );
    assert!(body.contains("alice"));
    assert_eq!(page.headers()["cache-control"], "no-store");
    let (again, _) = h.get("/dashboard/sign-in", Some(&id)).await;
    assert_eq!(location(&again), "/dashboard");

    // Over HTTPS (as a proxy says), or when the server insists, the cookie is Secure.
    let (_, cookie) = h.sign_in(&[("x-forwarded-proto", "https")]).await;
    assert!(cookie.contains("; Secure"), "{cookie}");
    let strict = Harness::new(true).await;
    let (_, cookie) = strict.sign_in(&[]).await;
    assert!(cookie.contains("; Secure"), "{cookie}");
}

#[tokio::test]
async fn sign_in_refuses_other_origins_and_wrong_tokens() {
    let h = Harness::new(false).await;
    let form = format!("token={}", h.token);
    let cross: &[&[(&str, &str)]] = &[
        &[("origin", "http://evil.example")],
        &[("origin", "null")],
        &[("referer", "http://evil.example/page")],
        &[],
    ];
    for headers in cross {
        let (response, body) = h.post("/dashboard/sign-in", &form, headers).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{headers:?}");
        assert!(body.contains("dashboard's own pages"), "{body}");
        assert!(response.headers().get("set-cookie").is_none());
    }
    let origin = [("origin", "http://127.0.0.1:7070")];
    h.store
        .set_password(
            h.store.account_for_token(&h.token).await.unwrap().unwrap().id,
            "a good passphrase",
        )
        .await
        .unwrap();
    let bad_forms = [
        "token=berth_0000",
        "token=",
        "",
        "account=alice&password=a+wrong+passphrase",
        "account=alice&password=",
        "account=Not_A_Name&password=a+good+passphrase",
        "account=bob&password=a+good+passphrase",
    ];
    for bad in bad_forms {
        let (response, body) = h.post("/dashboard/sign-in", bad, &origin).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{bad}");
        assert!(body.contains("do not belong to any account"), "{body}");
        assert!(response.headers().get("set-cookie").is_none());
    }
    // Without a session the page sends you to sign in.
    let (page, _) = h.get("/dashboard", None).await;
    assert_eq!(location(&page), "/dashboard/sign-in");
    let (page, _) = h.get("/dashboard", Some(&"a".repeat(64))).await;
    assert_eq!(location(&page), "/dashboard/sign-in");
}

#[tokio::test]
async fn sign_out_needs_the_csrf_token_and_ends_the_session() {
    let h = Harness::new(false).await;
    let (id, _) = h.sign_in(&[]).await;
    let csrf = h.store.session(&id).await.unwrap().unwrap().csrf_token;
    let cookie = format!("berth_session={id}");
    let origin = format!("http://{HOST}");

    for form in ["".to_owned(), "csrf=wrong".to_owned(), format!("csrf={id}")] {
        let (response, _) = h
            .post(
                "/dashboard/sign-out",
                &form,
                &[("cookie", &cookie), ("origin", &origin)],
            )
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{form}");
        assert!(
            h.store.session(&id).await.unwrap().is_some(),
            "a forged sign-out ended the session"
        );
    }
    // The right token from another site is refused too.
    let (response, _) = h
        .post(
            "/dashboard/sign-out",
            &format!("csrf={csrf}"),
            &[("cookie", &cookie), ("origin", "http://evil.example")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    let (response, _) = h
        .post(
            "/dashboard/sign-out",
            &format!("csrf={csrf}"),
            &[("cookie", &cookie), ("origin", &origin)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/dashboard/sign-in?signed_out=true");
    assert!(response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(h.store.session(&id).await.unwrap(), None);
    let (page, body) = h.get("/dashboard/sign-in?signed_out=true", Some(&id)).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(body.contains("You are signed out."), "{body}");
}

#[tokio::test]
async fn the_script_and_style_sheet_are_embedded() {
    let h = Harness::new(false).await;
    let (js, body) = h.get("/dashboard/assets/app.js", None).await;
    assert_eq!(js.status(), StatusCode::OK);
    assert_eq!(js.headers()["content-type"], "text/javascript; charset=utf-8");
    assert!(body.contains("X-CSRF-Token"));
    let (css, _) = h.get("/dashboard/assets/style.css", None).await;
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    let (missing, _) = h.get("/dashboard/assets/secrets.txt", None).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn signing_in_with_a_password() {
    let h = Harness::new(false).await;
    let alice = h.store.account_for_token(&h.token).await.unwrap().unwrap();
    h.store.set_password(alice.id, "a good passphrase").await.unwrap();
    let origin = format!("http://{HOST}");
    let (response, body) = h
        .post(
            "/dashboard/sign-in",
            "token=&account=alice&password=a+good+passphrase",
            &[("origin", &origin)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{body}");
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    let id = cookie
        .strip_prefix("berth_session=")
        .unwrap()
        .split(';')
        .next()
        .unwrap();
    let session = h.store.session(id).await.unwrap().expect("a session");
    assert_eq!(session.account, alice);
}
