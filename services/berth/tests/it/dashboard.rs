//! Issue 8's browser test: real headless Chromium, driven over WebDriver (chromedriver, started here on a
//! loopback port and killed by its PID), against a real `berth server`. Sign in with a token, create an app
//! and push to it with the git commands the page shows, see it running, scale web to 3 with the page's
//! control (three running, through the API), set a config var, roll back, restart, watch a log line arrive,
//! sign out; a second account, signed in with a password set by `berth accounts password`, sees none of it;
//! changes without the CSRF token are refused; Bob sees no admin navigation and is refused the admin pages;
//! the server's admin cordons and uncordons the node, sets Alice's quota, finds her app among all apps and
//! reads those changes in the audit log. Screenshots of the main and admin pages go to
//! `target/test-artifacts/dashboard/` (`admin-*.png` for the admin views).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::end_to_end::{last_line, prepare_stack, push_test_dirs};
use crate::one_off::run_with_stdin;
use crate::support::*;

const APP: &str = "dash";
const TIMEOUT: Duration = Duration::from_secs(120);

/// chromedriver on a free loopback port; killed by its PID when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start(log: &Path) -> Self {
        let port = free_addr().port();
        let log = std::fs::File::create(log).expect("creating chromedriver.log");
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("starting chromedriver");
        let driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while http().get(format!("{}/status", driver.url)).send().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not answer in 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        driver
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // SAFETY: kill with the PID of our own child, not yet reaped, and a valid signal.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// A headless Chromium session with blocking calls, so the test reads top to bottom like the other e2e tests.
struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    base: String,
    shots: PathBuf,
}

impl Browser {
    fn open(driver: &Driver, base: String, profile: &Path) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                // --no-sandbox: Chromium's sandbox refuses to run as root.
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,1400", format!("--user-data-dir={}", profile.display())],
            }
        });
        let Value::Object(caps) = caps else { unreachable!() };
        let client = rt
            .block_on(
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(caps)
                    .connect(&driver.url),
            )
            .expect("a WebDriver session");
        let shots = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("target dir")
            .join("test-artifacts")
            .join("dashboard");
        std::fs::create_dir_all(&shots).unwrap();
        Self {
            rt,
            client: Some(client),
            base,
            shots,
        }
    }

    fn c(&self) -> &Client {
        self.client.as_ref().expect("browser open")
    }

    fn goto(&self, path: &str) {
        self.rt
            .block_on(self.c().goto(&format!("{}{path}", self.base)))
            .unwrap_or_else(|e| panic!("opening {path}: {e}"));
    }

    fn url(&self) -> String {
        self.rt.block_on(self.c().current_url()).unwrap().to_string()
    }

    /// Runs a script in the page (a returned promise is awaited) and answers its value.
    fn script(&self, js: &str) -> Value {
        self.rt
            .block_on(self.c().execute(js, vec![]))
            .unwrap_or_else(|e| panic!("script {js}: {e}"))
    }

    /// The visible text of the first element matching `css`, or "" when there is none (yet).
    fn text(&self, css: &str) -> String {
        self.rt.block_on(async {
            match self.c().find(Locator::Css(css)).await {
                Ok(el) => el.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            }
        })
    }

    /// The first element matching `css`, waiting for it to appear.
    async fn element(&self, css: &str) -> fantoccini::elements::Element {
        let found = self
            .c()
            .wait()
            .at_most(TIMEOUT)
            .for_element(Locator::Css(css))
            .await;
        found.unwrap_or_else(|e| panic!("no {css}: {e}"))
    }

    fn click(&self, css: &str) {
        self.rt.block_on(async {
            let el = self.element(css).await;
            el.click().await.unwrap_or_else(|e| panic!("clicking {css}: {e}"));
        })
    }

    fn fill(&self, css: &str, text: &str) {
        self.rt.block_on(async {
            let el = self.element(css).await;
            el.clear().await.unwrap();
            el.send_keys(text)
                .await
                .unwrap_or_else(|e| panic!("typing into {css}: {e}"));
        })
    }

    fn resize(&self, width: u32, height: u32) {
        self.rt
            .block_on(self.c().set_window_size(width, height))
            .expect("resizing the window");
    }

    fn accept_dialog(&self) {
        self.answer_dialog(true);
    }

    /// Accepts or dismisses the confirmation dialog, waiting for it to appear.
    fn answer_dialog(&self, accept: bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let answer = || {
            if accept {
                self.rt.block_on(self.c().accept_alert())
            } else {
                self.rt.block_on(self.c().dismiss_alert())
            }
        };
        while answer().is_err() {
            assert!(Instant::now() < deadline, "no confirmation dialog appeared");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Polls until the text of `css` satisfies `check`; panics with the last text and `server`'s log.
    fn wait_text(&self, css: &str, what: &str, server: &Server, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let text = self.text(css);
            if check(&text) {
                return text;
            }
            if Instant::now() > deadline {
                self.screenshot("failure");
                panic!(
                    "timed out waiting for {what}; {css} shows {text:?}\n{}",
                    server.log()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn screenshot(&self, name: &str) {
        let png = self.rt.block_on(self.c().screenshot()).expect("a screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), png).expect("saving a screenshot");
    }

    /// Every control on the page has a label (its own, an aria-label, or its text).
    fn assert_labelled(&self) {
        let unlabelled = self.script(
            "return [...document.querySelectorAll('input:not([type=hidden]), textarea, select, button')] \
             .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim()) \
             .map(e => e.outerHTML)",
        );
        assert_eq!(unlabelled, json!([]), "controls without a label");
    }

    /// The page does not scroll sideways (wide tables scroll inside their own box).
    fn assert_fits_width(&self) {
        let overflow = self.script("return document.documentElement.scrollWidth - window.innerWidth");
        assert!(
            overflow.as_i64().is_some_and(|o| o <= 0),
            "the page is wider than the window: {overflow}"
        );
    }

    fn sign_in(&self, token: &str) {
        self.goto("/dashboard");
        assert!(self.url().ends_with("/dashboard/sign-in"), "{}", self.url());
        self.fill("#token", token);
        self.click("#sign-in button[type=submit]");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.rt.block_on(client.close());
        }
    }
}

/// GET `/v1{path}` with a bearer token, as JSON.
fn api_get(server: &Server, token: &str, path: &str) -> Value {
    http()
        .get(format!("{}/v1{path}", server.api_url()))
        .bearer_auth(token)
        .send()
        .and_then(|r| r.json())
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

fn running(server: &Server, token: &str) -> usize {
    let instances = api_get(server, token, &format!("/apps/{APP}/instances"));
    instances
        .as_array()
        .expect("a list")
        .iter()
        .filter(|i| i["type"] == "web" && i["state"] == "running")
        .count()
}

fn wait_api(server: &Server, what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `berth accounts password` with the password on standard input.
fn set_password(server: &Server, token: &str, password: &str) {
    let input = format!("{password}\n");
    let out = run_with_stdin(server, token, &["accounts", "password"], input.as_bytes());
    assert!(
        out.status.success(),
        "berth accounts password: {}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("Password set"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn dashboard_in_a_real_browser() {
    let test = "dashboard_in_a_real_browser";
    if !require(test, true, &["chromium", "chromedriver"]) {
        return;
    }
    let Some((work, data_dir)) = push_test_dirs(test) else {
        return;
    };
    prepare_stack(&data_dir);
    // Web scales to 3, and rollbacks and restarts place new instances beside the old ones while those drain;
    // each instance reserves a CPU, so the node offers 16 whatever this machine has.
    let server = Server::start_with(&data_dir, &HostNames::unique(), &["--node-cpus", "16"]);
    let admin = server.admin_token();
    let alice = last_line(&server.berth_ok(&admin, &["accounts", "create", "alice"]));
    let bob = last_line(&server.berth_ok(&admin, &["accounts", "create", "bob"]));

    let driver = Driver::start(&work.path().join("chromedriver.log"));
    let browser = Browser::open(&driver, server.api_url(), &work.path().join("chromium"));

    // Sign in; the apps list is empty.
    browser.goto("/dashboard");
    browser.screenshot("sign-in");
    browser.sign_in(&alice);
    browser.wait_text("#apps tbody", "the empty apps list", &server, |t| {
        t.contains("No apps yet")
    });

    // Create an app; the page shows the exact git commands, and they work.
    browser.goto("/dashboard#/new");
    browser.fill("#new-app-name", APP);
    browser.click("#create-app");
    let commands = browser.wait_text("#git-commands", "git commands", &server, |t| !t.is_empty());
    let remote = format!("{}/git/{APP}.git", server.api_url());
    assert_eq!(
        commands,
        format!("git remote add berth {remote}\ngit push berth main")
    );
    browser.screenshot("new-app");
    let repo = work.path().join("app");
    app_repo("python-hello", &repo);
    for line in commands.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[0], "git");
        // git asks for the token as the password; a credential helper answers for the person.
        let helper = format!("credential.helper=!f() {{ echo username=alice; echo password={alice}; }}; f");
        let out = git(&repo, &[&["-c", &helper], &words[1..]].concat());
        assert!(out.status.success(), "{line}: {}", text(&out.stderr));
    }

    // The app page shows it running.
    browser.goto(&format!("/dashboard#/apps/{APP}"));
    browser.wait_text("#instances tbody", "web.1 running", &server, |t| {
        t.contains("web.1") && t.contains("running")
    });
    browser.wait_text("#count-web", "the running count", &server, |t| t == "1/1 running");
    browser.screenshot("app");

    // Scale web to 3 with the page's control; the API sees three running.
    browser.fill("#scale-web", "3");
    browser.click("#scale-web-apply");
    wait_api(&server, "3 running web instances", || {
        running(&server, &alice) == 3
    });
    browser.wait_text("#count-web", "3 running on the page", &server, |t| {
        t == "3/3 running"
    });
    browser.screenshot("scaled");

    // Set a config var: hidden until revealed, and a new release.
    browser.fill("#config-key", "GREETING");
    browser.fill("#config-value", "hello from the dashboard");
    browser.click("#config-set");
    browser.wait_text("#flash", "the config change", &server, |t| {
        t.contains("Setting GREETING: done")
    });
    let row = "#config tr[data-config=GREETING]";
    browser.wait_text(row, "the config row", &server, |t| t.contains("GREETING"));
    assert!(
        !browser.text(row).contains("hello from the dashboard"),
        "{}",
        browser.text(row)
    );
    browser.click(&format!("{row} button[aria-label='Reveal GREETING']"));
    assert!(browser.text(row).contains("hello from the dashboard"));
    let config = api_get(&server, &alice, &format!("/apps/{APP}/config"));
    assert_eq!(config["GREETING"], "hello from the dashboard");
    assert_eq!(api_get(&server, &alice, &format!("/apps/{APP}"))["release"], 2);
    browser.screenshot("config");

    // Roll back to v1, confirming the dialog: v3, made from v1, without the var.
    browser.click("#rollback-1");
    browser.accept_dialog();
    browser.wait_text("#flash", "the rollback", &server, |t| {
        t.contains("Rolling back to v1: done")
    });
    let app = api_get(&server, &alice, &format!("/apps/{APP}"));
    assert_eq!(app["release"], 3, "{app}");
    let releases = api_get(&server, &alice, &format!("/apps/{APP}/releases"));
    assert_eq!(releases[0]["kind"], "rollback", "{releases}");
    let config = api_get(&server, &alice, &format!("/apps/{APP}/config"));
    assert!(config.get("GREETING").is_none(), "{config}");
    browser.wait_text("#releases", "v3 in the releases", &server, |t| t.contains("v3"));

    // Restart, confirmed: fresh instances replace the three.
    let before: Vec<Value> = api_get(&server, &alice, &format!("/apps/{APP}/instances"))
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["state"] == "running")
        .map(|i| i["id"].clone())
        .collect();
    browser.click("#app-restart");
    browser.accept_dialog();
    browser.wait_text("#flash", "the restart", &server, |t| {
        t.contains("Restart dash: done")
    });
    wait_api(&server, "3 fresh running instances", || {
        let instances = api_get(&server, &alice, &format!("/apps/{APP}/instances"));
        let fresh = instances
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["state"] == "running" && !before.contains(&i["id"]));
        fresh.count() == 3
    });

    // A request through the router shows up in the followed log.
    let probe = "/dashboard-log-probe-4f2a";
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let _ = server.get_app(APP, probe);
        if browser.text("#log").contains(probe) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the log never showed {probe}: {}",
            browser.text("#log")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    browser.screenshot("log");

    // Changes without the CSRF token are refused, from the page's own origin with its cookie.
    let forged = browser.script(
        "return fetch('/v1/apps', {method: 'POST', headers: {'Content-Type': 'application/json'}, \
         body: JSON.stringify({name: 'forged'})}).then(r => r.status)",
    );
    assert_eq!(forged, 403);
    let forged = browser.script(
        "return fetch('/dashboard/sign-out', {method: 'POST', body: new URLSearchParams({csrf: 'x'})}) \
         .then(r => r.status)",
    );
    assert_eq!(forged, 403);
    let apps = api_get(&server, &alice, "/apps");
    assert_eq!(apps.as_array().map(Vec::len), Some(1), "{apps}");

    // The apps list shows the app with its three web instances.
    browser.goto("/dashboard#/");
    browser.wait_text(
        &format!("#apps tr[data-app={APP}]"),
        "the app in the list",
        &server,
        |t| t.contains("web: 3/3") && t.contains("v3"),
    );
    browser.screenshot("apps");

    // Every control has a label, and on a phone-sized screen the page does not scroll sideways (wide tables
    // scroll inside their own box).
    browser.goto(&format!("/dashboard#/apps/{APP}"));
    browser.wait_text("#count-web", "the app page", &server, |t| t == "3/3 running");
    browser.assert_labelled();
    browser.resize(390, 844);
    browser.wait_text("#instances tbody", "the instances on a phone", &server, |t| {
        t.contains("web.3")
    });
    browser.assert_fits_width();
    browser.screenshot("phone-app");
    browser.resize(1280, 1400);

    // Sign out: the page is gone until signing in again.
    browser.click("#sign-out");
    browser.wait_text("main", "the signed-out page", &server, |t| {
        t.contains("You are signed out.")
    });
    browser.goto("/dashboard");
    assert!(browser.url().ends_with("/dashboard/sign-in"), "{}", browser.url());

    // Bob sets a password with the CLI (from standard input) and signs in with it; he sees none of Alice's
    // apps, not even by URL.
    set_password(&server, &bob, "bob's long passphrase");
    browser.goto("/dashboard");
    browser.fill("#account", "bob");
    browser.fill("#password", "bob's long passphrase");
    browser.click("#sign-in button[type=submit]");
    browser.wait_text("#apps tbody", "bob's empty list", &server, |t| {
        t.contains("No apps yet")
    });
    browser.goto(&format!("/dashboard#/apps/{APP}"));
    browser.wait_text("#view-error", "not found for bob", &server, |t| {
        t.contains("not found")
    });
    browser.screenshot("other-account");

    // Bob is no admin: no admin links, and an admin page shows the API's refusal.
    let nav = wait_admin_nav(&browser);
    assert_eq!(nav, json!([true, 0]), "bob sees admin navigation");
    browser.goto("/dashboard#/admin/nodes");
    browser.wait_text("#view-error", "the refusal for bob", &server, |t| {
        t.contains("only an admin account may")
    });
    browser.screenshot("admin-refused");
    browser.click("#sign-out");
    browser.wait_text("main", "bob signed out", &server, |t| {
        t.contains("You are signed out.")
    });

    admin_views(&browser, &server, &admin, &alice);
    drop(browser);
    drop(driver);
}

/// Waits until the page has asked whether the account is an admin; answers `[hidden, number of links]` of
/// the admin navigation.
fn wait_admin_nav(browser: &Browser) -> Value {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let nav = browser.script(
            "const nav = document.getElementById('admin-nav'); \
             return nav.dataset.checked ? [nav.hidden, nav.querySelectorAll('a').length] : null",
        );
        if !nav.is_null() {
            return nav;
        }
        assert!(Instant::now() < deadline, "the page never checked for admin");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The admin views, as the server's admin: the node with its bars, cordoned and uncordoned; Alice's usage
/// and a quota set for her; Bob suspended and back; her app among all apps, stopped; the audit entries of
/// these changes, newest first.
fn admin_views(browser: &Browser, server: &Server, admin: &str, alice: &str) {
    browser.sign_in(admin);
    browser.wait_text("#apps tbody", "the admin's apps list", server, |t| !t.is_empty());
    assert_eq!(wait_admin_nav(browser), json!([false, 4]), "the admin navigation");
    let me = api_get(server, admin, "/account");
    let admin_name = me["name"].as_str().expect("a name").to_owned();

    // Nodes: the server's node with memory and CPU bars and their figures; cordon, then uncordon.
    let nodes = api_get(server, admin, "/admin/nodes");
    let node = nodes[0]["name"].as_str().expect("a node").to_owned();
    browser.click("#admin-nav-nodes");
    let row = format!("#nodes tr[data-node='{node}']");
    let shown = browser.wait_text(&row, "the node row", server, |t| {
        t.contains("ready") && t.contains("Memory") && t.contains("CPU")
    });
    assert!(shown.contains(" MiB of ") && shown.contains('%'), "{shown}");
    let meters = browser.script(&format!(
        "return [...document.querySelectorAll(\"{row} meter\")].map(m => [m.labels[0].textContent, m.value > 0])"
    ));
    // Alice's three web instances are placed there, so both bars show something allocated.
    assert_eq!(meters, json!([["Memory", true], ["CPU", true]]), "{shown}");
    browser.screenshot("admin-nodes");
    let node_state = || api_get(server, admin, "/admin/nodes")[0]["state"].clone();
    browser.click(&format!("[id='cordon-{node}']"));
    wait_api(server, "the node cordoned", || node_state() == "cordoned");
    browser.wait_text(&row, "cordoned on the page", server, |t| t.contains("cordoned"));
    browser.click(&format!("[id='uncordon-{node}']"));
    wait_api(server, "the node ready again", || node_state() == "ready");
    browser.wait_text(&row, "ready on the page", server, |t| t.contains("ready"));
    // Drain asks first; dismissing the question changes nothing.
    browser.click(&format!("[id='drain-{node}']"));
    browser.answer_dialog(false);
    assert_eq!(node_state(), "ready");

    // Accounts: Alice's usage against her limits; set her app quota with the form.
    browser.click("#admin-nav-accounts");
    let row = "#accounts tr[data-account=alice]";
    browser.wait_text(row, "alice's usage", server, |t| {
        t.contains("Apps: 1 of") && t.contains("Instances: 3 of")
    });
    browser.click("#quotas-alice");
    browser.fill("#quota-apps", "5");
    browser.assert_labelled();
    browser.screenshot("admin-accounts");
    browser.click("#quotas-save");
    browser.wait_text("#flash", "the quota change", server, |t| {
        t.contains("Setting the quotas of alice: done")
    });
    let accounts = api_get(server, admin, "/admin/accounts");
    let alice_row = accounts
        .as_array()
        .expect("a list")
        .iter()
        .find(|a| a["name"] == "alice")
        .expect("alice listed")
        .clone();
    assert_eq!(alice_row["overrides"]["apps"], 5, "{alice_row}");
    assert_eq!(alice_row["limits"]["apps"], 5, "{alice_row}");
    assert!(alice_row["overrides"]["instances"].is_null(), "{alice_row}");
    browser.wait_text(row, "the new limit", server, |t| t.contains("Apps: 1 of 5 (set)"));
    // Suspend Bob and let him back in, each after a confirmation.
    let bob_suspended = || {
        let accounts = api_get(server, admin, "/admin/accounts");
        let bob = accounts
            .as_array()
            .and_then(|a| a.iter().find(|a| a["name"] == "bob").cloned());
        bob.expect("bob listed")["suspended"].clone()
    };
    browser.click("#suspend-bob");
    browser.accept_dialog();
    wait_api(server, "bob suspended", || bob_suspended() == true);
    browser.wait_text(
        "#accounts tr[data-account=bob]",
        "bob suspended on the page",
        server,
        |t| t.contains("suspended"),
    );
    browser.click("#unsuspend-bob");
    browser.accept_dialog();
    wait_api(server, "bob active again", || bob_suspended() == false);

    // All apps: search finds Alice's app; a search that matches nothing says so.
    browser.click("#admin-nav-apps");
    browser.fill("#app-search", "nothing-like-this");
    browser.click("#app-search-go");
    browser.wait_text("#all-apps tbody", "no match", server, |t| {
        t.contains("No app matches")
    });
    browser.fill("#app-search", "da");
    browser.click("#app-search-go");
    let listed = browser.wait_text(&format!("#all-apps tr[data-app={APP}]"), "the app", server, |t| {
        t.contains("alice") && t.contains("running")
    });
    assert!(listed.contains("Stop"), "{listed}");
    assert!(browser.url().ends_with("#/admin/apps?q=da"), "{}", browser.url());
    browser.screenshot("admin-apps");
    // Stop Alice's app, after a confirmation.
    browser.click(&format!("[id='stop-{APP}']"));
    browser.accept_dialog();
    browser.wait_text("#flash", "the stop", server, |t| {
        t.contains("Stopping dash: done")
    });
    assert_eq!(api_get(server, alice, &format!("/apps/{APP}"))["stopped"], true);
    browser.wait_text(&format!("#all-apps tr[data-app={APP}]"), "stopped", server, |t| {
        t.contains("stopped")
    });

    // The audit log, filtered to the admin: these changes, newest first.
    browser.click("#admin-nav-audit");
    browser.fill("#audit-account", &admin_name);
    browser.click("#audit-filter");
    browser.wait_text("#audit tbody", "the audit entries", server, |t| {
        t.contains("PUT /v1/admin/accounts/{name}/quotas")
    });
    let rows = browser.script(
        "return [...document.querySelectorAll('#audit tbody tr')] \
         .map(r => [r.cells[1].textContent, r.cells[3].textContent, r.cells[4].textContent])",
    );
    let rows = rows.as_array().expect("rows");
    assert!(
        rows.iter().all(|r| r[0] == admin_name.as_str()),
        "filtered to {admin_name}: {rows:?}"
    );
    let newest: Vec<Value> = rows.iter().take(6).cloned().collect();
    let entry = |action: &str, target: String| json!([admin_name, action, target]);
    let expected = vec![
        entry("POST /v1/admin/apps/{name}/stop", format!("app {APP}")),
        entry("POST /v1/admin/accounts/{name}/unsuspend", "account bob".into()),
        entry("POST /v1/admin/accounts/{name}/suspend", "account bob".into()),
        entry("PUT /v1/admin/accounts/{name}/quotas", "account alice".into()),
        entry("POST /v1/admin/nodes/{name}/uncordon", format!("node {node}")),
        entry("POST /v1/admin/nodes/{name}/cordon", format!("node {node}")),
    ];
    assert_eq!(newest, expected, "the newest audit entries");
    // The API agrees.
    let entries = api_get(
        server,
        admin,
        &format!("/admin/audit?account={admin_name}&limit=6"),
    );
    let from_api: Vec<Value> = entries
        .as_array()
        .expect("a list")
        .iter()
        .map(|e| json!([e["account"], e["action"], e["target"]]))
        .collect();
    assert_eq!(from_api, expected, "the newest audit entries from the API");
    browser.screenshot("admin-audit");

    // On a phone-sized screen the nodes page does not scroll sideways.
    browser.goto("/dashboard#/admin/nodes");
    browser.resize(390, 844);
    browser.wait_text("#nodes tbody", "the nodes on a phone", server, |t| {
        t.contains(&node)
    });
    browser.assert_fits_width();
    browser.screenshot("admin-phone-nodes");
    browser.resize(1280, 1400);
}
