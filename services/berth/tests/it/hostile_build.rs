//! A hostile build step (the `hostile-build` sample), pushed with the real `git` client to a real `berth
//! server`: from inside its build sandbox it tries to connect to a listener on the node (through the build
//! network's gateway, which is the node) and to the API port, to read a file of the node, and to hold more
//! processes than the build's pids limit. Every attack must be contained; a control connection to the
//! build's own loopback must succeed (so the probe can tell the two apart). Nothing is left behind.

use std::net::TcpListener;
use std::path::Path;

use crate::end_to_end::{push_test_dirs, server_with_app_and_flags};
use crate::support::*;

const APP: &str = "hostile";

#[test]
fn a_hostile_build_step_is_contained() {
    let Some((work, data_dir)) = push_test_dirs("a_hostile_build_step_is_contained") else {
        return;
    };
    let ((mut server, token), names) =
        server_with_app_and_flags(&data_dir, "hostile-owner", APP, &["--build-pids", "64"]);

    // Something on the node that a build must not reach: a listener on every address of the node (without
    // the node network's rules, the build reaches it through its gateway), and a file.
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    let node_port = listener.local_addr().unwrap().port();
    let api_port = server.api.port();
    let secret = work.path().join("node-secret.txt");
    std::fs::write(&secret, "the node's own file\n").unwrap();

    let repo = work.path().join("repo");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures/hostile-build");
    app_repo_from(&fixture, &repo);
    let attacks = [
        format!("connect GATEWAY:{node_port}"),
        format!("connect GATEWAY:{api_port}"),
        format!("read {}", secret.display()),
        "fork 200".to_owned(),
    ];
    std::fs::write(repo.join("targets.txt"), attacks.join("\n") + "\n").unwrap();
    commit_all(&repo, "the node's addresses");

    let url = format!("http://user:{token}@{}/git/{APP}.git", server.api);
    let out = git(&repo, &["push", &url, "main"]);
    let push = text(&out.stderr);
    // The probe always fails its step: there is nothing to deploy.
    assert!(!out.status.success(), "the push must fail:\n{push}");
    assert!(
        push.contains("hostile build | done"),
        "the probe did not finish:\n{push}"
    );
    assert!(
        push.contains("hostile build | connect own loopback (control) | reachable"),
        "the control connection failed, so the probe cannot tell a breach:\n{push}"
    );
    // The step's output as it ran (the failure message repeats its last lines after it).
    let results: Vec<&str> = push
        .lines()
        .filter_map(|l| l.split_once("hostile build | ").map(|(_, r)| r.trim_end()))
        .take_while(|r| *r != "done")
        .filter(|r| !r.starts_with("connect own loopback"))
        .collect();
    println!("{}", results.join("\n"));
    assert_eq!(results.len(), attacks.len(), "one line per attack:\n{push}");
    for result in &results {
        assert!(
            result.contains("| contained: "),
            "not contained: {result}\n{push}"
        );
    }
    drop(listener);

    let status = server.stop();
    assert!(status.success(), "server exit: {status:?}\n{}", server.log());
    let left = leftovers(&names, &data_dir);
    assert!(left.is_empty(), "left behind after stop: {left:#?}");
}
