//! A Dockerfile app pushed with the real `git` client to a real `berth server`: built without a Docker
//! daemon (deletions as whiteouts), served through the router, and rebuilt from the step cache when only the
//! code changed.

use std::time::Duration;

use crate::end_to_end::server_with_app;
use crate::support::*;

const APP: &str = "dockerized";

#[test]
fn a_pushed_dockerfile_app_is_built_served_and_rebuilt_from_cache() {
    if !require(
        "a_pushed_dockerfile_app_is_built_served_and_rebuilt_from_cache",
        true,
        &["git", "debootstrap", "ip", "nft"],
    ) {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let data_dir = work.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    let (mut server, token) = server_with_app(&data_dir, "docker-user", APP);

    let repo = work.path().join("repo");
    app_repo("dockerfile-hello", &repo);
    let url = format!("http://user:{token}@{}/git/{APP}.git", server.api);
    let out = git(&repo, &["push", &url, "main"]);
    let push = text(&out.stderr);
    assert!(out.status.success(), "push failed:\n{push}\n{}", server.log());
    assert!(push.contains("Dockerfile detected"), "{push}");
    assert!(push.contains("Step"), "no step progress:\n{push}");
    let body = server.wait_for_app(
        APP,
        "/",
        Duration::from_secs(120),
        "the Dockerfile app",
        |s, b| s == 200 && b.contains(" v1 "),
    );
    // ARG and ENV reached the process; the file removed by a later RUN is gone (its whiteout applied).
    assert_eq!(body.trim(), "hello from a Dockerfile v1 files=kept.txt");

    // Only the code changes: every step before the COPY comes from the cache.
    let server_py = repo.join("server.py");
    let code = std::fs::read_to_string(&server_py).unwrap();
    std::fs::write(&server_py, code.replace("VERSION = \"v1\"", "VERSION = \"v2\"")).unwrap();
    commit_all(&repo, "v2");
    let out = git(&repo, &["push", &url, "main"]);
    let push = text(&out.stderr);
    assert!(
        out.status.success(),
        "second push failed:\n{push}\n{}",
        server.log()
    );
    assert!(
        push.matches("Using cache").count() >= 2,
        "the RUN steps were not reused:\n{push}"
    );
    let body = server.wait_for_app(APP, "/", Duration::from_secs(120), "v2", |s, b| {
        s == 200 && b.contains(" v2 ")
    });
    assert_eq!(body.trim(), "hello from a Dockerfile v2 files=kept.txt");

    let status = server.stop();
    assert!(status.success(), "server exit: {status:?}\n{}", server.log());
}
