//! The scheduler's pure core: given what every app wants (its current release and formation), the instances
//! that exist, and the nodes with their capacity, labels and status, it returns a plan — instances to place,
//! instances to stop, and the instances it cannot place with the reason why. No IO and no clock: the
//! controller loads the inputs, applies the plan, and calls it again whenever anything changes, until the plan
//! is empty. It does not decide when a node is down or talk to nodes; the controller does.
//!
//! Placement: an instance goes to a schedulable node whose labels match every one of the app's constraints and
//! that has both the memory and the CPU free; among those, the one with the fewest instances of the same app
//! and process type (spread), then the most free memory, then the lowest node ID (determinism). A sorted index
//! of nodes by free memory (one for all nodes and one per label) keeps a placement far from a scan of every
//! node, so a plan for 100,000 instances on 10,000 nodes takes well under a second.
//!
//! Rolling replacement falls out of the rules: a new release's instances are placed beside the old ones,
//! and the old ones are stopped only once as many new ones are running as the formation asks for. A failed
//! start therefore never takes down the instances that serve. A restart is the same rolling replacement: an
//! instance marked `replace` counts as old, and so does every instance on a draining node. With
//! [`DeployStrategy::Rolling`] a replacement goes one instance at a time: at most one new instance is starting,
//! and each new one that runs lets one old one stop. Instances on a down node (or a node the inventory no
//! longer lists) count as gone: they are stopped (their node is told so when it returns) and replaced.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use vocabulary::{AppId, DeployStrategy, InstanceId, NodeId, ProcessType, ReleaseId};

mod index;
mod pending;

use index::NodeIndex;
pub use pending::{Pending, StatusCounts};

/// What one app wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppDemand {
    pub app: AppId,
    /// The release that should run; `None` before the first deploy (nothing runs).
    pub release: Option<ReleaseId>,
    /// Process types the release defines.
    pub release_processes: BTreeSet<ProcessType>,
    /// process type → wanted quantity and size per instance.
    pub formation: BTreeMap<ProcessType, Want>,
    /// How a new release (or a restart) replaces the old instances.
    pub strategy: DeployStrategy,
    /// Node labels every instance's node must have (`region=eu`); empty places anywhere.
    pub constraints: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    pub quantity: u32,
    pub memory_bytes: u64,
    pub cpu_millicores: u32,
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
    pub cpu_millicores: u32,
    /// Accepting connections (the agent said so).
    pub running: bool,
    /// Already asked to stop: it still uses memory but no longer counts as serving.
    pub stopping: bool,
    /// Asked to be replaced by a fresh instance (a restart): treated like an instance of an older release,
    /// so its replacement starts beside it and it stops once the replacements run.
    pub replace: bool,
}

/// Whether a node takes new instances, and what happens to the ones it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeStatus {
    /// Takes new instances.
    Ready,
    /// Takes no new instances; keeps the ones it has.
    Cordoned,
    /// Takes no new instances; the ones it has are replaced elsewhere, then stopped.
    Draining,
    /// Missed its heartbeats: its instances count as gone.
    Down,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCapacity {
    pub node: NodeId,
    /// For people (pending reasons).
    pub name: String,
    pub memory_bytes: u64,
    pub cpu_millicores: u64,
    pub labels: BTreeMap<String, String>,
    pub status: NodeStatus,
}

impl NodeCapacity {
    /// Whether the node's labels satisfy every constraint.
    pub fn matches(&self, constraints: &BTreeMap<String, String>) -> bool {
        constraints
            .iter()
            .all(|(k, v)| self.labels.get(k).is_some_and(|l| l == v))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub app: AppId,
    pub release: ReleaseId,
    pub process_type: ProcessType,
    pub index: u32,
    pub node: NodeId,
    pub memory_bytes: u64,
    pub cpu_millicores: u32,
}

/// A wanted instance that no node can take, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unplaced {
    pub app: AppId,
    pub process_type: ProcessType,
    pub index: u32,
    pub memory_bytes: u64,
    pub reason: Pending,
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
    let mut index = NodeIndex::new(nodes, existing);

    let demands: HashMap<AppId, &AppDemand> = apps.iter().map(|a| (a.app, a)).collect();
    // Live instances by app and process type. Those on down or unknown nodes are gone: stopped (their node
    // learns it when it returns) and not counted, so they are replaced.
    let mut live: HashMap<(AppId, &ProcessType), Vec<&Existing>> = HashMap::new();
    for instance in existing.iter().filter(|e| !e.stopping) {
        if !index.holds(instance.node) {
            plan.stop.push(instance.id);
            continue;
        }
        let wanted = demands.get(&instance.app).is_some_and(|d| {
            d.release.is_some()
                && d.release_processes.contains(&instance.process_type)
                && d.formation
                    .get(&instance.process_type)
                    .is_some_and(|w| w.quantity > 0)
        });
        // Instances of apps that no longer exist, or whose app wants nothing of their kind, go.
        if !wanted {
            plan.stop.push(instance.id);
            continue;
        }
        live.entry((instance.app, &instance.process_type))
            .or_default()
            .push(instance);
    }

    for demand in apps {
        let Some(release) = demand.release else { continue };
        for (process_type, want) in &demand.formation {
            if want.quantity == 0 || !demand.release_processes.contains(process_type) {
                continue;
            }
            let group = live
                .get(&(demand.app, process_type))
                .map(Vec::as_slice)
                .unwrap_or_default();
            let old_of = |e: &Existing| e.release != release || e.replace || index.is_draining(e.node);
            let mut current: Vec<&Existing> = group.iter().filter(|e| !old_of(e)).copied().collect();
            current.sort_by_key(|e| e.index);
            let old: Vec<&Existing> = group.iter().filter(|e| old_of(e)).copied().collect();

            // Too many of the current release: stop the highest indexes.
            let wanted = want.quantity as usize;
            if current.len() > wanted {
                for extra in current.drain(wanted..) {
                    plan.stop.push(extra.id);
                }
            }

            // Too few: place the missing indexes, spread over the nodes.
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
            // Instances of this app and type per node, old ones included (a new release spreads too); scale-down
            // extras are already left out.
            let mut spread: HashMap<usize, u32> = HashMap::new();
            for instance in current.iter().chain(&old) {
                *spread.entry(index.position(instance.node)).or_default() += 1;
            }
            let mut reason: Option<Pending> = None;
            for i in missing {
                let picked = match reason {
                    Some(_) => None,
                    None => index.pick(&demand.constraints, want, &spread),
                };
                match picked {
                    Some(position) => {
                        index.take(position, want);
                        *spread.entry(position).or_default() += 1;
                        plan.place.push(Placement {
                            app: demand.app,
                            release,
                            process_type: process_type.clone(),
                            index: i,
                            node: index.id(position),
                            memory_bytes: want.memory_bytes,
                            cpu_millicores: want.cpu_millicores,
                        });
                    }
                    None => {
                        // Free capacity only shrinks within a plan: the reason holds for the rest of the type.
                        let why = reason
                            .get_or_insert_with(|| index.why_not(&demand.constraints, want))
                            .clone();
                        plan.unplaced.push(Unplaced {
                            app: demand.app,
                            process_type: process_type.clone(),
                            index: i,
                            memory_bytes: want.memory_bytes,
                            reason: why,
                        });
                    }
                }
            }

            // The old instances keep serving until the new ones all run; rolling, each new one that runs lets
            // one old one go (lowest index first).
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

#[cfg(test)]
mod placement_tests;
#[cfg(test)]
mod tests;
