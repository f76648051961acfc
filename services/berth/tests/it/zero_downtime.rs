//! Issue 6's deploy check: a steady load through the router while the app is redeployed five times and
//! scaled 1 → 4 → 1 (with one more redeploy at 4 instances by the rolling strategy) fails no request.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::end_to_end::{last_line, prepare_stack};
use crate::support::*;

const APP: &str = "steady";
const CLIENTS: usize = 4;
const REDEPLOYS: usize = 5;

#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) sent: AtomicU64,
    pub(crate) failed: AtomicU64,
    /// The first few failures, for the assertion message.
    pub(crate) failures: Mutex<Vec<String>>,
    /// Bodies seen, in order of first sighting.
    pub(crate) versions: Mutex<Vec<String>>,
}

impl Tally {
    fn fail(&self, what: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut failures = self.failures.lock().unwrap();
        if failures.len() < 10 {
            failures.push(what);
        }
    }
}

/// One client: GET / through the router as fast as answers come, until `stop`.
pub(crate) fn client(
    server_router: std::net::SocketAddr,
    host: String,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
        .unwrap();
    while !stop.load(Ordering::Relaxed) {
        tally.sent.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        match http
            .get(format!("http://{server_router}/"))
            .header("Host", &host)
            .send()
        {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.text().unwrap_or_default();
                if status != 200 {
                    tally.fail(format!("{status} after {:?}: {body:.200}", started.elapsed()));
                } else {
                    let mut versions = tally.versions.lock().unwrap();
                    if !versions.contains(&body) {
                        versions.push(body);
                    }
                }
            }
            Err(e) => tally.fail(format!("{e:?} after {:?}", started.elapsed())),
        }
    }
}

fn set_greeting(repo: &Path, version: usize) {
    let app = repo.join("app.py");
    let source = std::fs::read_to_string(&app).unwrap();
    let line = source
        .lines()
        .find(|l| l.starts_with("GREETING = "))
        .expect("the fixture has a GREETING line")
        .to_owned();
    let updated = source.replace(&line, &format!("GREETING = \"hello from berth v{version}\""));
    std::fs::write(&app, updated).unwrap();
}

fn running_web(server: &Server, token: &str) -> usize {
    let ps = server.berth_ok(token, &["ps", "-a", APP]);
    ps.lines()
        .filter(|l| l.starts_with("web.") && l.contains(" running "))
        .count()
}

fn wait_running(server: &Server, token: &str, want: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while running_web(server, token) != want
        || server.berth_ok(token, &["ps", "-a", APP]).lines().count() != want + 1
    {
        assert!(
            Instant::now() < deadline,
            "web did not settle at {want} running instances:\n{}\n{}",
            server.berth_ok(token, &["ps", "-a", APP]),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn redeploys_and_scaling_under_load_fail_no_request() {
    if !require(
        "redeploys_and_scaling_under_load_fail_no_request",
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
    let token = last_line(&server.berth_ok(&admin, &["accounts", "create", "steady-owner"]));
    server.berth_ok(&token, &["apps", "create", APP]);

    let repo = work.path().join(APP);
    app_repo("python-hello", &repo);
    let url = format!("http://user:{token}@{}/git/{APP}.git", server.api);
    let push = |what: &str| {
        let out = git(&repo, &["push", &url, "main"]);
        assert!(
            out.status.success(),
            "{what}: git push failed:\n{}\n{}",
            text(&out.stderr),
            server.log()
        );
    };
    push("v1");
    server.wait_for_app(APP, "/", Duration::from_secs(120), "v1 serving", |s, _| s == 200);

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let host = format!("{APP}.{}", server.domain);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (stop, tally, host, router) = (stop.clone(), tally.clone(), host.clone(), server.router);
            std::thread::spawn(move || client(router, host, stop, tally))
        })
        .collect();
    let started = Instant::now();

    for version in 2..2 + REDEPLOYS {
        set_greeting(&repo, version);
        commit_all(&repo, &format!("v{version}"));
        push(&format!("redeploy {version}"));
    }
    // Each push returns once its release serves; the last one's body is what the clients see now.
    let last = format!("hello from berth v{}", 1 + REDEPLOYS);
    server.wait_for_app(
        APP,
        "/",
        Duration::from_secs(60),
        "the last release serving",
        |s, b| s == 200 && b.contains(&last),
    );
    server.berth_ok(&token, &["scale", "web=4", "-a", APP]);
    wait_running(&server, &token, 4);
    // One more redeploy at web=4 with the rolling strategy: the four are replaced one at a time.
    server.berth_ok(&token, &["apps", "update", APP, "--deploy-strategy", "rolling"]);
    let rolled = 2 + REDEPLOYS;
    set_greeting(&repo, rolled);
    commit_all(&repo, &format!("v{rolled}"));
    push("rolling redeploy");
    let last = format!("hello from berth v{rolled}");
    server.wait_for_app(
        APP,
        "/",
        Duration::from_secs(60),
        "the rolled release serving",
        |s, b| s == 200 && b.contains(&last),
    );
    wait_running(&server, &token, 4);
    server.berth_ok(&token, &["scale", "web=1", "-a", APP]);
    wait_running(&server, &token, 1);
    // A little more load after the last change, so a late failure (a drained instance stopping early) shows.
    std::thread::sleep(Duration::from_secs(3));

    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let sent = tally.sent.load(Ordering::Relaxed);
    let failed = tally.failed.load(Ordering::Relaxed);
    let versions = tally.versions.lock().unwrap().clone();
    println!(
        "zero downtime: {sent} requests over {:?} from {CLIENTS} clients during {REDEPLOYS} redeploys, \
         web 1 -> 4, a rolling redeploy at 4 and web 4 -> 1; {failed} failed or not 200; bodies seen in order: {}",
        started.elapsed(),
        versions.len()
    );
    assert_eq!(
        failed,
        0,
        "requests failed during deploys: {:?}\n{}",
        tally.failures.lock().unwrap(),
        server.log()
    );
    // The load really ran through every deploy: each release's body was served to the clients.
    for version in 1..=2 + REDEPLOYS {
        let want = format!("hello from berth v{version}");
        assert!(
            versions.iter().any(|b| b.contains(&want)),
            "no client saw {want}; bodies: {versions:?}"
        );
    }
    assert!(sent >= 100, "too little load to mean anything: {sent} requests");

    server.stop();
    let left = leftovers(&names, &data_dir);
    assert!(left.is_empty(), "left behind: {left:?}");
}
