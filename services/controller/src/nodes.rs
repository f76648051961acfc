//! The node inventory as the scheduler sees it: each node's capacity, labels and status, where a node that
//! missed its heartbeats is down. Also remembers which nodes were down at the last pass, to say once when a node
//! goes down and when it is back.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use scheduler::{NodeCapacity, NodeStatus};
use store::{NodeRecord, NodeState, PendingInstance, Store, StoreError};
use vocabulary::NodeId;

/// The CPU every instance may use (its cgroup quota), in millicores.
pub const INSTANCE_CPU_MILLICORES: u32 = 1000;

/// How many times over a node's CPU is shared: an instance may burst to its whole quota, but reserves only
/// this fraction of it on its node, as dynos share cores on Heroku. Memory, which cannot be taken back, is
/// never overcommitted. Without it a 2-core node would hold two instances whatever their memory.
pub const CPU_OVERCOMMIT: u32 = 10;

/// What an instance whose quota is `limit_millicores` reserves on its node for the scheduler.
pub fn cpu_reservation(limit_millicores: u32) -> u32 {
    (limit_millicores / CPU_OVERCOMMIT).max(1)
}

/// How long a node may go without a heartbeat before it is down (issue 7: 30 s).
pub const NODE_DOWN_AFTER: Duration = Duration::from_secs(30);

/// When nodes count as down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeHealthPolicy {
    /// No heartbeat for this long: down.
    pub down_after: Duration,
    /// For this long after the controller starts, no node is marked down: after a control plane outage every
    /// heartbeat is old, and the agents need a moment to send new ones.
    pub startup_grace: Duration,
}

impl Default for NodeHealthPolicy {
    fn default() -> Self {
        Self {
            down_after: NODE_DOWN_AFTER,
            startup_grace: NODE_DOWN_AFTER,
        }
    }
}

/// Whether a node with this last heartbeat is down at `now`. A node without any heartbeat was registered by
/// something that does not send them (`Store::upsert_node`, before issue 7), so it is never down: every agent
/// that heartbeats registers with one ([`store::Store::register_node`]).
pub fn heartbeat_missed(last: Option<DateTime<Utc>>, now: DateTime<Utc>, down_after: Duration) -> bool {
    last.is_some_and(|at| (now - at).to_std().is_ok_and(|since| since > down_after))
}

/// Nodes that take no new instances now: cordoned, draining, or without a heartbeat for [`NODE_DOWN_AFTER`].
/// Empty when the store cannot be read (the caller then tries any node, and the node's answer says more).
pub(crate) async fn unschedulable(store: &Store) -> HashSet<NodeId> {
    let now = Utc::now();
    match store.node_inventory().await {
        Ok(nodes) => nodes
            .into_iter()
            .filter(|n| {
                n.state != NodeState::Ready || heartbeat_missed(n.last_heartbeat_at, now, NODE_DOWN_AFTER)
            })
            .map(|n| n.id)
            .collect(),
        Err(error) => {
            tracing::warn!(error = %crate::reconcile::error_chain(&error), "reading nodes for a one-off");
            HashSet::new()
        }
    }
}

/// The scheduler's view of one node.
pub(crate) fn capacity(node: &NodeRecord, down: bool) -> NodeCapacity {
    NodeCapacity {
        node: node.id,
        name: node.name.clone(),
        memory_bytes: node.memory_capacity_bytes,
        // A node registered without its CPU (by an older agent) is limited by memory alone.
        cpu_millicores: match node.cpu_millicores {
            0 => u64::MAX,
            cpu => cpu,
        },
        labels: node.labels.clone(),
        status: match (down, node.state) {
            (true, _) => NodeStatus::Down,
            (false, NodeState::Ready) => NodeStatus::Ready,
            (false, NodeState::Cordoned) => NodeStatus::Cordoned,
            (false, NodeState::Draining) => NodeStatus::Draining,
        },
    }
}

/// What the controller remembers between passes about nodes and pending instances.
pub(crate) struct NodeWatch {
    policy: NodeHealthPolicy,
    started: Instant,
    down: Mutex<HashSet<NodeId>>,
    /// What the last pass wrote as pending, so an unchanged list is not written again.
    pending: Mutex<Option<Vec<(String, u32, String)>>>,
}

impl NodeWatch {
    pub(crate) fn new(policy: NodeHealthPolicy) -> Self {
        Self {
            policy,
            started: Instant::now(),
            down: Mutex::new(HashSet::new()),
            pending: Mutex::new(None),
        }
    }

    /// Every node's capacity and status now; logs each node that went down or came back since the last pass.
    pub(crate) async fn capacities(&self, store: &Store) -> Result<Vec<NodeCapacity>, StoreError> {
        let now = Utc::now();
        let may_mark_down = self.started.elapsed() >= self.policy.startup_grace;
        let nodes = store.node_inventory().await?;
        let mut down = self.down.lock().expect("down nodes lock");
        let mut capacities = Vec::with_capacity(nodes.len());
        for node in &nodes {
            let missed =
                may_mark_down && heartbeat_missed(node.last_heartbeat_at, now, self.policy.down_after);
            match (missed, down.contains(&node.id)) {
                (true, false) => {
                    tracing::warn!(node = %node.id, name = %node.name, last_heartbeat = ?node.last_heartbeat_at,
                        "node is down (no heartbeat for {} s): its instances are placed elsewhere",
                        self.policy.down_after.as_secs());
                    down.insert(node.id);
                }
                (false, true) => {
                    tracing::info!(node = %node.id, name = %node.name,
                        "node is back: instances placed elsewhere meanwhile are stopped on it");
                    down.remove(&node.id);
                }
                _ => {}
            }
            capacities.push(capacity(node, missed));
        }
        down.retain(|id| nodes.iter().any(|n| n.id == *id));
        Ok(capacities)
    }

    /// Writes the instances the last plan could not place, unless they are what the last pass wrote.
    pub(crate) async fn record_pending(
        &self,
        store: &Store,
        unplaced: &[scheduler::Unplaced],
    ) -> Result<(), StoreError> {
        let pending: Vec<PendingInstance> = unplaced
            .iter()
            .map(|u| PendingInstance {
                app: u.app,
                process_type: u.process_type.clone(),
                index: u.index,
                reason: u.reason.to_string(),
                since: Utc::now(),
            })
            .collect();
        let key: Vec<(String, u32, String)> = pending
            .iter()
            .map(|p| (format!("{}/{}", p.app, p.process_type), p.index, p.reason.clone()))
            .collect();
        if self.pending.lock().expect("pending lock").as_ref() == Some(&key) {
            return Ok(());
        }
        for u in unplaced {
            tracing::warn!(app = %u.app, process = %u.process_type, index = u.index, reason = %u.reason,
                "instance pending");
        }
        store.replace_pending_instances(&pending).await?;
        *self.pending.lock().expect("pending lock") = Some(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_older_than_the_limit_are_missed() {
        let now = Utc::now();
        let limit = Duration::from_secs(30);
        let cases = [
            (None, false),
            (Some(now), false),
            (Some(now - chrono::Duration::seconds(29)), false),
            (Some(now - chrono::Duration::seconds(31)), true),
            // A clock ahead of ours is not a missed heartbeat.
            (Some(now + chrono::Duration::seconds(60)), false),
        ];
        for (last, missed) in cases {
            assert_eq!(heartbeat_missed(last, now, limit), missed, "{last:?}");
        }
    }
}
