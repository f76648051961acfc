//! Starting and stopping a real `berth server` for a test, with names of its own (bridge, subnet, cgroup
//! parent) so that it never touches another server on the machine, and checking what it leaves behind.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Returns false (after saying why) when the test cannot run here; panics instead when `CI` is set, so CI
/// can never pass by skipping.
pub fn require(test: &str, root: bool, tools: &[&str]) -> bool {
    let mut missing = Vec::new();
    // SAFETY: geteuid has no preconditions and cannot fail.
    if root && unsafe { libc::geteuid() } != 0 {
        missing.push("root".to_owned());
    }
    for tool in tools {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            missing.push(format!("the `{tool}` command"));
        }
    }
    if missing.is_empty() {
        return true;
    }
    let why = format!("skipping {test}: needs {}", missing.join(", "));
    if std::env::var_os("CI").is_some() {
        panic!("{why} (CI is set, so this is a failure)");
    }
    eprintln!("{why}");
    false
}

pub fn berth_bin() -> &'static str {
    env!("CARGO_BIN_EXE_berth")
}

pub fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().expect("local addr")
}

fn random_u16() -> u16 {
    let mut bytes = [0u8; 2];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .expect("reading /dev/urandom");
    u16::from_le_bytes(bytes)
}

/// A /24 in 10.204.0.0/16 that no route on this machine uses yet.
fn free_subnet() -> String {
    let routes = String::from_utf8(
        Command::new("ip")
            .args(["-4", "route"])
            .output()
            .expect("ip route")
            .stdout,
    )
    .expect("utf-8");
    loop {
        let third = 100 + random_u16() % 150;
        let prefix = format!("10.204.{third}.");
        if !routes.contains(&prefix) {
            return format!("{prefix}0/24");
        }
    }
}

/// The names one test server uses for things it creates on the host.
#[derive(Debug, Clone)]
pub struct HostNames {
    pub bridge: String,
    pub subnet: String,
    pub cgroup_parent: String,
}

impl HostNames {
    pub fn unique() -> Self {
        let tag = format!("{:04x}", random_u16());
        Self {
            bridge: format!("bte2e{tag}"),
            subnet: free_subnet(),
            cgroup_parent: format!("berth-e2e-{tag}"),
        }
    }
}

/// A running `berth server`. Dropping it stops it (SIGTERM, then SIGKILL after a grace period).
pub struct Server {
    pub data_dir: PathBuf,
    pub api: SocketAddr,
    pub router: SocketAddr,
    /// The router's HTTPS listener.
    pub router_tls: SocketAddr,
    /// The router's metrics listener.
    pub router_admin: SocketAddr,
    pub domain: String,
    child: Option<Child>,
}

impl Server {
    pub fn start(data_dir: &Path, names: &HostNames) -> Self {
        Self::start_with(data_dir, names, &[])
    }

    /// [`Server::start`] with more `berth server` flags. The loopback ports are picked free but may be taken
    /// by another test before the server binds them: then it starts again on other ports (at most 3 times).
    pub fn start_with(data_dir: &Path, names: &HostNames, extra_args: &[&str]) -> Self {
        for attempt in 1.. {
            let mut server = Self::spawn(data_dir, names, extra_args);
            match server.wait_healthy(Duration::from_secs(60)) {
                Ok(()) => return server,
                Err(log) if attempt < 3 && log.contains("Address already in use") => {
                    eprintln!("berth server lost a port to another test; starting it again on other ports");
                }
                Err(log) => panic!("berth server exited before it was ready:\n{log}"),
            }
        }
        unreachable!("the loop returns or panics")
    }

    fn spawn(data_dir: &Path, names: &HostNames, extra_args: &[&str]) -> Self {
        let api = free_addr();
        let router = free_addr();
        let router_tls = free_addr();
        let router_admin = free_addr();
        let domain = "berth.test".to_owned();
        let log = std::fs::File::create(data_dir.join("server.log")).expect("creating server.log");
        let child = Command::new(berth_bin())
            .arg("server")
            .args(["--data-dir", data_dir.to_str().expect("utf-8 path")])
            .args([
                "--api-addr",
                &api.to_string(),
                "--router-addr",
                &router.to_string(),
                "--router-tls-addr",
                &router_tls.to_string(),
                "--router-admin-addr",
                &router_admin.to_string(),
            ])
            .args(["--domain", &domain])
            .args(["--bridge", &names.bridge, "--subnet", &names.subnet])
            .args(["--cgroup-parent", &names.cgroup_parent])
            // Tests keep their classic buildpacks in local git repositories (file:// URLs).
            .arg("--allow-file-buildpacks")
            .args(extra_args)
            .env("BERTH_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("spawning berth server");
        Self {
            data_dir: data_dir.to_owned(),
            api,
            router,
            router_tls,
            router_admin,
            domain,
            child: Some(child),
        }
    }

    /// Waits for `/healthz`; `Err` with the server's log (and its exit status) if it exited first.
    fn wait_healthy(&mut self, timeout: Duration) -> Result<(), String> {
        let client = http();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait().expect("try_wait") {
                    self.child = None;
                    return Err(format!("exit {status}\n{}", self.log()));
                }
            }
            let ok = client
                .get(format!("http://{}/healthz", self.api))
                .send()
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "berth server not healthy in time:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("server.log")).unwrap_or_default()
    }

    pub fn api_url(&self) -> String {
        format!("http://{}", self.api)
    }

    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("admin.token"))
            .expect("admin.token")
            .trim()
            .to_owned()
    }

    /// Runs a client verb against this server with `token`.
    pub fn berth(&self, token: &str, args: &[&str]) -> Output {
        Command::new(berth_bin())
            .args(args)
            .env("BERTH_API", self.api_url())
            .env("BERTH_TOKEN", token)
            .output()
            .expect("running berth")
    }

    /// Like `berth`, but the command must succeed; returns its stdout.
    pub fn berth_ok(&self, token: &str, args: &[&str]) -> String {
        let out = self.berth(token, args);
        assert!(
            out.status.success(),
            "berth {args:?} failed: {}\n{}",
            text(&out.stderr),
            text(&out.stdout)
        );
        text(&out.stdout)
    }

    /// GET through the router with `Host: APP.DOMAIN`.
    pub fn get_app(&self, app: &str, path: &str) -> Option<(u16, String)> {
        let response = http()
            .get(format!("http://{}{path}", self.router))
            .header("Host", format!("{app}.{}", self.domain))
            .send()
            .ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().unwrap_or_default()))
    }

    /// GET over HTTPS through the router's TLS listener as a client that trusts only the platform's own
    /// self-signed certificate (made at first start) and resolves `APP.DOMAIN` to the listener.
    pub fn get_app_tls(&self, app: &str, path: &str) -> Result<(u16, String), String> {
        let cert_path = self.data_dir.join("tls").join(format!("{}.crt", self.domain));
        let pem = std::fs::read(&cert_path).map_err(|e| format!("reading {}: {e}", cert_path.display()))?;
        let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| format!("{e:?}"))?;
        let host = format!("{app}.{}", self.domain);
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .no_proxy()
            .tls_built_in_root_certs(false)
            .add_root_certificate(cert)
            .resolve(&host, self.router_tls)
            .build()
            .map_err(|e| format!("{e:?}"))?;
        let response = client
            .get(format!("https://{host}:{}{path}", self.router_tls.port()))
            .send()
            .map_err(|e| format!("{e:?}"))?;
        let status = response.status().as_u16();
        Ok((status, response.text().unwrap_or_default()))
    }

    /// The router's Prometheus metrics.
    pub fn router_metrics(&self) -> String {
        http()
            .get(format!("http://{}/metrics", self.router_admin))
            .send()
            .and_then(|r| r.text())
            .unwrap_or_else(|e| panic!("reading the router's metrics: {e}"))
    }

    /// Polls the router until `check` accepts the answer for `app`, or panics after `timeout`.
    pub fn wait_for_app(
        &self,
        app: &str,
        path: &str,
        timeout: Duration,
        what: &str,
        check: impl Fn(u16, &str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        let mut last = None;
        loop {
            if let Some((status, body)) = self.get_app(app, path) {
                if check(status, &body) {
                    return body;
                }
                last = Some((status, body));
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last answer {last:?}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGTERM, and waits for the server to finish cleaning up.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("server already stopped");
        // SAFETY: kill with a PID we own (our child, not yet reaped) and a valid signal.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "berth server did not stop within 60 s of SIGTERM:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.is_some() {
            let status = self.stop();
            eprintln!("berth server stopped by the test's cleanup ({status})");
        }
    }
}

pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
        .expect("http client")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `git` in `dir`, returning its output (not checked).
pub fn git(dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Berth Test")
        .env("GIT_AUTHOR_EMAIL", "test@berth.invalid")
        .env("GIT_COMMITTER_NAME", "Berth Test")
        .env("GIT_COMMITTER_EMAIL", "test@berth.invalid")
        .output()
        .expect("running git")
}

pub fn git_ok(dir: &Path, args: &[&str]) -> String {
    let out = git(dir, args);
    assert!(out.status.success(), "git {args:?} failed: {}", text(&out.stderr));
    text(&out.stdout)
}

/// Copies a fixture app into `dest` and makes it a git repository with one commit on `main`.
pub fn app_repo(fixture: &str, dest: &Path) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/fixtures")
        .join(fixture);
    app_repo_from(&source, dest);
}

/// A git repo at `dest` holding the files at the top of `source` (a flat sample app), committed on `main`.
pub fn app_repo_from(source: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).expect("creating the app dir");
    for entry in std::fs::read_dir(source).expect("reading the fixture") {
        let entry = entry.expect("fixture entry");
        std::fs::copy(entry.path(), dest.join(entry.file_name())).expect("copying a fixture file");
    }
    git_ok(dest, &["init", "-q", "-b", "main"]);
    commit_all(dest, "first version");
}

pub fn commit_all(dir: &Path, message: &str) {
    git_ok(dir, &["add", "-A"]);
    git_ok(dir, &["commit", "-q", "-m", message]);
}

/// What a stopped server must not leave on the host.
pub fn leftovers(names: &HostNames, data_dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for controller in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let dir = controller.path().join(&names.cgroup_parent);
        if dir.exists() {
            found.push(format!("cgroup {}", dir.display()));
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let data = data_dir.to_string_lossy();
    for line in mounts
        .lines()
        .filter(|l| l.contains(&*data) || l.contains(&names.cgroup_parent))
    {
        found.push(format!("mount {line}"));
    }
    let netns = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns");
    for line in text(&netns.stdout)
        .lines()
        .filter(|l| l.contains(&names.cgroup_parent))
    {
        found.push(format!("netns {line}"));
    }
    let links = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip link");
    for line in text(&links.stdout).lines().filter(|l| l.contains(&names.bridge)) {
        found.push(format!("link {line}"));
    }
    // The node network's nftables tables (`berth_<bridge>`), when nft is installed.
    if let Ok(tables) = Command::new("nft").args(["list", "tables"]).output() {
        let ours = format!(" berth_{}", names.bridge);
        for line in text(&tables.stdout).lines().filter(|l| l.ends_with(&ours)) {
            found.push(line.to_string());
        }
    }
    found
}

/// The veth interfaces on the host now (to compare before and after).
pub fn veths() -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show", "type", "veth"])
        .output()
        .expect("ip link");
    text(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split(':')
                .nth(1)
                .map(|n| n.trim().split('@').next().unwrap_or("").to_owned())
        })
        .collect()
}

/// The veths that appeared since `before` and belong to the server that used `names`, after giving the
/// kernel up to 5 s to finish deleting them (`ip netns del` removes a namespace's links asynchronously).
/// Other servers run beside this one in the same test binary (and their builds' veths come and go): a veth
/// whose other end is in another server's namespace is theirs. One whose other end is on the host, or in
/// one of our namespaces, is ours.
pub fn veths_left_by(names: &HostNames, before: &std::collections::BTreeSet<String>) -> Vec<String> {
    let ours = |veth: &str| {
        let out = Command::new("ip")
            .args(["-o", "-d", "link", "show", "dev", veth])
            .output()
            .expect("ip link");
        let line = text(&out.stdout);
        // Gone meanwhile: not left behind.
        out.status.success()
            && (!line.contains(" link-netns ")
                || line.contains(&format!(" link-netns {}-", names.cgroup_parent)))
    };
    let mut left = Vec::new();
    for _ in 0..50 {
        left = veths()
            .into_iter()
            .filter(|v| !before.contains(v) && ours(v))
            .collect();
        if left.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    left
}

/// Processes whose command line mentions `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push(format!("{}: {cmdline}", entry.file_name().to_string_lossy()));
        }
    }
    found
}

/// A fresh PostgreSQL database for `berth server --database-url` (see `store::testing`), dropped with this.
pub struct TestPostgres {
    pub url: String,
    database: Option<store::testing::TestDatabase>,
    /// The runtime the database's own pool lives on.
    runtime: tokio::runtime::Runtime,
}

impl TestPostgres {
    /// `None` (said on stderr, or a failure when `CI` is set) without `BERTH_TEST_POSTGRES_URL`.
    pub fn new(test: &str) -> Option<Self> {
        let server = store::testing::TestDatabase::postgres_url_or_skip(test)?;
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        let database = runtime
            .block_on(store::testing::TestDatabase::postgres(&server))
            .expect("a test database");
        Some(Self {
            url: database.url().expect("a PostgreSQL database has a URL"),
            database: Some(database),
            runtime,
        })
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        if let Some(database) = self.database.take() {
            self.runtime.block_on(database.close());
            let _guard = self.runtime.enter();
            drop(database);
        }
    }
}
