//! The authorization table: every `/v1` route (method and path template) and what each kind of caller gets —
//! an admin, the app's owner, a collaborator on it, the owner's read-only token, another account, and no
//! token — walked against the real router over a real store.
//!
//! The table cannot drift silently from the router: `every_route_is_in_the_table` reads every `.route(`
//! call in the api crate's sources (rustfmt's layout: the path literal, then the method functions `get(`,
//! `post(`, `put(`, `patch(`, `delete(` inside the call) and fails on any route missing from the table or any
//! table row no route answers. Paths without `/v1`, `/v2` or `/healthz` in front are mounted under `/v1`.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::Harness;

/// What a caller must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// Past authorization: any answer but 401, 403 or the app's 404 (a 404 for a missing release, a 409 for
    /// a taken name, a 422 for a bad value all show the caller was let in).
    A,
    /// 404 "app not found": the app is invisible to the caller.
    H,
    /// 403.
    F,
    /// 401.
    U,
}
use Want::{A, F, H, U};

/// Callers in the order each row is walked: the ones refused first, the owner last, so that a destructive
/// route (delete the app) only succeeds at the end of its row.
const CALLERS: [&str; 6] = ["none", "other", "read-only", "admin", "collaborator", "owner"];

struct Row {
    method: &'static str,
    template: &'static str,
    path: &'static str,
    body: Option<fn() -> Value>,
    /// In [`CALLERS`] order.
    want: [Want; 6],
}

const fn row(
    method: &'static str,
    template: &'static str,
    path: &'static str,
    body: Option<fn() -> Value>,
    want: [Want; 6],
) -> Row {
    Row {
        method,
        template,
        path,
        body,
        want,
    }
}

fn empty() -> Value {
    json!({})
}

// Callers:                  none other read admin collab owner
const TENANT_READ: [Want; 6] = [U, H, A, H, A, A];
const TENANT_DEPLOY: [Want; 6] = [U, H, F, H, A, A];
const TENANT_MANAGE: [Want; 6] = [U, H, F, H, F, A];
const ANY_ACCOUNT_READ: [Want; 6] = [U, A, A, A, A, A];
const ANY_ACCOUNT_WRITE: [Want; 6] = [U, A, F, A, A, A];
const ADMIN_ONLY: [Want; 6] = [U, F, F, A, F, F];

const TABLE: &[Row] = &[
    row("GET", "/v1/account", "/v1/account", None, ANY_ACCOUNT_READ),
    row(
        "PUT",
        "/v1/account/password",
        "/v1/account/password",
        Some(|| json!({"password": "correct horse battery"})),
        ANY_ACCOUNT_WRITE,
    ),
    row(
        "POST",
        "/v1/accounts",
        "/v1/accounts",
        Some(|| json!({"name": "newbie"})),
        ADMIN_ONLY,
    ),
    row("POST", "/v1/router-tokens", "/v1/router-tokens", None, ADMIN_ONLY),
    row("GET", "/v1/routes/watch", "/v1/routes/watch", None, ADMIN_ONLY),
    row("GET", "/v1/apps", "/v1/apps", None, ANY_ACCOUNT_READ),
    row(
        "POST",
        "/v1/apps",
        "/v1/apps",
        Some(|| json!({"name": "fresh"})),
        ANY_ACCOUNT_WRITE,
    ),
    row("GET", "/v1/apps/{name}", "/v1/apps/shop", None, TENANT_READ),
    row(
        "PATCH",
        "/v1/apps/{name}",
        "/v1/apps/shop",
        Some(empty),
        TENANT_DEPLOY,
    ),
    row("DELETE", "/v1/apps/{name}", "/v1/apps/shop", None, TENANT_MANAGE),
    row(
        "GET",
        "/v1/apps/{name}/formation",
        "/v1/apps/shop/formation",
        None,
        TENANT_READ,
    ),
    row(
        "PATCH",
        "/v1/apps/{name}/formation",
        "/v1/apps/shop/formation",
        Some(|| json!({"web": 1})),
        TENANT_DEPLOY,
    ),
    row(
        "GET",
        "/v1/apps/{name}/domains",
        "/v1/apps/shop/domains",
        None,
        TENANT_READ,
    ),
    row(
        "POST",
        "/v1/apps/{name}/domains",
        "/v1/apps/shop/domains",
        Some(|| json!({"name": "shop.example.com"})),
        TENANT_DEPLOY,
    ),
    row(
        "DELETE",
        "/v1/apps/{name}/domains/{domain}",
        "/v1/apps/shop/domains/shop.example.com",
        None,
        TENANT_DEPLOY,
    ),
    row(
        "GET",
        "/v1/apps/{name}/certificates",
        "/v1/apps/shop/certificates",
        None,
        TENANT_READ,
    ),
    row(
        "POST",
        "/v1/apps/{name}/certificates",
        "/v1/apps/shop/certificates",
        Some(|| json!({"cert_pem": "x", "key_pem": "y"})),
        TENANT_DEPLOY,
    ),
    row(
        "DELETE",
        "/v1/apps/{name}/certificates/{id}",
        "/v1/apps/shop/certificates/nope",
        None,
        TENANT_DEPLOY,
    ),
    row(
        "GET",
        "/v1/apps/{name}/instances",
        "/v1/apps/shop/instances",
        None,
        TENANT_READ,
    ),
    row(
        "GET",
        "/v1/apps/{name}/releases",
        "/v1/apps/shop/releases",
        None,
        TENANT_READ,
    ),
    row(
        "GET",
        "/v1/apps/{name}/releases/{version}",
        "/v1/apps/shop/releases/v1",
        None,
        TENANT_READ,
    ),
    row(
        "GET",
        "/v1/apps/{name}/logs",
        "/v1/apps/shop/logs",
        None,
        TENANT_READ,
    ),
    row(
        "GET",
        "/v1/apps/{name}/events",
        "/v1/apps/shop/events",
        None,
        TENANT_READ,
    ),
    row(
        "GET",
        "/v1/apps/{name}/config",
        "/v1/apps/shop/config",
        None,
        TENANT_READ,
    ),
    row(
        "PATCH",
        "/v1/apps/{name}/config",
        "/v1/apps/shop/config",
        Some(|| json!({"FOO": "bar"})),
        TENANT_DEPLOY,
    ),
    row(
        "POST",
        "/v1/apps/{name}/rollback",
        "/v1/apps/shop/rollback",
        Some(empty),
        TENANT_DEPLOY,
    ),
    row(
        "POST",
        "/v1/apps/{name}/stop",
        "/v1/apps/shop/stop",
        None,
        TENANT_DEPLOY,
    ),
    row(
        "POST",
        "/v1/apps/{name}/start",
        "/v1/apps/shop/start",
        None,
        TENANT_DEPLOY,
    ),
    row(
        "POST",
        "/v1/apps/{name}/restart",
        "/v1/apps/shop/restart",
        Some(empty),
        TENANT_DEPLOY,
    ),
    row(
        "GET",
        "/v1/apps/{name}/runs",
        "/v1/apps/shop/runs",
        None,
        TENANT_READ,
    ),
    row(
        "POST",
        "/v1/apps/{name}/runs",
        "/v1/apps/shop/runs",
        Some(|| json!({"command": ["true"]})),
        TENANT_DEPLOY,
    ),
    row(
        "DELETE",
        "/v1/apps/{name}/runs/{run}",
        "/v1/apps/shop/runs/run.1",
        None,
        TENANT_DEPLOY,
    ),
    row(
        "POST",
        "/v1/apps/{name}/rebase",
        "/v1/apps/shop/rebase",
        None,
        TENANT_DEPLOY,
    ),
    row(
        "POST",
        "/v1/apps/{name}/deploys",
        "/v1/apps/shop/deploys",
        Some(|| json!({"image": "localhost:5000/x:1"})),
        TENANT_DEPLOY,
    ),
    row(
        "GET",
        "/v1/apps/{name}/collaborators",
        "/v1/apps/shop/collaborators",
        None,
        TENANT_READ,
    ),
    row(
        "POST",
        "/v1/apps/{name}/collaborators",
        "/v1/apps/shop/collaborators",
        Some(|| json!({"account": "other"})),
        TENANT_MANAGE,
    ),
    row(
        "DELETE",
        "/v1/apps/{name}/collaborators/{account}",
        "/v1/apps/shop/collaborators/collaborator",
        None,
        TENANT_MANAGE,
    ),
    row("GET", "/v1/tokens", "/v1/tokens", None, ANY_ACCOUNT_READ),
    row("POST", "/v1/tokens", "/v1/tokens", Some(empty), ANY_ACCOUNT_WRITE),
    row(
        "DELETE",
        "/v1/tokens/{id}",
        "/v1/tokens/abcdef",
        None,
        ANY_ACCOUNT_WRITE,
    ),
    row(
        "GET",
        "/v1/admin/accounts",
        "/v1/admin/accounts",
        None,
        ADMIN_ONLY,
    ),
    row(
        "POST",
        "/v1/admin/accounts",
        "/v1/admin/accounts",
        Some(|| json!({"name": "newbie"})),
        ADMIN_ONLY,
    ),
    row(
        "DELETE",
        "/v1/admin/accounts/{name}",
        "/v1/admin/accounts/victim",
        None,
        ADMIN_ONLY,
    ),
    row(
        "POST",
        "/v1/admin/accounts/{name}/suspend",
        "/v1/admin/accounts/victim/suspend",
        None,
        ADMIN_ONLY,
    ),
    row(
        "POST",
        "/v1/admin/accounts/{name}/unsuspend",
        "/v1/admin/accounts/victim/unsuspend",
        None,
        ADMIN_ONLY,
    ),
    row(
        "PUT",
        "/v1/admin/accounts/{name}/quotas",
        "/v1/admin/accounts/victim/quotas",
        Some(|| json!({"apps": 3})),
        ADMIN_ONLY,
    ),
    row("GET", "/v1/admin/apps", "/v1/admin/apps", None, ADMIN_ONLY),
    row(
        "POST",
        "/v1/admin/apps/{name}/stop",
        "/v1/admin/apps/shop/stop",
        None,
        ADMIN_ONLY,
    ),
    row("GET", "/v1/admin/audit", "/v1/admin/audit", None, ADMIN_ONLY),
    // Nodes: the harness registers none, so the admin's answer past authorization is "no node ...".
    row("GET", "/v1/admin/nodes", "/v1/admin/nodes", None, ADMIN_ONLY),
    row(
        "POST",
        "/v1/admin/nodes/{name}/cordon",
        "/v1/admin/nodes/node-x/cordon",
        None,
        ADMIN_ONLY,
    ),
    row(
        "POST",
        "/v1/admin/nodes/{name}/uncordon",
        "/v1/admin/nodes/node-x/uncordon",
        None,
        ADMIN_ONLY,
    ),
    row(
        "POST",
        "/v1/admin/nodes/{name}/drain",
        "/v1/admin/nodes/node-x/drain",
        None,
        ADMIN_ONLY,
    ),
    row(
        "DELETE",
        "/v1/admin/nodes/{name}",
        "/v1/admin/nodes/node-x",
        None,
        ADMIN_ONLY,
    ),
];

/// Every `(method, path template)` the api crate's sources route, per the module's rules.
fn routes_in_sources() -> std::collections::BTreeSet<(String, String)> {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![src];
    let mut found = std::collections::BTreeSet::new();
    while let Some(path) = files.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                files.push(entry.unwrap().path());
            }
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (start, _) in text.match_indices(".route(") {
            let call = balanced(&text[start + ".route".len()..]);
            let Some(open) = call.find('"') else { continue };
            let close = open + 1 + call[open + 1..].find('"').unwrap();
            let path = &call[open + 1..close];
            if path.starts_with("/v2") || path == "/healthz" {
                continue;
            }
            let full = if path.starts_with("/v1/") {
                path.to_owned()
            } else {
                format!("/v1{path}")
            };
            let rest = &call[close..];
            for method in ["get", "post", "put", "patch", "delete"] {
                let called = rest.match_indices(&format!("{method}(")).any(|(at, _)| {
                    at == 0
                        || !rest.as_bytes()[at - 1].is_ascii_alphanumeric() && rest.as_bytes()[at - 1] != b'_'
                });
                if called {
                    found.insert((method.to_uppercase(), full.clone()));
                }
            }
        }
    }
    found
}

/// The text of a parenthesised call from its `(` to the matching `)`.
fn balanced(text: &str) -> &str {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[..=i];
                }
            }
            _ => {}
        }
    }
    text
}

#[test]
fn every_route_is_in_the_table() {
    let routed = routes_in_sources();
    assert!(routed.len() > 40, "the source scan found too little: {routed:?}");
    let listed: std::collections::BTreeSet<(String, String)> = TABLE
        .iter()
        .map(|r| (r.method.to_owned(), r.template.to_owned()))
        .collect();
    assert_eq!(listed.len(), TABLE.len(), "a route is listed twice");
    let missing: Vec<_> = routed.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&routed).collect();
    assert!(
        missing.is_empty(),
        "routes missing from the authorization table: {missing:?}"
    );
    assert!(stale.is_empty(), "table rows no route serves: {stale:?}");
}

/// The tokens of each caller, and the world they act on: `owner` owns `shop`, `collaborator` collaborates on
/// it, `victim` is an account for the admin routes to act on.
async fn world() -> (Harness, [Option<String>; 6]) {
    let mut h = Harness::new().await;
    let owner = h.tenant("owner").await;
    let collaborator = h.tenant("collaborator").await;
    let other = h.tenant("other").await;
    h.tenant("victim").await;
    h.create_app("shop", &owner).await;
    let app = h.app("shop").await;
    let collab_account = h
        .store
        .account_by_name(&vocabulary::AccountName::new("collaborator").unwrap())
        .await
        .unwrap()
        .unwrap();
    let owner_name = vocabulary::AccountName::new("owner").unwrap();
    h.store
        .add_collaborator(app.id, &collab_account, &owner_name)
        .await
        .unwrap();
    let owner_id = h.store.account_by_name(&owner_name).await.unwrap().unwrap().id;
    let (_, read) = h
        .store
        .create_token(owner_id, store::TokenScope::Read)
        .await
        .unwrap();
    let admin = h.admin.clone();
    (
        h,
        [
            None,
            Some(other),
            Some(read),
            Some(admin),
            Some(collaborator),
            Some(owner),
        ],
    )
}

#[tokio::test]
async fn every_caller_gets_what_the_table_says() {
    let mut failures = Vec::new();
    for row in TABLE {
        // A fresh world per route: one row's changes (a deleted app, a suspended account) never leak into
        // another's.
        let (h, tokens) = world().await;
        for (i, token) in tokens.iter().enumerate() {
            let method: Method = row.method.parse().unwrap();
            let mut req = Request::builder().method(method).uri(row.path);
            if let Some(token) = token {
                req = req.header("authorization", format!("Bearer {token}"));
            }
            let body = match row.body {
                Some(body) => {
                    req = req.header("content-type", "application/json");
                    Body::from(body().to_string())
                }
                None => Body::empty(),
            };
            let response = h.router.clone().oneshot(req.body(body).unwrap()).await.unwrap();
            let status = response.status();
            // Streams (logs, the route watch) never end: their bodies are read only for failures.
            let text = if status.is_success() {
                String::new()
            } else {
                let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
                String::from_utf8_lossy(&bytes).into_owned()
            };
            let got = match status {
                StatusCode::UNAUTHORIZED => U,
                StatusCode::FORBIDDEN => F,
                StatusCode::NOT_FOUND if text.contains("app \\\"shop\\\" not found") => H,
                _ => A,
            };
            if got != row.want[i] {
                failures.push(format!(
                    "{} {} as {}: want {:?}, got {got:?} ({status} {text})",
                    row.method, row.template, CALLERS[i], row.want[i]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
