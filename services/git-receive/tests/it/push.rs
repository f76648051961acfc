//! Pushes that deploy, pushes whose deploy fails, and the live stream of `remote:` lines.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::{have_git, stderr, Server, Work};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn push_deploys_the_tree_and_shows_the_log() {
    if !have_git("push_deploys_the_tree_and_shows_the_log") {
        return;
    }
    let server = Server::start(64 * 1024 * 1024).await;
    let (_alice, token, _) = server.tenant("alice", Some("shop")).await;
    let work = Work::new().await;
    work.write("app.py", "print('hi')\n");
    work.write("lib/util.py", "X = 1\n");
    work.write("run.sh", "#!/bin/sh\nexec python3 app.py\n");
    std::fs::set_permissions(
        work.dir.path().join("run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("app.py", work.dir.path().join("main.py")).unwrap();
    work.commit("first").await;
    // A submodule entry (a gitlink) is skipped: its commit is not in this repository.
    let gitlink = format!("160000,{},vendor/sub", "1".repeat(40));
    work.ok(&["update-index", "--add", "--cacheinfo", &gitlink]).await;
    work.ok(&["commit", "-q", "-m", "with a submodule"]).await;
    let head = work.ok(&["rev-parse", "HEAD"]).await;

    let output = work.git(&["push", &server.remote(&token, "shop"), "main"]).await;
    let err = stderr(&output);
    assert!(output.status.success(), "push failed: {err}");
    assert!(
        err.contains(&format!("remote: -----> Building shop ({})", &head[..7])),
        "{err}"
    );
    assert!(err.contains("remote:        6 files"), "{err}");
    assert!(
        err.contains(&format!(
            "remote: -----> deployed {} to http://shop.localhost",
            &head[..7]
        )),
        "{err}"
    );
    assert_eq!(server.server_ref("shop", "main").as_deref(), Some(head.as_str()));

    let deploys = server.deploys();
    assert_eq!(deploys.len(), 1);
    let seen = &deploys[0];
    assert_eq!(
        (seen.app.as_str(), seen.account.as_str(), seen.commit.as_str()),
        ("shop", "alice", head.as_str())
    );
    let tree: Vec<(&str, &str)> = seen.tree.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        tree,
        [
            ("app.py", "file 644"),
            ("lib", "dir"),
            ("lib/util.py", "file 644"),
            ("main.py", "link -> app.py"),
            ("run.sh", "file 755"),
            ("vendor", "dir"),
        ]
    );
    assert!(
        !seen.source_dir.exists(),
        "the checkout is removed after the deploy"
    );
    let checkouts = std::fs::read_dir(server.repos_dir.join(".checkouts"))
        .unwrap()
        .count();
    assert_eq!(checkouts, 0);

    // Only the pre-receive hook is installed.
    let hooks: Vec<_> = std::fs::read_dir(server.repos_dir.join("shop.git/hooks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(hooks, ["pre-receive"]);

    // App deletion removes the repository; the next push starts from an empty one.
    git_receive::delete_repo(&server.repos_dir, &vocabulary::AppName::new("shop").unwrap()).unwrap();
    assert!(!server.repos_dir.join("shop.git").exists());
    let again = work.git(&["push", &server.remote(&token, "shop"), "main"]).await;
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(server.server_ref("shop", "main").as_deref(), Some(head.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_deploy_fails_the_push_and_keeps_the_ref() {
    if !have_git("failed_deploy_fails_the_push_and_keeps_the_ref") {
        return;
    }
    let server = Server::start(64 * 1024 * 1024).await;
    let (_, token, _) = server.tenant("alice", Some("shop")).await;
    let work = Work::new().await;
    work.write("app.py", "print('v1')\n");
    let good = work.commit("good").await;
    let remote = server.remote(&token, "shop");
    assert!(work.git(&["push", &remote, "main"]).await.status.success());

    work.write("fail", "requirements.txt names a package that does not exist\n");
    work.commit("bad").await;
    let output = work.git(&["push", &remote, "main"]).await;
    let err = stderr(&output);
    assert!(
        !output.status.success(),
        "a failed deploy must fail the push: {err}"
    );
    assert!(err.contains("remote: -----> Building shop"), "{err}");
    assert!(
        err.contains("remote:  !     build failed: requirements.txt names a package that does not exist"),
        "{err}"
    );
    assert!(err.contains("pre-receive hook declined"), "{err}");
    assert_eq!(
        server.server_ref("shop", "main").as_deref(),
        Some(good.as_str()),
        "the ref is not updated"
    );
    assert_eq!(server.deploys().len(), 2);
    // The refused push's objects were quarantined and dropped.
    let objects = server.repos_dir.join("shop.git/objects");
    let leftovers: Vec<_> = std::fs::read_dir(&objects)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("tmp_objdir"))
        .collect();
    assert!(leftovers.is_empty(), "quarantine left behind: {leftovers:?}");
}

/// The first log line reaches the pusher while the deploy is still running: the test holds the deploy until
/// it has read that line from `git push`'s own output.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn log_lines_arrive_while_the_deploy_runs_and_a_second_push_is_refused() {
    if !have_git("log_lines_arrive_while_the_deploy_runs_and_a_second_push_is_refused") {
        return;
    }
    let server = Server::start(64 * 1024 * 1024).await;
    let (_, token, _) = server.tenant("alice", Some("shop")).await;
    let remote = server.remote(&token, "shop");
    let work = Work::new().await;
    work.write("wait", "hold the deploy\n");
    work.commit("slow").await;

    let mut push = work.command(&["push", "--progress", &remote, "main"]);
    push.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = push.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut before = Vec::new();
    let first_line = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("remote: -----> Building shop") {
                return;
            }
            before.push(line);
        }
        panic!("git push ended before the first log line: {before:?}");
    });
    first_line
        .await
        .expect("the first log line did not arrive while the deploy waited");
    tokio::time::timeout(Duration::from_secs(10), server.deployer.started.notified())
        .await
        .unwrap();

    // While that deploy runs, another push to the same app is refused with a clear reason.
    let other = Work::new().await;
    other.write("app.py", "print('other')\n");
    other.commit("other").await;
    let output = other.git(&["push", &remote, "main"]).await;
    let err = stderr(&output);
    assert!(!output.status.success(), "{err}");
    assert!(err.contains("another push to shop is deploying now"), "{err}");

    server.deployer.go.notify_one();
    let mut rest = Vec::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        rest.push(line);
    }
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("remote: -----> deployed")),
        "{rest:?}"
    );
    assert_eq!(
        server.deploys().len(),
        1,
        "the refused push never reached the deployer"
    );
}
