//! The app lifecycle without pushes, end to end on one server: config set before the first push reaches
//! it; `config set` with a multi-line UTF-8 value makes a release whose instance sees it; `rollback` brings
//! the old body back; `BUILDPACK_URL` picks a classic buildpack on the next push; `ps restart` replaces an
//! instance; `apps stop` leaves the router with no instance (503) and `apps start` brings it back. Values
//! never reach the server's log.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use crate::end_to_end::{push, push_test_dirs, server_with_app};
use crate::support::*;

const APP: &str = "configured";
const SERVE_TIMEOUT: Duration = Duration::from_secs(120);
/// Unique enough to grep the server's log for.
const GREETING: &str = "héllo wörld ✓\nsecond line s3cr3t-7f1d";

const COMPILE: &str = r#"#!/bin/sh
set -eu
echo "-----> Compiling with the env buildpack"
# Config vars arrive as files in ENV_DIR.
[ -f "$3/GREETING" ] && echo "       GREETING is in ENV_DIR"
# The app's Procfile (`web: python3 app.py`) wins over bin/release's default, so replace app.py itself.
cat > "$1/app.py" <<'PY'
import os
from http.server import BaseHTTPRequestHandler, HTTPServer
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        data = ("buildpack|" + os.environ.get("GREETING", "no greeting")).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
HTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
PY
"#;
const RELEASE: &str = "#!/bin/sh\nprintf -- '---\\ndefault_process_types:\\n  web: python3 app.py\\n'\n";

fn buildpack(dir: &Path) {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    for (name, body) in [
        ("detect", "#!/bin/sh\necho EnvPack\n"),
        ("compile", COMPILE),
        ("release", RELEASE),
    ] {
        let path = dir.join("bin").join(name);
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    git_ok(dir, &["init", "-q", "-b", "main"]);
    commit_all(dir, "the env buildpack");
}

/// The HOSTNAME column of `berth ps`'s rows (the ninth; LAST EXIT after it may hold spaces).
fn hostnames(ps: &str) -> Vec<String> {
    let column = ps
        .lines()
        .next()
        .and_then(|header| header.split_whitespace().position(|c| c == "HOSTNAME"))
        .expect("ps has a HOSTNAME column");
    ps.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(column).map(str::to_owned))
        .collect()
}

/// Polls `berth ps` until `check` accepts it (the replaced instance leaves once it has drained).
fn wait_for_ps(server: &Server, token: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + SERVE_TIMEOUT;
    loop {
        let ps = server.berth_ok(token, &["ps", "-a", APP]);
        if check(&ps) {
            return ps;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for ps:\n{ps}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn config_rollback_buildpack_url_restart_and_stop() {
    let Some((work, data_dir)) = push_test_dirs("config_rollback_buildpack_url_restart_and_stop") else {
        return;
    };
    let (mut server, token) = server_with_app(&data_dir, "config-user", APP);
    let berth = |args: &[&str]| server.berth_ok(&token, &[args, &["-a", APP]].concat());

    // Before any release: kept for the first one.
    let out = berth(&["config", "set", "EARLY=before the first push"]);
    assert!(out.contains("no release yet"), "{out}");

    let repo = work.path().join("app");
    app_repo("python-env", &repo);
    let out = push(&server, &token, APP, &repo);
    assert!(out.status.success(), "push failed:\n{}", text(&out.stderr));
    let body = server.wait_for_app(APP, "/", SERVE_TIMEOUT, "v1", |s, _| s == 200);
    assert_eq!(body, "no greeting|before the first push");

    // A config change: a new release (v2) whose instance sees the value, newline and UTF-8 intact.
    let out = berth(&["config", "set", &format!("GREETING={GREETING}")]);
    assert!(out.contains("v2 deployed"), "{out}");
    let (status, body) = server.get_app(APP, "/").expect("router answers");
    assert_eq!(
        (status, body.as_str()),
        (200, &*format!("{GREETING}|before the first push"))
    );
    assert_eq!(berth(&["config", "get", "GREETING"]), format!("{GREETING}\n"));
    let listed = berth(&["config"]);
    assert!(listed.contains("EARLY='before the first push'\n"), "{listed}");
    let json: serde_json::Value = serde_json::from_str(&berth(&["config", "--json"])).unwrap();
    assert_eq!(json["GREETING"], GREETING);
    let info = berth(&["releases", "info", "v2"]);
    assert!(info.contains("Kind:         config"), "{info}");
    assert!(info.contains("Description:  Set GREETING"), "{info}");
    assert!(
        info.contains("s3cr3t-7f1d"),
        "the owner sees values in info:\n{info}"
    );
    let releases = berth(&["releases"]);
    assert!(releases.contains("Set GREETING"), "{releases}");
    assert!(!releases.contains("s3cr3t"), "{releases}");

    // Refused changes say why and change nothing.
    let out = server.berth(&token, &["config", "set", "PORT=1", "-a", APP]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("set by the platform"),
        "{}",
        text(&out.stderr)
    );

    // Rollback (to the release before the latest: v1) restores the old body, in a new release v3.
    let out = berth(&["rollback"]);
    assert!(out.contains("Rolled back configured to v1: released v3"), "{out}");
    let (status, body) = server.get_app(APP, "/").expect("router answers");
    assert_eq!(
        (status, body.as_str()),
        (200, "no greeting|before the first push")
    );
    assert!(berth(&["releases"]).contains("Rollback to v1"));
    // Both the config change and the rollback are events, by the account, naming variables but no values.
    let events = berth(&["events"]);
    for want in ["config_changed", "Set GREETING", "rollback", "Rollback to v1"] {
        assert!(events.contains(want), "{want} missing from events:\n{events}");
    }
    // And forward again to v2's config.
    let out = berth(&["rollback", "v2"]);
    assert!(out.contains("released v4"), "{out}");
    let body = server.get_app(APP, "/").expect("router answers").1;
    assert!(body.starts_with("héllo wörld ✓\n"), "{body}");

    // BUILDPACK_URL picks a classic buildpack on the next push, which sees config vars in ENV_DIR.
    let pack = work.path().join("env-buildpack");
    buildpack(&pack);
    berth(&[
        "config",
        "set",
        &format!("BUILDPACK_URL=file://{}", pack.display()),
    ]);
    std::fs::write(repo.join("CHANGES"), "second push\n").unwrap();
    commit_all(&repo, "second push");
    let out = push(&server, &token, APP, &repo);
    let push = text(&out.stderr);
    assert!(out.status.success(), "push failed:\n{push}\n{}", server.log());
    assert!(push.contains("Compiling with the env buildpack"), "{push}");
    assert!(push.contains("GREETING is in ENV_DIR"), "{push}");
    let (status, body) = server.get_app(APP, "/").expect("router answers");
    assert_eq!(
        (status, body.as_str()),
        (200, &*format!("buildpack|{GREETING}")),
        "{push}"
    );

    // Restart web.1: a fresh instance (new host name) serves; the old one is gone.
    // (The releases replaced above leave once drained.)
    let ps = wait_for_ps(&server, &token, |ps| hostnames(ps).len() == 1);
    assert!(
        ps.contains("NODE") && ps.contains("UPTIME") && ps.contains("MEMORY"),
        "{ps}"
    );
    let row: Vec<&str> = ps.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..3], ["web.1", "running", "v6"], "{ps}");
    let before = hostnames(&ps);
    // Requests keep coming while it restarts: the fresh instance starts before the old one leaves the
    // route table, so none fails.
    let done = std::sync::atomic::AtomicBool::new(false);
    let (router, host) = (server.router, format!("{APP}.{}", server.domain));
    let (out, (total, failed)) = std::thread::scope(|scope| {
        let load = scope.spawn(|| {
            let client = http();
            let (mut total, mut failed) = (0u32, Vec::new());
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                total += 1;
                let answer = client
                    .get(format!("http://{router}/"))
                    .header("Host", &host)
                    .send()
                    .map(|r| r.status().as_u16());
                if !matches!(answer, Ok(200)) {
                    failed.push(format!("{answer:?}"));
                }
            }
            (total, failed)
        });
        let out = berth(&["ps", "restart", "web.1"]);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        (out, load.join().expect("the load thread"))
    });
    assert!(out.contains("Restarted 1 instance"), "{out}");
    println!("requests during the restart: {total}, failed: {}", failed.len());
    assert!(total > 0);
    assert!(
        failed.is_empty(),
        "{} of {total} requests failed during the restart: {failed:?}",
        failed.len()
    );
    let after = wait_for_ps(&server, &token, |ps| {
        let names = hostnames(ps);
        names.len() == 1 && names != before && ps.contains("running")
    });
    assert!(!hostnames(&after).contains(&before[0]), "{after}");

    // Stop: the router has no instance to send to; start: back.
    let out = server.berth_ok(&token, &["apps", "stop", APP]);
    assert!(out.contains("Stopped configured"), "{out}");
    server.wait_for_app(APP, "/", SERVE_TIMEOUT, "503 once stopped", |s, _| s == 503);
    let info = server.berth_ok(&token, &["apps", "info", APP]);
    assert!(info.contains("Stopped:     yes"), "{info}");
    let out = server.berth_ok(&token, &["apps", "start", APP]);
    assert!(out.contains("Started configured"), "{out}");
    let (status, body) = server.get_app(APP, "/").expect("router answers");
    assert_eq!((status, body.as_str()), (200, &*format!("buildpack|{GREETING}")));

    let status = server.stop();
    assert!(status.success(), "server exit: {status:?}\n{}", server.log());
    let log = server.log();
    assert!(
        !log.contains("s3cr3t-7f1d"),
        "a config value reached the server's log"
    );
    assert!(
        !log.contains("before the first push"),
        "a config value reached the server's log"
    );
}
