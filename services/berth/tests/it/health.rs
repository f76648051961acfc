//! Health checks, automatic rollback and R10, end to end: a push whose web instances fail their app.json
//! health check is never routed (the old body is served throughout, under load), the push says it rolled
//! back and exits non-zero, and `berth releases`, events and logs show it; an instance that never binds PORT
//! gets R10 in `berth logs` with a short boot timeout, and that config change is rolled back too; so is one
//! whose instance binds PORT after the deploy timeout; a failing first release stops its instances, and the
//! next push deploys like a first one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::end_to_end::{push, push_test_dirs, server_with_app};
use crate::support::*;
use crate::zero_downtime::{client, Tally};

const APP: &str = "checked";
const SERVE_TIMEOUT: Duration = Duration::from_secs(120);

/// Polls `berth logs` until it shows every one of `wanted`.
fn logs_showing(server: &Server, token: &str, wanted: &[&str]) -> String {
    let deadline = Instant::now() + SERVE_TIMEOUT;
    loop {
        let out = server.berth_ok(token, &["logs", "-a", APP, "--source", "berth", "-n", "2000"]);
        if wanted.iter().all(|w| out.contains(w)) {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "berth logs never showed {wanted:?}:\n{out}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn failing_health_checks_and_r10_roll_back() {
    let Some((work, data_dir)) = push_test_dirs("failing_health_checks_and_r10_roll_back") else {
        return;
    };
    let (mut server, token) = server_with_app(&data_dir, "health-user", APP);
    let berth = |args: &[&str]| server.berth_ok(&token, &[args, &["-a", APP]].concat());

    let repo = work.path().join("app");
    app_repo("python-health", &repo);
    let out = push(&server, &token, APP, &repo);
    let said = text(&out.stderr);
    assert!(out.status.success(), "push failed:\n{said}\n{}", server.log());
    assert!(
        said.contains("app.json: web instances must answer GET /health with 2xx (2 attempts)"),
        "{said}"
    );
    let body = server.wait_for_app(APP, "/", SERVE_TIMEOUT, "v1", |s, _| s == 200);
    assert_eq!(body, "first body");
    logs_showing(&server, &token, &["Up: health check passed"]);

    // v2 serves a new body but fails its check: under load, nobody ever sees the new body or an error.
    let app_py = std::fs::read_to_string(repo.join("app.py")).unwrap();
    let broken = app_py
        .replace("BODY = \"first body\"", "BODY = \"second body\"")
        .replace("os.environ.get(\"HEALTH\") == \"fail\"", "True");
    assert_ne!(broken, app_py);
    std::fs::write(repo.join("app.py"), broken).unwrap();
    commit_all(&repo, "a release whose health check fails");
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let load = {
        let (router, host) = (server.router, format!("{APP}.{}", server.domain));
        let (stop, tally) = (stop.clone(), tally.clone());
        std::thread::spawn(move || client(router, host, stop, tally))
    };
    let out = push(&server, &token, APP, &repo);
    // The old body keeps being served after the push, too.
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    load.join().expect("the load thread");
    let said = text(&out.stderr);
    assert!(!out.status.success(), "the push must fail:\n{said}");
    assert!(
        said.contains(
            "-----> v2 failed: web.1's health check GET /health failed: 500 Internal Server Error; \
             rolled back to v1, which keeps serving"
        ),
        "{said}\n{}",
        server.log()
    );
    let (sent, failed) = (
        tally.sent.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
    );
    println!("requests during the failed deploy and its rollback: {sent}, failed: {failed}");
    assert!(sent > 0);
    assert_eq!(failed, 0, "{:?}", tally.failures.lock().unwrap());
    assert_eq!(*tally.versions.lock().unwrap(), ["first body"]);

    let releases = berth(&["releases"]);
    assert!(
        releases.contains("Rollback to v1 (v2 failed: web.1's health check GET /health failed"),
        "{releases}"
    );
    let events = berth(&["events"]);
    for want in [
        "deploy_failed",
        "rolling back to v1 automatically as v3",
        "v3 deployed",
    ] {
        assert!(events.contains(want), "{want} missing from events:\n{events}");
    }
    logs_showing(
        &server,
        &token,
        &["health check GET /health failed: 500 Internal Server Error (attempt 2 of 2)"],
    );

    // R10: with a 2 s boot timeout, an instance that never binds PORT is stopped, and the change rolls back.
    let info = server.berth_ok(
        &token,
        &[
            "apps",
            "update",
            APP,
            "--boot-timeout",
            "2s",
            "--deploy-timeout",
            "90s",
        ],
    );
    assert!(info.contains("Boot timeout:        2 s"), "{info}");
    assert!(info.contains("Deploy timeout:      90 s"), "{info}");
    let out = server.berth(&token, &["config", "set", "NO_LISTEN=1", "-a", APP]);
    let said = text(&out.stderr);
    assert!(!out.status.success(), "config set must fail:\n{said}");
    assert!(
        said.contains("v4 failed: web.1 did not listen on its port within 2 s (R10); rolled back to v3"),
        "{said}\n{}",
        server.log()
    );
    logs_showing(
        &server,
        &token,
        &[
            "Error R10 (Boot timeout): web.1 did not listen on PORT",
            "within 2 s, stopping it",
        ],
    );
    assert_eq!(server.get_app(APP, "/"), Some((200, "first body".to_owned())));
    let events = berth(&["events"]);
    assert!(events.contains("R10, boot timeout"), "{events}");
    assert!(berth(&["releases"]).contains("Rollback to v3 (v4 failed"));

    // The deploy timeout: an instance that would bind PORT only after a minute is not up within 8 s.
    server.berth_ok(
        &token,
        &[
            "apps",
            "update",
            APP,
            "--boot-timeout",
            "default",
            "--deploy-timeout",
            "8s",
        ],
    );
    let out = server.berth(&token, &["config", "set", "SLOW_START=1", "-a", APP]);
    let said = text(&out.stderr);
    assert!(!out.status.success(), "config set must fail:\n{said}");
    assert!(
        said.contains(
            "v6 failed: its instances were not up within the deploy timeout of 8 s; rolled back to v5, which keeps serving"
        ),
        "{said}\n{}",
        server.log()
    );
    assert_eq!(server.get_app(APP, "/"), Some((200, "first body".to_owned())));
    // The failed releases' instances are gone: only the last rollback's runs.
    let deadline = Instant::now() + SERVE_TIMEOUT;
    loop {
        let ps = berth(&["ps"]);
        let releases: Vec<&str> = ps
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().nth(2))
            .collect();
        if releases == ["v7"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "instances of failed releases left:\n{ps}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    // A first release that fails its check has nothing to roll back to: its instances are stopped.
    server.berth_ok(&token, &["apps", "create", "checked-first"]);
    let out = push(&server, &token, "checked-first", &repo);
    let said = text(&out.stderr);
    assert!(!out.status.success(), "the push must fail:\n{said}");
    assert!(
        said.contains(
            "v1 failed: web.1's health check GET /health failed: 500 Internal Server Error; there is no earlier \
             release to roll back to, so its instances were stopped"
        ),
        "{said}\n{}",
        server.log()
    );
    let deadline = Instant::now() + SERVE_TIMEOUT;
    loop {
        let ps = server.berth_ok(&token, &["ps", "-a", "checked-first"]);
        if !ps.contains("web.1") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the failed first release still runs:\n{ps}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(server.get_app("checked-first", "/").map(|(s, _)| s), Some(503));
    // The fix is pushed: it deploys like a first release (web scaled to 1), no `apps start` needed.
    std::fs::write(repo.join("app.py"), &app_py).unwrap();
    commit_all(&repo, "the health check passes again");
    let out = push(&server, &token, "checked-first", &repo);
    assert!(
        out.status.success(),
        "the fixed push failed:\n{}",
        text(&out.stderr)
    );
    let body = server.wait_for_app("checked-first", "/", SERVE_TIMEOUT, "the fix", |s, _| s == 200);
    assert_eq!(body, "first body");

    let status = server.stop();
    assert!(status.success(), "server exit: {status:?}\n{}", server.log());
}
