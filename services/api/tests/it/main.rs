//! In-process tests of the API router against a real temp SQLite store, with the controller's event channel
//! held by the test.

mod access;
mod accounts;
mod admin_nodes;
mod apps;
mod auth;
mod authorization;
mod certificates;
mod config;
mod domains;
mod image_deploys;
mod logs;
mod rebase;
mod registry;
mod route_watch;
mod runs;
mod scale;
mod session;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use controller::{ControllerHandle, Event};
use route_table::RouteTable;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use tokio::sync::{mpsc, watch};
use tower::ServiceExt;
use vocabulary::AccountName;

pub const DEFAULT_MEMORY: u64 = 256 << 20;
/// Short, so the route stream's heartbeats show up in tests quickly.
pub const HEARTBEAT: Duration = Duration::from_millis(100);

pub struct Harness {
    pub router: axum::Router,
    pub store: store::Store,
    pub events: mpsc::UnboundedReceiver<Event>,
    /// The controller's side of the route table the API streams.
    pub routes: watch::Sender<Arc<RouteTable>>,
    pub admin: String,
    pub images: image_store::ImageStore,
    /// Where the current stack is recorded (empty until a test records one).
    pub stacks_dir: std::path::PathBuf,
    /// The apps' logs the API reads.
    pub logs: app_logs::AppLogs,
    /// The controller's pass counter, held so that waits in the API see a live (if silent) controller.
    _passes: watch::Sender<u64>,
    /// A SQLite file in `_dir`, or a PostgreSQL database with `BERTH_TEST_BACKEND=postgres` (store::testing).
    _database: store::testing::TestDatabase,
    _dir: TempDir,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The `error` message of an error body.
    pub fn error(&self) -> &str {
        self.body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error message in {}", self.body))
    }
}

impl Harness {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database = store::testing::TestDatabase::from_env(&dir.path().join("berth.db"))
            .await
            .unwrap();
        let store = database.store.clone();
        let (_, admin) = store
            .create_account(&AccountName::new("admin").unwrap(), true)
            .await
            .unwrap();
        let images = image_store::ImageStore::open(&dir.path().join("images")).unwrap();
        let (tx, events) = mpsc::unbounded_channel();
        let (routes, routes_rx) = watch::channel(Arc::new(RouteTable::default()));
        let logs = app_logs::AppLogs::open(app_logs::LogsConfig::new(dir.path().join("logs"))).unwrap();
        // No controller runs here: a change that needs instances to start waits for passes that never
        // come, and says so after the (short) rollout timeout.
        let (passes, passes_rx) = watch::channel(0);
        let lifecycle = controller::Lifecycle::new(
            controller::DeployConfig {
                domain: "berth.test".to_owned(),
                router_port: 8080,
                default_memory_bytes: DEFAULT_MEMORY,
                rollout_timeout: Duration::from_millis(300),
                app_logs: None,
            },
            store.clone(),
            ControllerHandle::new(tx.clone()),
            passes_rx,
        );
        let state = api::ApiState {
            store: store.clone(),
            controller: ControllerHandle::new(tx),
            default_memory_bytes: DEFAULT_MEMORY,
            domain: "berth.test".to_owned(),
            router_port: 8080,
            repos_dir: std::env::temp_dir().join("berth-api-test-no-repos"),
            routes: routes_rx,
            route_heartbeat: HEARTBEAT,
            images: images.clone(),
            stacks_dir: dir.path().join("stacks"),
            image_deploys: None,
            logs: logs.clone(),
            lifecycle,
        };
        Self {
            router: api::router(state),
            store,
            events,
            routes,
            admin,
            images,
            stacks_dir: dir.path().join("stacks"),
            logs,
            _passes: passes,
            _database: database,
            _dir: dir,
        }
    }

    /// A new non-admin account's token.
    pub async fn tenant(&self, name: &str) -> String {
        self.store
            .create_account(&AccountName::new(name).unwrap(), false)
            .await
            .unwrap()
            .1
    }

    pub async fn call(&self, method: Method, uri: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let body = match body {
            Some(json) => {
                req = req.header("content-type", "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        self.send(req.body(body).unwrap()).await
    }

    pub async fn send(&self, req: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, uri: &str, token: &str) -> Reply {
        self.call(Method::GET, uri, Some(token), None).await
    }

    pub async fn delete(&self, uri: &str, token: &str) -> Reply {
        self.call(Method::DELETE, uri, Some(token), None).await
    }

    /// Creates an app; a successful create must tell the controller (checked and consumed here), a refused
    /// one must not.
    pub async fn create_app(&mut self, name: &str, token: &str) -> Reply {
        let reply = self
            .call(
                Method::POST,
                "/v1/apps",
                Some(token),
                Some(serde_json::json!({ "name": name })),
            )
            .await;
        let events = self.take_events();
        if reply.status == StatusCode::CREATED {
            assert!(matches!(events.as_slice(), [Event::AppCreated(_)]), "{events:?}");
        } else {
            assert!(events.is_empty(), "a refused create sent {events:?}");
        }
        reply
    }

    /// The app named `name`, read straight from the store.
    pub async fn app(&self, name: &str) -> store::App {
        self.store
            .app_by_name(&vocabulary::AppName::new(name).unwrap())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no app {name}"))
    }

    /// The events sent since the last call.
    pub fn take_events(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            events.push(event);
        }
        events
    }
}
