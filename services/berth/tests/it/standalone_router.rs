//! `berth router --api URL` as users run it: a real `berth router` process following the real API's route
//! stream, forwarding real HTTP to backends on loopback. Needs no root.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use route_table::{AppRoute, Backend, RouteTable};
use tokio::sync::{mpsc, watch};

use crate::support::{berth_bin, free_addr};

/// Only a hang takes this long.
const PATIENCE: Duration = Duration::from_secs(60);

/// An HTTP server that answers every request with `name`.
pub(crate) async fn backend(name: &'static str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(move || async move { name });
    tokio::spawn(axum::serve(listener, app).into_future());
    addr
}

pub(crate) fn table(version: u64, backend: SocketAddr) -> Arc<RouteTable> {
    let mut table = RouteTable {
        version,
        ..RouteTable::default()
    };
    table.insert_host("shop.apps.test", "shop");
    table.insert_app(
        "shop",
        AppRoute {
            backends: vec![Backend {
                addr: backend,
                instance: "web.1".into(),
            }],
            ..AppRoute::default()
        },
    );
    Arc::new(table)
}

/// A fresh store in `dir` with one account: the store, the account and its API token.
pub(crate) async fn store_with_account(
    dir: &Path,
    name: &str,
    admin: bool,
) -> (store::Store, store::Account, String) {
    let store = store::Store::open_sqlite(&dir.join("berth.db")).await.unwrap();
    let (account, token) = store
        .create_account(&vocabulary::AccountName::new(name).unwrap(), admin)
        .await
        .unwrap();
    (store, account, token)
}

/// Serves the real API (no controller behind it: its events go nowhere) on a free loopback port.
pub(crate) async fn serve_api(
    store: store::Store,
    dir: &Path,
    routes: watch::Receiver<Arc<RouteTable>>,
) -> (SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>) {
    let (events, _events_rx) = mpsc::unbounded_channel();
    let lifecycle = controller::Lifecycle::new(
        controller::DeployConfig {
            domain: "apps.test".into(),
            router_port: 80,
            default_memory_bytes: 1 << 26,
            rollout_timeout: Duration::from_secs(1),
            app_logs: None,
        },
        store.clone(),
        controller::ControllerHandle::new(events.clone()),
        watch::channel(0).1,
    );
    let api_app = api::router(api::ApiState {
        store,
        controller: controller::ControllerHandle::new(events),
        default_memory_bytes: 1 << 26,
        domain: "apps.test".into(),
        router_port: 80,
        repos_dir: dir.join("repos"),
        routes,
        route_heartbeat: Duration::from_secs(15),
        images: image_store::ImageStore::open(&dir.join("images")).unwrap(),
        stacks_dir: dir.join("stacks"),
        image_deploys: None,
        logs: app_logs::AppLogs::open(app_logs::LogsConfig::new(dir.join("logs"))).unwrap(),
        lifecycle,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (addr, tokio::spawn(axum::serve(listener, api_app).into_future()))
}

/// A `berth router` child process, stopped with SIGTERM by its PID when dropped.
struct RouterProcess {
    child: Child,
    addr: SocketAddr,
}

impl RouterProcess {
    fn start(api: SocketAddr, token: &str, cache: &Path, log: &Path) -> Self {
        let addr = free_addr();
        let log = std::fs::File::create(log).unwrap();
        let child = Command::new(berth_bin())
            .arg("router")
            .args(["--router-addr", &addr.to_string(), "--domain", "apps.test"])
            .args(["--api", &format!("http://{api}")])
            .args(["--routes-file", cache.to_str().unwrap(), "--threads", "1"])
            .env("BERTH_TOKEN", token)
            .env("BERTH_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawning berth router");
        Self { child, addr }
    }

    fn stop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        // SAFETY: kill with the PID of our own child, not yet reaped, and a valid signal.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

impl Drop for RouterProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Asks the router for `shop.apps.test` until it answers `want` (it may not be listening or updated yet).
async fn until_served(router: SocketAddr, want: &str, log: &Path) {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let result = tokio::time::timeout(PATIENCE, async {
        loop {
            let reply = client
                .get(format!("http://{router}/"))
                .header("host", "shop.apps.test")
                .send()
                .await;
            if let Ok(reply) = reply {
                if reply.status() == 200 && reply.text().await.unwrap_or_default() == want {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    if result.is_err() {
        panic!(
            "the router never served {want:?}; its log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standalone_router_follows_the_api_keeps_serving_without_it_and_restarts_from_its_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("routes.json");
    let log = dir.path().join("router.log");
    let (a, b) = (backend("A").await, backend("B").await);

    // The real API, with the route table the test publishes as the controller would.
    let (store, admin, _) = store_with_account(dir.path(), "admin", true).await;
    let token = store.create_router_token(admin.id).await.unwrap();
    let (routes, routes_rx) = watch::channel(table(1, a));
    let (api_addr, api_task) = serve_api(store, dir.path(), routes_rx).await;

    let mut router = RouterProcess::start(api_addr, &token, &cache, &log);
    until_served(router.addr, "A", &log).await;
    routes.send_replace(table(2, b));
    until_served(router.addr, "B", &log).await;
    let mode = std::fs::metadata(&cache).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the cache holds private keys");

    // The API goes away (its listener closes and its streams end): the router keeps serving.
    api_task.abort();
    drop(routes);
    for _ in 0..20 {
        until_served(router.addr, "B", &log).await;
    }

    // A restarted router, with the API still down, serves its cached table.
    router.stop();
    let mut router = RouterProcess::start(api_addr, &token, &cache, &log);
    until_served(router.addr, "B", &log).await;
    router.stop();
}
