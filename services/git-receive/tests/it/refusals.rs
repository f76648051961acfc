//! Pushes that must not get in: bad tokens, other tenants' apps, other branches, oversized packs, fetches.

use std::time::Duration;

use rand::RngCore;
use tokio::io::AsyncWriteExt;

use crate::support::{have_git, stderr, Server, Work};

async fn committed_work() -> Work {
    let work = Work::new().await;
    work.write("app.py", "print('hi')\n");
    work.commit("first").await;
    work
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tokens_and_ownership_are_checked() {
    if !have_git("tokens_and_ownership_are_checked") {
        return;
    }
    let server = Server::start(64 * 1024 * 1024).await;
    let (_, _alice_token, _) = server.tenant("alice", Some("shop")).await;
    let (_, bob_token, _) = server.tenant("bob", Some("blog")).await;
    let work = committed_work().await;
    let host = server.url.trim_start_matches("http://");

    let cases = [
        (
            format!("http://git:wrong-token@{host}/git/shop.git"),
            "Authentication failed",
        ),
        (format!("http://{host}/git/shop.git"), "could not read Username"),
        (server.remote(&bob_token, "shop"), "repository not found"),
        (server.remote(&bob_token, "nosuchapp"), "repository not found"),
        (
            format!("http://git:{bob_token}@{host}/git/Bad_Name.git"),
            "repository not found",
        ),
    ];
    for (remote, expected) in cases {
        let output = work.git(&["push", &remote, "main"]).await;
        let err = stderr(&output);
        assert!(!output.status.success(), "{remote}: {err}");
        assert!(err.contains(expected), "{remote}: expected {expected:?} in {err}");
        assert!(
            !err.contains(&bob_token) || remote.contains(&bob_token),
            "no token is echoed"
        );
    }
    assert!(server.deploys().is_empty());
    assert!(
        !server.repos_dir.join("shop.git").exists(),
        "a refused push creates no repository"
    );

    // The raw answers: 401 with a Basic challenge, 404 for someone else's app.
    let client = reqwest::Client::new();
    let url = format!("{}/git/shop.git/info/refs?service=git-receive-pack", server.url);
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], r#"Basic realm="berth""#);
    let response = client
        .get(&url)
        .basic_auth("git", Some(&bob_token))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let response = client
        .get(url.replace("shop", "blog"))
        .basic_auth("x", Some(&bob_token))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/x-git-receive-pack-advertisement"
    );
    assert!(response.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("no-cache"));
    let body = response.bytes().await.unwrap();
    assert!(
        body.starts_with(b"001f# service=git-receive-pack\n0000"),
        "{body:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_main_or_master_deploys() {
    if !have_git("only_main_or_master_deploys") {
        return;
    }
    let server = Server::start(64 * 1024 * 1024).await;
    let (_, token, _) = server.tenant("alice", Some("shop")).await;
    let work = committed_work().await;
    let remote = server.remote(&token, "shop");

    let output = work.git(&["push", &remote, "main:dev"]).await;
    let err = stderr(&output);
    assert!(!output.status.success(), "{err}");
    assert!(
        err.contains("remote:  !     refs/heads/dev is not deployed: berth deploys the main branch"),
        "{err}"
    );
    assert_eq!(server.server_ref("shop", "dev"), None);

    let output = work.git(&["push", &remote, "main:master"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(server.server_ref("shop", "master").is_some());

    // Deleting the deployed branch is refused (by git's receive.denyDeletes, before the hook).
    let output = work.git(&["push", &remote, ":master"]).await;
    assert!(!output.status.success(), "{}", stderr(&output));
    assert!(server.server_ref("shop", "master").is_some());
    assert_eq!(server.deploys().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_push_is_refused_with_the_reason() {
    if !have_git("oversized_push_is_refused_with_the_reason") {
        return;
    }
    let server = Server::start(3 * 1024 * 1024).await;
    let (_, token, _) = server.tenant("alice", Some("shop")).await;
    // Random bytes do not compress: a pack is about as large as its files. Both pushes are larger than git's
    // http.postBuffer (1 MiB), so git streams them chunked after a probe request.
    let random_work = |size: usize| async move {
        let work = Work::new().await;
        let mut data = vec![0u8; size];
        rand::rng().fill_bytes(&mut data);
        std::fs::write(work.dir.path().join("blob.bin"), &data).unwrap();
        let head = work.commit("random").await;
        (work, head)
    };

    let (big, _) = random_work(4 * 1024 * 1024).await;
    let output = big.git(&["push", &server.remote(&token, "shop"), "main"]).await;
    let err = stderr(&output);
    assert!(!output.status.success(), "{err}");
    assert!(
        err.contains("push refused: it is larger than this server's limit of 3 MiB"),
        "{err}"
    );
    assert_eq!(server.server_ref("shop", "main"), None);
    assert!(server.deploys().is_empty());

    // A push under the limit to the same server works.
    let (fits, head) = random_work(2 * 1024 * 1024).await;
    let output = fits.git(&["push", &server.remote(&token, "shop"), "main"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(server.server_ref("shop", "main"), Some(head));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fetching_is_refused() {
    if !have_git("fetching_is_refused") {
        return;
    }
    let server = Server::start(64 * 1024 * 1024).await;
    let (_, token, _) = server.tenant("alice", Some("shop")).await;
    let work = committed_work().await;
    assert!(work
        .git(&["push", &server.remote(&token, "shop"), "main"])
        .await
        .status
        .success());

    let output = work.git(&["clone", &server.remote(&token, "shop"), "copy"]).await;
    let err = stderr(&output);
    assert!(!output.status.success(), "{err}");
    assert!(err.contains("remote: fetching is not supported yet"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hook_endpoint_needs_a_live_secret() {
    let server = Server::start(1024).await;
    let client = reqwest::Client::new();
    let url = format!("{}/internal/git-hooks/pre-receive", server.url);
    let body = serde_json::json!({"ref": "refs/heads/main", "old": "0".repeat(40), "new": "a".repeat(40)});
    for secret in [None, Some("0".repeat(64))] {
        let mut request = client.post(&url).json(&body);
        if let Some(secret) = &secret {
            request = request.bearer_auth(secret);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{secret:?}");
    }
}

/// The hook says clearly when the server is gone, and exits non-zero so git refuses the push.
#[tokio::test]
async fn hook_reports_an_unreachable_server() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/internal/git-hooks/pre-receive");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_berth-git-hook"))
        .args(["git-hook", "pre-receive"])
        .env("BERTH_HOOK_URL", &url)
        .env("BERTH_HOOK_SECRET", "s")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let line = format!("{} {} refs/heads/main\n", "0".repeat(40), "a".repeat(40));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(line.as_bytes()).await.unwrap();
    drop(stdin);
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success());
    assert!(
        out.contains(&format!("cannot reach the berth server at {url}: is it running?")),
        "{out}"
    );

    // Outside a push it refuses to do anything.
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_berth-git-hook"))
        .args(["git-hook", "pre-receive"])
        .env_remove("BERTH_HOOK_URL")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("runs only inside a push"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn collaborators_push_read_only_tokens_and_suspended_accounts_do_not() {
    if !have_git("collaborators_push_read_only_tokens_and_suspended_accounts_do_not") {
        return;
    }
    let server = Server::start(64 * 1024 * 1024).await;
    let (alice, alice_token, shop) = server.tenant("alice", Some("shop")).await;
    let (bob, bob_token, _) = server.tenant("bob", None).await;
    let shop = shop.unwrap();
    let (_, read_token) = server
        .store
        .create_token(alice.id, store::TokenScope::Read)
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let url = format!("{}/git/shop.git/info/refs?service=git-receive-pack", server.url);
    let status = |token: String| {
        let request = client.get(&url).basic_auth("git", Some(token));
        async move { request.send().await.unwrap().status().as_u16() }
    };

    assert_eq!(status(bob_token.clone()).await, 404);
    server
        .store
        .add_collaborator(shop.id, &bob, &alice.name)
        .await
        .unwrap();
    assert_eq!(status(bob_token.clone()).await, 200);
    let response = client
        .get(&url)
        .basic_auth("git", Some(&read_token))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(response.text().await.unwrap().contains("this token is read-only"));

    // The collaborator's push deploys, and the audit log says who pushed where.
    let work = committed_work().await;
    work.ok(&["push", &server.remote(&bob_token, "shop"), "main"])
        .await;
    assert_eq!(server.deploys().len(), 1);
    let audit = server.store.audit_log(None, 10).await.unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(
        (
            audit[0].account.as_str(),
            audit[0].action.as_str(),
            audit[0].target.as_deref()
        ),
        ("bob", "git push", Some("app shop"))
    );

    server.store.set_account_suspended(alice.id, true).await.unwrap();
    let response = client
        .get(&url)
        .basic_auth("git", Some(&alice_token))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(response.text().await.unwrap().contains("account suspended"));
}
