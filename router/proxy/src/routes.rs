//! The router's view of the route table: the latest snapshot from the watch channel, copied into an
//! [`ArcSwap`] so that the request path reads it with one atomic load and never waits on the writer, plus a
//! round-robin cursor per app that survives table swaps.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use route_table::{AppRoute, Backend, RouteTable};
use tokio::sync::watch;

/// One route table with the balancing state for its apps.
#[derive(Debug)]
pub(crate) struct Snapshot {
    table: Arc<RouteTable>,
    /// app name → next backend index. Shared with the snapshots before and after this one, so a swap does not
    /// send every app's next request to its first backend.
    cursors: HashMap<String, Arc<AtomicUsize>>,
}

/// What the table says about a host.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Resolved<'a> {
    Unknown,
    NoInstances {
        app: &'a str,
    },
    /// Try `backends` in [`attempt_order`], starting at `first`.
    Backends {
        app: &'a str,
        route: &'a AppRoute,
        backends: &'a [Backend],
        first: usize,
    },
}

impl Snapshot {
    pub(crate) fn new(table: Arc<RouteTable>, previous: Option<&Snapshot>) -> Self {
        let cursors = table
            .apps
            .keys()
            .map(|app| {
                let cursor = previous
                    .and_then(|p| p.cursors.get(app))
                    .cloned()
                    .unwrap_or_default();
                (app.clone(), cursor)
            })
            .collect();
        Self { table, cursors }
    }

    pub(crate) fn table(&self) -> &RouteTable {
        &self.table
    }

    pub(crate) fn version(&self) -> u64 {
        self.table.version
    }

    /// Finds the route for `host` and takes the next round-robin turn of its app.
    pub(crate) fn resolve(&self, host: &str) -> Resolved<'_> {
        let Some((app, route)) = self.table.lookup(host) else {
            return Resolved::Unknown;
        };
        let backends = &route.backends;
        if backends.is_empty() {
            return Resolved::NoInstances { app };
        }
        let turn = self
            .cursors
            .get(app)
            .map_or(0, |c| c.fetch_add(1, Ordering::Relaxed));
        Resolved::Backends {
            app,
            route,
            backends,
            first: turn % backends.len(),
        }
    }
}

/// The order in which to try `len` backends when the round robin chose `first`: that one, then the others in
/// turn, each once.
pub(crate) fn attempt_order(len: usize, first: usize) -> impl Iterator<Item = usize> {
    (0..len).map(move |i| (first + i) % len)
}

/// The current snapshot, swapped whenever the watch channel carries a new table.
#[derive(Debug)]
pub(crate) struct Routes {
    current: ArcSwap<Snapshot>,
}

impl Routes {
    pub(crate) fn new(table: Arc<RouteTable>) -> Self {
        Self {
            current: ArcSwap::from_pointee(Snapshot::new(table, None)),
        }
    }

    pub(crate) fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    fn replace(&self, table: Arc<RouteTable>) -> u64 {
        let next = Snapshot::new(table, Some(&self.current.load()));
        let version = next.version();
        self.current.store(Arc::new(next));
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
mod tests {
    use super::*;

    fn table(version: u64, routes: &[(&str, &str, &[u16])]) -> Arc<RouteTable> {
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

    fn firsts(snapshot: &Snapshot, host: &str, n: usize) -> Vec<Option<u16>> {
        (0..n)
            .map(|_| match snapshot.resolve(host) {
                Resolved::Backends { backends, first, .. } => Some(backends[first].addr.port()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn attempt_order_visits_each_backend_once() {
        let cases: &[(usize, usize, &[usize])] = &[
            (1, 0, &[0]),
            (3, 0, &[0, 1, 2]),
            (3, 1, &[1, 2, 0]),
            (3, 2, &[2, 0, 1]),
            (0, 0, &[]),
        ];
        for (len, first, want) in cases {
            assert_eq!(
                attempt_order(*len, *first).collect::<Vec<_>>(),
                *want,
                "len {len} first {first}"
            );
        }
    }

    #[test]
    fn resolve_classifies_hosts() {
        let snapshot = Snapshot::new(
            table(
                1,
                &[("web.localhost", "web", &[5000]), ("idle.localhost", "idle", &[])],
            ),
            None,
        );
        assert_eq!(snapshot.resolve("nope.localhost"), Resolved::Unknown);
        assert_eq!(
            snapshot.resolve("IDLE.localhost:8080"),
            Resolved::NoInstances { app: "idle" }
        );
        assert!(matches!(
            snapshot.resolve("web.localhost"),
            Resolved::Backends {
                app: "web",
                first: 0,
                ..
            }
        ));
    }

    #[test]
    fn round_robin_per_app_survives_swaps() {
        let one = Snapshot::new(
            table(
                1,
                &[("a.localhost", "a", &[1, 2, 3]), ("b.localhost", "b", &[7, 8])],
            ),
            None,
        );
        assert_eq!(
            firsts(&one, "a.localhost", 4),
            [Some(1), Some(2), Some(3), Some(1)]
        );
        assert_eq!(firsts(&one, "b.localhost", 1), [Some(7)]);
        // A second host of app `a` shares its cursor; a new backend joins the rotation.
        let two = Snapshot::new(
            table(
                2,
                &[
                    ("a.localhost", "a", &[1, 2, 3, 4]),
                    ("www.a.localhost", "a", &[1, 2, 3, 4]),
                ],
            ),
            Some(&one),
        );
        assert_eq!(firsts(&two, "a.localhost", 2), [Some(1), Some(2)]);
        assert_eq!(firsts(&two, "www.a.localhost", 3), [Some(3), Some(4), Some(1)]);
        assert_eq!(firsts(&two, "b.localhost", 1), [None]);
    }

    #[tokio::test]
    async fn follow_swaps_to_the_latest_table() {
        let (tx, rx) = watch::channel(table(1, &[]));
        let routes = Arc::new(Routes::new(rx.borrow().clone()));
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
