//! Issue 6's logs and events, end to end: a pushed app's output, the router's lines and the platform's events
//! in `berth logs` and `berth events`; `-f` streaming; a crash; 20,000 lines written fast all accounted for
//! (received or counted as dropped); the log kept across a server restart.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::end_to_end::{last_line, prepare_stack};
use crate::support::*;

const APP: &str = "chatty";
const WAIT: Duration = Duration::from_secs(120);

fn push(server: &Server, token: &str, repo: &Path) {
    let url = format!("http://user:{token}@{}/git/{APP}.git", server.api);
    let out = git(repo, &["push", &url, "main"]);
    assert!(
        out.status.success(),
        "git push failed:\n{}\n{}",
        text(&out.stderr),
        server.log()
    );
}

/// Polls `berth logs` until a line contains every one of `wanted`; returns the whole output.
fn wait_for_logs(server: &Server, token: &str, args: &[&str], wanted: &[&str]) -> String {
    let deadline = Instant::now() + WAIT;
    let mut all = vec!["logs", "-a", APP];
    all.extend_from_slice(args);
    loop {
        let out = server.berth_ok(token, &all);
        if wanted.iter().all(|w| out.contains(w)) {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "berth logs never showed {wanted:?}:\n{out}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Waits until `berth events -a APP` shows `wanted`.
fn wait_for_event(server: &Server, token: &str, wanted: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let events = server.berth_ok(token, &["events", "-a", APP]);
        if events.contains(wanted) {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "{wanted:?} never in the events:\n{events}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Lines of a followed stream, read on their own thread so the test can give up waiting.
fn lines_of(reader: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[test]
fn logs_gather_output_router_lines_events_and_crashes() {
    if !require(
        "logs_gather_output_router_lines_events_and_crashes",
        true,
        &["git", "debootstrap", "ip", "nft"],
    ) {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let data_dir = work.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    prepare_stack(&data_dir);
    let names = HostNames::unique();
    let mut server = Server::start(&data_dir, &names);
    let admin = server.admin_token();
    let alice = last_line(&server.berth_ok(&admin, &["accounts", "create", "alice"]));
    let bob = last_line(&server.berth_ok(&admin, &["accounts", "create", "bob"]));
    server.berth_ok(&alice, &["apps", "create", APP]);
    let repo = work.path().join("repo");
    app_repo("python-logs", &repo);
    push(&server, &alice, &repo);
    server.wait_for_app(APP, "/hello-logs", WAIT, "the app to serve", |s, _| s == 200);

    // The app's own line, the router's line for the same request, and the deploy's events.
    let out = wait_for_logs(
        &server,
        &alice,
        &["-n", "1000"],
        &[
            "app[web.1]: request: \"GET /hello-logs",
            "router: at=info method=GET path=\"/hello-logs\"",
        ],
    );
    for want in [
        "app[web.1]: starting on port",
        "berth[web.1]: Up: answering on port 5000",
        "berth[deploy]: Deploying v1",
        "berth[build]: -----> Released v1",
        "berth[deploy]: v1 deployed by alice",
        "berth[api]: Created app chatty by alice",
        &format!("host={APP}.{}", server.domain),
        "dyno=web.1",
        "status=200",
    ] {
        assert!(out.contains(want), "{want:?} missing from:\n{out}");
    }
    // Lines print as TIMESTAMP SOURCE[PROCESS]: TEXT.
    let line = out.lines().find(|l| l.contains("Deploying v1")).unwrap();
    let (stamp, rest) = line.split_once(' ').unwrap();
    assert!(stamp.starts_with("20") && stamp.ends_with('Z'), "{line}");
    assert!(rest.starts_with("berth[deploy]: "), "{line}");
    // Filters.
    let apps_only = server.berth_ok(&alice, &["logs", "-a", APP, "-n", "1000", "--source", "app"]);
    assert!(apps_only.lines().all(|l| l.contains(" app[")), "{apps_only}");
    assert!(apps_only.contains("request:"));
    let router_only = server.berth_ok(&alice, &["logs", "-a", APP, "-n", "1000", "--source", "router"]);
    assert!(
        !router_only.is_empty() && router_only.lines().all(|l| l.contains(" router: ")),
        "{router_only}"
    );
    let web1 = server.berth_ok(&alice, &["logs", "-a", APP, "-n", "1000", "--ps", "web.1"]);
    assert!(web1.lines().all(|l| l.contains("[web.1]: ")), "{web1}");
    let two = server.berth_ok(&alice, &["logs", "-a", APP, "-n", "2"]);
    assert_eq!(two.lines().count(), 2, "{two}");
    // Another tenant cannot read them, nor learn that the app exists.
    let refused = server.berth(&bob, &["logs", "-a", APP]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("not found"),
        "{}",
        text(&refused.stderr)
    );
    assert!(!server.berth(&bob, &["events", "-a", APP]).status.success());

    // -f: a line written after it started reaches it.
    let mut follower = Command::new(berth_bin())
        .args(["logs", "-a", APP, "-f", "-n", "0", "--source", "app"])
        .env("BERTH_API", server.api_url())
        .env("BERTH_TOKEN", &alice)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let followed = lines_of(follower.stdout.take().unwrap());
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    'follow: loop {
        // Asked again until seen: the follower may not have connected before the first request.
        server.get_app(APP, "/followed");
        while let Ok(line) = followed.recv_timeout(Duration::from_millis(500)) {
            if line.contains("GET /followed") {
                break 'follow;
            }
            seen.push(line);
        }
        assert!(
            Instant::now() < deadline,
            "-f never showed the new line; saw {seen:?}"
        );
    }
    // SAFETY: kill with the PID of our own child, not yet reaped, and a valid signal.
    unsafe { libc::kill(follower.id() as i32, libc::SIGTERM) };
    let _ = follower.wait();

    // A crash: in the log with its exit code, and as an event.
    server.get_app(APP, "/crash");
    wait_for_logs(
        &server,
        &alice,
        &["-n", "1000"],
        &[
            "app[web.1]: crashing on purpose",
            "berth[web.1]: Process exited with status 3",
        ],
    );
    let deadline = Instant::now() + WAIT;
    let events = loop {
        let events = server.berth_ok(&alice, &["events", "-a", APP]);
        if events.contains("web.1 crashed with exit status 3") || Instant::now() > deadline {
            break events;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    for want in [
        "web.1 crashed with exit status 3",
        "(by berth)",
        "v1 deployed",
        "(by alice)",
        "app_created",
    ] {
        assert!(events.contains(want), "{want:?} missing from events:\n{events}");
    }
    assert!(
        events.find("crashed").unwrap() < events.find("app_created").unwrap(),
        "newest first:\n{events}"
    );
    server.wait_for_app(APP, "/", WAIT, "the app to be restarted", |s, _| s == 200);

    // An OOM kill: Heroku's R14 in the log, and an event.
    server.get_app(APP, "/hog");
    wait_for_logs(
        &server,
        &alice,
        &["-n", "1000"],
        &[
            "app[web.1]: allocating until the memory limit",
            "berth[web.1]: Error R14 (Memory quota exceeded)",
        ],
    );
    wait_for_event(&server, &alice, "killed out of memory (R14");
    server.wait_for_app(
        APP,
        "/",
        WAIT,
        "the app to be restarted after its OOM kill",
        |s, _| s == 200,
    );

    // An app that ignores SIGTERM is killed with SIGKILL once the app's stop grace is over (Heroku's R12).
    server.berth_ok(&alice, &["apps", "update", APP, "--stop-grace", "2s"]);
    server.wait_for_app(APP, "/ignore-term", WAIT, "the app to ignore SIGTERM", |s, _| {
        s == 200
    });
    wait_for_logs(
        &server,
        &alice,
        &["-n", "1000"],
        &["app[web.1]: ignoring SIGTERM from now on"],
    );
    server.berth_ok(&alice, &["ps", "restart", "web.1", "-a", APP]);
    let out = wait_for_logs(
        &server,
        &alice,
        &["-n", "1000", "--ps", "web.1", "--source", "berth"],
        &[
            "berth[web.1]: Stopping all processes with SIGTERM",
            "berth[web.1]: Error R12 (Exit timeout): the process did not exit within 2 s of SIGTERM, stopping it with SIGKILL",
            "berth[web.1]: Process killed by SIGKILL",
        ],
    );
    let sigterm = out.rfind("Stopping all processes with SIGTERM").unwrap();
    assert!(out.rfind("Error R12").unwrap() > sigterm, "{out}");
    server.wait_for_app(APP, "/", WAIT, "the restarted app to serve", |s, _| s == 200);

    // 20,000 lines as fast as the app can write them: every one is received by a follower or counted in a
    // `N lines dropped` marker (by the agent's channel, or by this follower falling behind).
    let response = http_follow(&server, &alice);
    let stream = lines_of(response);
    let stop = Arc::new(AtomicBool::new(false));
    server.get_app(APP, "/burst");
    // Later lines from the same stdout carry any count still held back.
    let poker = {
        let stop = stop.clone();
        let (router, host) = (server.router, format!("{APP}.{}", server.domain));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = http()
                    .get(format!("http://{router}/poke"))
                    .header("Host", &host)
                    .send();
                std::thread::sleep(Duration::from_millis(300));
            }
        })
    };
    let (mut burst, mut dropped, mut done) = (0u64, 0u64, false);
    let deadline = Instant::now() + WAIT;
    loop {
        let Ok(line) = stream.recv_timeout(Duration::from_millis(500)) else {
            assert!(
                Instant::now() < deadline,
                "only {burst} burst lines + {dropped} dropped accounted for"
            );
            continue;
        };
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let text = value["text"].as_str().unwrap_or_default();
        if let Some(n) = text.strip_suffix(" lines dropped") {
            dropped += n.parse::<u64>().unwrap();
        } else if text.starts_with("burst done") {
            done = true;
        } else if text.starts_with("burst ") {
            burst += 1;
        } else if text.contains("GET /poke") && (done || burst + dropped >= 20_000) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {burst} burst lines + {dropped} dropped accounted for"
        );
    }
    stop.store(true, Ordering::Relaxed);
    poker.join().unwrap();
    eprintln!("burst: {burst} lines received, {dropped} counted as dropped");
    assert!(burst + dropped >= 20_000, "{burst} received + {dropped} dropped");
    assert!(burst <= 20_000);

    // The log survives a restart of the server.
    let before = server.berth_ok(&alice, &["logs", "-a", APP, "-n", "5"]);
    assert_eq!(before.lines().count(), 5, "{before}");
    server.stop();
    let server = Server::start(&data_dir, &names);
    let after = server.berth_ok(&alice, &["logs", "-a", APP, "-n", "100000"]);
    for line in before.lines() {
        assert!(after.contains(line), "{line:?} lost in the restart");
    }
    // Down to the agent's lines about stopping the instance at shutdown.
    assert!(
        after.contains("berth[web.1]: Stopping"),
        "the shutdown's last lines were lost:\n{}",
        after.lines().rev().take(20).collect::<Vec<_>>().join("\n")
    );
    assert!(
        after.contains("Deploying v1") || after.lines().count() >= 10_000,
        "either nothing was rotated away yet, or at least the last 10,000 lines are kept"
    );
    drop(server);
    let left = leftovers(&names, &data_dir);
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// `GET /v1/apps/APP/logs?follow=true&lines=0` as a raw NDJSON stream, without the client's read timeout.
fn http_follow(server: &Server, token: &str) -> reqwest::blocking::Response {
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(None)
        .build()
        .unwrap();
    let response = client
        .get(format!(
            "{}/v1/apps/{APP}/logs?follow=true&lines=0",
            server.api_url()
        ))
        .bearer_auth(token)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response
}
