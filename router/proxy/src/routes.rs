//! The router's view of the route table: the latest snapshot from the watch channel, copied into an
//! [`ArcSwap`] so that the request path reads it with one atomic load and never waits on the writer, with each
//! app's backends paired with their live state (shared with [`Traffic`], so it survives table swaps).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use route_table::{AppRoute, Backend, RouteTable};
use tokio::sync::watch;

use crate::balance::BackendState;
use crate::observe::{AppHandle, Metrics};
use crate::traffic::Traffic;

/// One route table with the balancing state of its backends.
#[derive(Debug)]
pub(crate) struct Snapshot {
    table: Arc<RouteTable>,
    apps: HashMap<String, AppEntry>,
}

/// What the router keeps per app next to its route.
#[derive(Debug)]
struct AppEntry {
    handle: Arc<AppHandle>,
    /// The state of each backend, in the order of `AppRoute::backends`.
    states: Box<[Arc<BackendState>]>,
    /// The instance name of each backend, shared so the access log need not copy it.
    instances: Box<[Arc<str>]>,
}

/// What the table says about a host.
#[derive(Debug)]
pub(crate) enum Resolved<'a> {
    Unknown,
    NoInstances {
        app: &'a Arc<AppHandle>,
        route: &'a AppRoute,
    },
    Backends {
        app: &'a Arc<AppHandle>,
        route: &'a AppRoute,
        backends: &'a [Backend],
        /// Same length and order as `backends`.
        states: &'a [Arc<BackendState>],
        /// Same length and order as `backends`.
        instances: &'a [Arc<str>],
    },
}

impl Snapshot {
    /// Pairs `table` with the backends' state in `by_addr`, keeping each app's handle from `previous`.
    pub(crate) fn new(
        table: Arc<RouteTable>,
        by_addr: &HashMap<SocketAddr, Arc<BackendState>>,
        previous: Option<&Snapshot>,
    ) -> Self {
        let apps = table
            .apps
            .iter()
            .map(|(app, route)| {
                let handle = previous
                    .and_then(|p| p.apps.get(app))
                    .map_or_else(|| Arc::new(AppHandle::new(app)), |e| e.handle.clone());
                let entry = AppEntry {
                    handle,
                    states: route
                        .backends
                        .iter()
                        .map(|b| by_addr.get(&b.addr).cloned().unwrap_or_default())
                        .collect(),
                    instances: route
                        .backends
                        .iter()
                        .map(|b| Arc::from(b.instance.as_str()))
                        .collect(),
                };
                (app.clone(), entry)
            })
            .collect();
        Self { table, apps }
    }

    pub(crate) fn version(&self) -> u64 {
        self.table.version
    }

    /// Finds the route for `host` and its backends' state.
    pub(crate) fn resolve(&self, host: &str) -> Resolved<'_> {
        let Some((app, route)) = self.table.lookup(host) else {
            return Resolved::Unknown;
        };
        let Some(entry) = self.apps.get(app) else {
            return Resolved::Unknown;
        };
        let backends = &route.backends;
        if backends.is_empty() {
            return Resolved::NoInstances {
                app: &entry.handle,
                route,
            };
        }
        Resolved::Backends {
            app: &entry.handle,
            route,
            backends,
            states: &entry.states,
            instances: &entry.instances,
        }
    }
}

/// The current snapshot, swapped whenever the watch channel carries a new table.
#[derive(Debug)]
pub(crate) struct Routes {
    current: ArcSwap<Snapshot>,
    traffic: Traffic,
    metrics: Metrics,
}

impl Routes {
    pub(crate) fn new(table: Arc<RouteTable>, traffic: Traffic, metrics: Metrics) -> Self {
        let registry = traffic.update(&table);
        let states = &registry.states;
        metrics.table_version(table.version);
        traffic.applied(table.version);
        Self {
            current: ArcSwap::from_pointee(Snapshot::new(table, states, None)),
            traffic,
            metrics,
        }
    }

    pub(crate) fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    fn replace(&self, table: Arc<RouteTable>) -> u64 {
        let registry = self.traffic.update(&table);
        let states = &registry.states;
        let next = Snapshot::new(table, states, Some(&self.current.load()));
        let version = next.version();
        self.current.store(Arc::new(next));
        self.traffic.applied(version);
        self.metrics.table_version(version);
        version
    }

    /// Copies every new table from `rx` until the sender is gone; then the last table keeps being served.
    pub(crate) async fn follow(self: Arc<Self>, mut rx: watch::Receiver<Arc<RouteTable>>) {
        while rx.changed().await.is_ok() {
            let table = rx.borrow_and_update().clone();
            let version = self.replace(table);
            tracing::debug!(version, "route table swapped");
        }
        tracing::info!("route table source closed; serving the last table");
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A table from `(host, app, backend ports on 127.0.0.1)`.
    pub(crate) fn table(version: u64, routes: &[(&str, &str, &[u16])]) -> Arc<RouteTable> {
        let mut table = RouteTable {
            version,
            ..RouteTable::default()
        };
        for (host, app, ports) in routes {
            let backends = ports
                .iter()
                .map(|p| Backend {
                    addr: std::net::SocketAddr::from(([127, 0, 0, 1], *p)),
                    instance: format!("web.{p}"),
                })
                .collect();
            table.insert_host(host, app);
            table.insert_app(
                app,
                AppRoute {
                    backends,
                    ..AppRoute::default()
                },
            );
        }
        Arc::new(table)
    }

    #[test]
    fn resolve_classifies_hosts_and_pairs_backends_with_state() {
        let traffic = Traffic::new();
        let t = table(
            1,
            &[
                ("web.localhost", "web", &[5000, 5001]),
                ("www.web.localhost", "web", &[5000, 5001]),
                ("idle.localhost", "idle", &[]),
                ("other.localhost", "other", &[5001]),
            ],
        );
        let registry = traffic.update(&t);
        let states = &registry.states;
        let snapshot = Snapshot::new(t.clone(), states, None);
        assert!(matches!(snapshot.resolve("nope.localhost"), Resolved::Unknown));
        assert!(matches!(
            snapshot.resolve("IDLE.localhost:8080"),
            Resolved::NoInstances { app, .. } if &*app.name == "idle"
        ));
        let Resolved::Backends {
            app,
            backends,
            states: web,
            instances,
            ..
        } = snapshot.resolve("web.localhost")
        else {
            panic!("web routes");
        };
        assert_eq!((&*app.name, backends.len(), web.len()), ("web", 2, 2));
        assert_eq!((&*instances[0], &*instances[1]), ("web.5000", "web.5001"));
        // The next snapshot keeps the app's handle (and so its metric series).
        let next = Snapshot::new(t, states, Some(&snapshot));
        let Resolved::Backends { app: again, .. } = next.resolve("www.web.localhost") else {
            panic!("web routes");
        };
        assert!(Arc::ptr_eq(app, again));
        let Resolved::Backends { states: other, .. } = snapshot.resolve("other.localhost") else {
            panic!("other routes");
        };
        // One address serving two apps has one state.
        assert!(Arc::ptr_eq(&web[1], &other[0]));
        let _busy = web[1].start();
        assert_eq!(traffic.in_flight(backends[1].addr), 1);
    }

    #[tokio::test]
    async fn follow_swaps_to_the_latest_table() {
        let (tx, rx) = watch::channel(table(1, &[]));
        let routes = Arc::new(Routes::new(rx.borrow().clone(), Traffic::new(), Metrics::new()));
        let task = tokio::spawn(routes.clone().follow(rx));
        tx.send(table(2, &[("web.localhost", "web", &[5000])])).unwrap();
        for _ in 0..100 {
            if routes.load().version() == 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(routes.load().version(), 2);
        drop(tx);
        task.await.unwrap();
        assert_eq!(
            routes.load().version(),
            2,
            "the last table stays after the source closes"
        );
    }
}
