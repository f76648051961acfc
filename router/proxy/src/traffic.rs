//! [`Traffic`]: the router's live per-backend state (in-flight requests, latency average, ejection), keyed by
//! address so that it survives table swaps, and readable by the control plane for draining.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use route_table::RouteTable;

use crate::balance::BackendState;

type States = HashMap<SocketAddr, Arc<BackendState>>;

/// The state of every backend the router may still be using.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    pub(crate) states: States,
    /// The backends of the latest table.
    routed: HashSet<SocketAddr>,
}

/// A cloneable handle on what the router is doing with each backend. Give the same handle to
/// [`crate::serve`] (in [`crate::ProxyConfig::traffic`]) and to whoever drains instances: after sending a table
/// without the instance, wait until [`Traffic::table_version`] reached its version (the router routes by it),
/// then until [`Traffic::in_flight`] is 0 (or a grace period ended), before stopping the instance.
#[derive(Debug, Clone, Default)]
pub struct Traffic {
    registry: Arc<ArcSwap<Registry>>,
    /// The version of the table requests are routed by; set once its snapshot is live.
    version: Arc<AtomicU64>,
}

impl Traffic {
    /// A handle with no backends yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests in progress and open upgraded tunnels (WebSockets) to `backend`, including those that started
    /// before the backend left the table. 0 for an address the router never used.
    pub fn in_flight(&self, backend: SocketAddr) -> usize {
        self.registry
            .load()
            .states
            .get(&backend)
            .map_or(0, |state| state.in_flight())
    }

    /// The version of the route table the router serves now (0 before `serve` started).
    pub fn table_version(&self) -> u64 {
        self.version.load(Ordering::SeqCst)
    }

    /// Records that requests are now routed by the table `version`.
    pub(crate) fn applied(&self, version: u64) {
        self.version.store(version, Ordering::SeqCst);
    }

    /// Whether `backend` is ejected right now (it refused connections and its ejection has not expired).
    pub fn is_ejected(&self, backend: SocketAddr) -> bool {
        self.registry
            .load()
            .states
            .get(&backend)
            .is_some_and(|s| s.ejected())
    }

    /// How many backends are ejected right now.
    pub fn ejected(&self) -> usize {
        self.registry
            .load()
            .states
            .values()
            .filter(|s| s.ejected())
            .count()
    }

    /// Requests in progress over all backends.
    pub fn total_in_flight(&self) -> usize {
        self.registry.load().states.values().map(|s| s.in_flight()).sum()
    }

    /// Makes the state map match `table`: backends that stay keep their state, new ones start fresh, and those
    /// that left every app are dropped once nothing is in flight to them, but not before the swap after the
    /// one that removed them (a request that chose a backend from the previous table may not have counted
    /// itself yet). Returns the new map.
    pub(crate) fn update(&self, table: &RouteTable) -> Arc<Registry> {
        let previous = self.registry.load_full();
        let routed: HashSet<SocketAddr> = table
            .apps
            .values()
            .flat_map(|app| &app.backends)
            .map(|b| b.addr)
            .collect();
        let mut states: States = routed
            .iter()
            .map(|addr| (*addr, previous.states.get(addr).cloned().unwrap_or_default()))
            .collect();
        for (addr, state) in &previous.states {
            if state.in_flight() > 0 || previous.routed.contains(addr) {
                states.entry(*addr).or_insert_with(|| state.clone());
            }
        }
        let next = Arc::new(Registry { states, routed });
        self.registry.store(next.clone());
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::tests::table;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn state_is_kept_across_swaps_and_pruned_when_idle() {
        let traffic = Traffic::new();
        let states = traffic
            .update(&table(1, &[("a", "a", &[1, 2]), ("b", "b", &[2, 3])]))
            .states
            .clone();
        assert_eq!(states.len(), 3);
        let busy = states[&addr(1)].start();
        let _busy3 = states[&addr(3)].start();
        assert_eq!(traffic.in_flight(addr(1)), 1);

        // 1 left the table but has a request in flight; 2 stays; 3 stays through app b; 4 is new.
        let states2 = traffic
            .update(&table(2, &[("a", "a", &[2, 4]), ("b", "b", &[3])]))
            .states
            .clone();
        assert_eq!(states2.len(), 4);
        assert!(Arc::ptr_eq(&states[&addr(1)], &states2[&addr(1)]));
        assert!(Arc::ptr_eq(&states[&addr(2)], &states2[&addr(2)]));
        assert!(Arc::ptr_eq(&states[&addr(3)], &states2[&addr(3)]));
        assert_eq!(traffic.in_flight(addr(1)), 1);
        assert_eq!(traffic.total_in_flight(), 2);
        drop(busy);
        assert_eq!(traffic.in_flight(addr(1)), 0);

        let states3 = traffic
            .update(&table(3, &[("a", "a", &[2, 4]), ("b", "b", &[3])]))
            .states
            .clone();
        assert_eq!(states3.len(), 3, "an idle backend that left is pruned");
        // An idle backend is kept for one swap after it left the table.
        let states4 = traffic.update(&table(4, &[("a", "a", &[2])])).states.clone();
        assert_eq!(states4.len(), 3, "{states4:?}");
        let states5 = traffic.update(&table(5, &[("a", "a", &[2])])).states.clone();
        assert_eq!(states5.len(), 2, "4 is gone, 3 still busy: {states5:?}");
        assert!(states5.contains_key(&addr(3)) && !states5.contains_key(&addr(4)));
        assert_eq!(traffic.in_flight(addr(9)), 0);
    }
}
