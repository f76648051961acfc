//! The follower against a real HTTP server on loopback that speaks the API's route stream (lines of
//! `api_contract::RouteStreamLine`), which the tests can stop and start again on the same port. The api crate's
//! own tests run the follower against the real API.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_contract::RouteStreamLine;
use axum::body::Body;
use axum::extract::{Query, State};
use route_follower::{Cache, FollowConfig, HttpSource};
use route_table::{AppRoute, RouteTable};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Long enough for anything in these tests to happen; only a hang takes this long.
const PATIENCE: Duration = Duration::from_secs(20);

#[derive(Clone)]
struct ApiState {
    tables: watch::Receiver<Arc<RouteTable>>,
    stopping: watch::Receiver<bool>,
    /// The `since` of every watch request, in order.
    sinces: Arc<Mutex<Vec<Option<u64>>>>,
    /// Send nothing at all (to look like a dead connection).
    silent: bool,
}

#[derive(serde::Deserialize)]
struct WatchQuery {
    since: Option<u64>,
}

async fn watch_route(State(state): State<ApiState>, Query(query): Query<WatchQuery>) -> Body {
    state.sinces.lock().unwrap().push(query.since);
    let start = (
        state.tables.clone(),
        state.stopping.clone(),
        query.since,
        state.silent,
    );
    Body::from_stream(futures_util::stream::unfold(
        start,
        |(mut tables, mut stopping, sent, silent)| async move {
            loop {
                let table = tables.borrow_and_update().clone();
                if !silent && sent != Some(table.version) {
                    let mut line = serde_json::to_vec(&RouteStreamLine::Table((*table).clone())).unwrap();
                    line.push(b'\n');
                    let next = (tables, stopping, Some(table.version), silent);
                    return Some((Ok::<_, std::io::Error>(line), next));
                }
                tokio::select! {
                    changed = tables.changed() => changed.ok()?,
                    _ = stopping.wait_for(|s| *s) => return None,
                }
            }
        },
    ))
}

/// A stand-in for the API's watch endpoint.
struct TestApi {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl TestApi {
    async fn start(
        addr: SocketAddr,
        tables: watch::Receiver<Arc<RouteTable>>,
        sinces: Arc<Mutex<Vec<Option<u64>>>>,
        silent: bool,
    ) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopping) = watch::channel(false);
        let state = ApiState {
            tables,
            stopping: stopping.clone(),
            sinces,
            silent,
        };
        let app = axum::Router::new()
            .route("/v1/routes/watch", axum::routing::get(watch_route))
            .with_state(state);
        let mut stopping_signal = stopping;
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopping_signal.wait_for(|s| *s).await;
                })
                .await
                .unwrap();
        });
        Self { addr, stop, task }
    }

    /// Ends every stream and closes the port.
    async fn stop(self) {
        self.stop.send_replace(true);
        self.task.await.unwrap();
    }
}

fn table(version: u64, apps: &[&str]) -> Arc<RouteTable> {
    let mut table = RouteTable {
        version,
        ..RouteTable::default()
    };
    for app in apps {
        table.insert_host(&format!("{app}.berth.test"), app);
        table.insert_app(app, AppRoute::default());
    }
    Arc::new(table)
}

fn config() -> FollowConfig {
    FollowConfig {
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        silence_timeout: Duration::from_secs(60),
    }
}

async fn wait_for_version(rx: &mut watch::Receiver<Arc<RouteTable>>, version: u64) {
    tokio::time::timeout(PATIENCE, rx.wait_for(|t| t.version == version))
        .await
        .unwrap_or_else(|_| panic!("version {version} never arrived"))
        .unwrap();
}

struct Follower {
    routes: watch::Receiver<Arc<RouteTable>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Follower {
    /// Starts following `api`, serving the cache's table (if any) meanwhile, as `berth router` does.
    fn start(api: SocketAddr, cache: Cache, config: FollowConfig) -> Self {
        let initial = cache.load().unwrap().unwrap_or_default();
        let (tx, routes) = watch::channel(Arc::new(initial));
        let source = HttpSource::new(&format!("http://{api}"), "berth_test").unwrap();
        let (stop, mut stopping) = watch::channel(false);
        let task = tokio::spawn(route_follower::follow(
            source,
            Some(cache),
            tx,
            config,
            async move {
                let _ = stopping.wait_for(|s| *s).await;
            },
        ));
        Self { routes, stop, task }
    }

    async fn stop(self) {
        self.stop.send_replace(true);
        tokio::time::timeout(PATIENCE, self.task).await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn changes_arrive_the_api_going_away_keeps_the_last_table_and_the_stream_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().join("routes.json"));
    let (tables, tables_rx) = watch::channel(table(1, &["shop"]));
    let sinces = Arc::new(Mutex::new(Vec::new()));
    let api = TestApi::start(
        "127.0.0.1:0".parse().unwrap(),
        tables_rx.clone(),
        sinces.clone(),
        false,
    )
    .await;
    let addr = api.addr;

    let mut follower = Follower::start(addr, cache.clone(), config());
    wait_for_version(&mut follower.routes, 1).await;
    tables.send_replace(table(2, &["shop", "blog"]));
    wait_for_version(&mut follower.routes, 2).await;
    assert!(follower.routes.borrow().lookup("blog.berth.test").is_some());
    assert_eq!(cache.load().unwrap().unwrap().version, 2);

    // The API goes away: the router keeps serving (and caching) what it had while it retries.
    api.stop().await;
    tables.send_replace(table(3, &["shop", "blog", "news"]));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(follower.routes.borrow().version, 2);
    assert_eq!(cache.load().unwrap().unwrap().version, 2);

    // It comes back on the same address: the follower resumes from version 2 and gets 3.
    let api = TestApi::start(addr, tables_rx, sinces.clone(), false).await;
    wait_for_version(&mut follower.routes, 3).await;
    assert_eq!(cache.load().unwrap().unwrap().version, 3);
    let sinces = sinces.lock().unwrap().clone();
    assert_eq!(sinces.first(), Some(&None), "{sinces:?}");
    assert_eq!(sinces.last(), Some(&Some(2)), "{sinces:?}");
    assert!(sinces[1..].iter().all(|s| *s == Some(2)), "{sinces:?}");

    follower.stop().await;
    api.stop().await;
}

#[tokio::test]
async fn a_restarted_router_serves_its_cache_at_once_and_resumes_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().join("routes.json"));
    cache.store(&table(5, &["shop"])).unwrap();
    // No API at all yet: the cached table is served.
    let unused = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = unused.local_addr().unwrap();
    drop(unused);
    let follower = Follower::start(addr, cache.clone(), config());
    assert_eq!(follower.routes.borrow().version, 5);
    assert!(follower.routes.borrow().lookup("shop.berth.test").is_some());

    let (tables, tables_rx) = watch::channel(table(5, &["shop"]));
    let sinces = Arc::new(Mutex::new(Vec::new()));
    let api = TestApi::start(addr, tables_rx, sinces.clone(), false).await;
    let mut routes = follower.routes.clone();
    tables.send_replace(table(6, &["blog"]));
    wait_for_version(&mut routes, 6).await;
    assert_eq!(sinces.lock().unwrap().first(), Some(&Some(5)));
    assert!(routes.borrow().lookup("shop.berth.test").is_none());
    follower.stop().await;
    api.stop().await;
}

#[tokio::test]
async fn a_silent_stream_is_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let (_tables, tables_rx) = watch::channel(table(1, &["shop"]));
    let sinces = Arc::new(Mutex::new(Vec::new()));
    let api = TestApi::start("127.0.0.1:0".parse().unwrap(), tables_rx, sinces.clone(), true).await;
    let follower = Follower::start(
        api.addr,
        Cache::new(dir.path().join("routes.json")),
        FollowConfig {
            silence_timeout: Duration::from_millis(100),
            ..config()
        },
    );
    tokio::time::timeout(PATIENCE, async {
        while sinces.lock().unwrap().len() < 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the follower never reopened the silent stream");
    follower.stop().await;
    api.stop().await;
}
