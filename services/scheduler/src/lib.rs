//! The scheduler's pure core: given what every app wants (its current release and formation), the instances
//! that exist, and the nodes with their capacity, it returns a plan — instances to place and instances to
//! stop. No IO and no clock: the controller loads the inputs, applies the plan, and calls it again whenever
//! anything changes, until the plan is empty.
//!
//! Rolling replacement falls out of the rules: a new release's instances are placed beside the old ones,
//! and the old ones are stopped only once as many new ones are running as the formation asks for. A failed
//! start therefore never takes down the instances that serve. A restart is the same rolling replacement: an
//! instance marked `replace` counts as old. With [`DeployStrategy::Rolling`] a replacement goes one instance
//! at a time: at most one new instance is starting, and each new one that runs lets one old one stop.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use vocabulary::{AppId, DeployStrategy, InstanceId, NodeId, ProcessType, ReleaseId};

/// What one app wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppDemand {
    pub app: AppId,
    /// The release that should run; `None` before the first deploy (nothing runs).
    pub release: Option<ReleaseId>,
    /// Process types the release defines.
    pub release_processes: BTreeSet<ProcessType>,
    /// process type → wanted quantity and memory per instance.
    pub formation: BTreeMap<ProcessType, Want>,
    /// How a new release (or a restart) replaces the old instances.
    pub strategy: DeployStrategy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    pub quantity: u32,
    pub memory_bytes: u64,
}

/// An instance that exists (placed earlier), as the scheduler needs to see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    pub id: InstanceId,
    pub app: AppId,
    pub release: ReleaseId,
    pub process_type: ProcessType,
    pub index: u32,
    pub node: NodeId,
    pub memory_bytes: u64,
    /// Accepting connections (the agent said so).
    pub running: bool,
    /// Already asked to stop: it still uses memory but no longer counts as serving.
    pub stopping: bool,
    /// Asked to be replaced by a fresh instance (a restart): treated like an instance of an older release,
    /// so its replacement starts beside it and it stops once the replacements run.
    pub replace: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCapacity {
    pub node: NodeId,
    pub memory_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub app: AppId,
    pub release: ReleaseId,
    pub process_type: ProcessType,
    pub index: u32,
    pub node: NodeId,
    pub memory_bytes: u64,
}

/// A wanted instance that no node has room for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unplaced {
    pub app: AppId,
    pub process_type: ProcessType,
    pub index: u32,
    pub memory_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub place: Vec<Placement>,
    pub stop: Vec<InstanceId>,
    pub unplaced: Vec<Unplaced>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.place.is_empty() && self.stop.is_empty()
    }
}

/// Computes the next plan. Deterministic: the same inputs give the same plan.
pub fn plan(apps: &[AppDemand], existing: &[Existing], nodes: &[NodeCapacity]) -> Plan {
    let mut plan = Plan::default();
    let mut free: BTreeMap<NodeId, i128> = nodes
        .iter()
        .map(|n| (n.node, i128::from(n.memory_bytes)))
        .collect();
    for instance in existing {
        if let Some(f) = free.get_mut(&instance.node) {
            *f -= i128::from(instance.memory_bytes);
        }
    }

    let demands: HashMap<AppId, &AppDemand> = apps.iter().map(|a| (a.app, a)).collect();
    let live: Vec<&Existing> = existing.iter().filter(|e| !e.stopping).collect();

    // Instances of apps that no longer exist, or whose app wants nothing of their kind, go.
    for instance in &live {
        let wanted = demands.get(&instance.app).is_some_and(|d| {
            d.release.is_some()
                && d.release_processes.contains(&instance.process_type)
                && d.formation
                    .get(&instance.process_type)
                    .is_some_and(|w| w.quantity > 0)
        });
        if !wanted {
            plan.stop.push(instance.id);
        }
    }

    for demand in apps {
        let Some(release) = demand.release else { continue };
        for (process_type, want) in &demand.formation {
            if want.quantity == 0 || !demand.release_processes.contains(process_type) {
                continue;
            }
            let of_type = |e: &&&Existing| e.app == demand.app && &e.process_type == process_type;
            let mut current: Vec<&Existing> = live
                .iter()
                .filter(of_type)
                .filter(|e| e.release == release && !e.replace)
                .copied()
                .collect();
            current.sort_by_key(|e| e.index);
            let old: Vec<&Existing> = live
                .iter()
                .filter(of_type)
                .filter(|e| e.release != release || e.replace)
                .copied()
                .collect();

            // Too many of the current release: stop the highest indexes.
            let wanted = want.quantity as usize;
            if current.len() > wanted {
                for extra in current.drain(wanted..) {
                    plan.stop.push(extra.id);
                }
            }

            // Too few: place the missing indexes on the node with the most free memory.
            let taken: BTreeSet<u32> = current.iter().map(|e| e.index).collect();
            let running_current = current.iter().filter(|e| e.running).count();
            let rolling = demand.strategy == DeployStrategy::Rolling && !old.is_empty();
            // Rolling: while old instances remain, one new instance starts at a time.
            let room = if rolling {
                usize::from(current.len() == running_current)
            } else {
                usize::MAX
            };
            let missing = (1..=want.quantity)
                .filter(|i| !taken.contains(i))
                .take((wanted - current.len()).min(room));
            for index in missing {
                match pick_node(&free, want.memory_bytes) {
                    Some(node) => {
                        *free.get_mut(&node).expect("picked from free") -= i128::from(want.memory_bytes);
                        plan.place.push(Placement {
                            app: demand.app,
                            release,
                            process_type: process_type.clone(),
                            index,
                            node,
                            memory_bytes: want.memory_bytes,
                        });
                    }
                    None => plan.unplaced.push(Unplaced {
                        app: demand.app,
                        process_type: process_type.clone(),
                        index,
                        memory_bytes: want.memory_bytes,
                    }),
                }
            }

            // The old release's instances keep serving until the new ones all run; rolling, each new one that
            // runs lets one old one go (lowest index first).
            if running_current >= wanted {
                plan.stop.extend(old.iter().map(|e| e.id));
            } else if rolling {
                let mut old = old;
                old.sort_by_key(|e| (e.index, e.id));
                let keep = wanted - running_current;
                let leave = old.len().saturating_sub(keep);
                plan.stop.extend(old.iter().take(leave).map(|e| e.id));
            }
        }
    }

    plan.stop.sort();
    plan.stop.dedup();
    plan
}

/// The node with the most free memory that fits `memory_bytes`; ties go to the lowest node ID.
fn pick_node(free: &BTreeMap<NodeId, i128>, memory_bytes: u64) -> Option<NodeId> {
    free.iter()
        .filter(|(_, f)| **f >= i128::from(memory_bytes))
        .max_by(|(a_id, a), (b_id, b)| a.cmp(b).then(b_id.cmp(a_id)))
        .map(|(id, _)| *id)
}

#[cfg(test)]
mod tests;
