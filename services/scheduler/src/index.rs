//! The nodes as the planner sees them while it plans: free memory and CPU, and sorted indexes of the
//! schedulable nodes by free memory (one over all of them, one per label) so that a placement looks at a few
//! nodes rather than all of them.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use vocabulary::NodeId;

use crate::pending::{Pending, StatusCounts};
use crate::{Existing, NodeCapacity, NodeStatus, Want};

/// Most free memory first, then the lowest node ID; the position in `nodes` rides along.
type Key = (Reverse<i128>, NodeId, usize);

pub(crate) struct NodeIndex<'a> {
    nodes: &'a [NodeCapacity],
    free_memory: Vec<i128>,
    free_cpu: Vec<i128>,
    positions: HashMap<NodeId, usize>,
    /// Ready nodes.
    all: BTreeSet<Key>,
    /// Ready nodes by each of their labels.
    by_label: HashMap<&'a str, HashMap<&'a str, BTreeSet<Key>>>,
}

impl<'a> NodeIndex<'a> {
    /// Free capacity is what is left after every existing instance, stopping ones included (they still run).
    pub(crate) fn new(nodes: &'a [NodeCapacity], existing: &[Existing]) -> Self {
        let positions: HashMap<NodeId, usize> = nodes.iter().enumerate().map(|(i, n)| (n.node, i)).collect();
        let mut free_memory: Vec<i128> = nodes.iter().map(|n| i128::from(n.memory_bytes)).collect();
        let mut free_cpu: Vec<i128> = nodes.iter().map(|n| i128::from(n.cpu_millicores)).collect();
        for instance in existing {
            if let Some(&p) = positions.get(&instance.node) {
                free_memory[p] -= i128::from(instance.memory_bytes);
                free_cpu[p] -= i128::from(instance.cpu_millicores);
            }
        }
        let mut index = Self {
            nodes,
            free_memory,
            free_cpu,
            positions,
            all: BTreeSet::new(),
            by_label: HashMap::new(),
        };
        for (p, node) in nodes.iter().enumerate() {
            // A node listed twice is indexed once.
            if node.status == NodeStatus::Ready && index.positions[&node.node] == p {
                index.insert(p);
            }
        }
        index
    }

    fn key(&self, p: usize) -> Key {
        (Reverse(self.free_memory[p]), self.nodes[p].node, p)
    }

    fn insert(&mut self, p: usize) {
        let key = self.key(p);
        self.all.insert(key);
        for (k, v) in &self.nodes[p].labels {
            self.by_label
                .entry(k.as_str())
                .or_default()
                .entry(v.as_str())
                .or_default()
                .insert(key);
        }
    }

    fn remove(&mut self, p: usize) {
        let key = self.key(p);
        self.all.remove(&key);
        for (k, v) in &self.nodes[p].labels {
            if let Some(set) = self
                .by_label
                .get_mut(k.as_str())
                .and_then(|values| values.get_mut(v.as_str()))
            {
                set.remove(&key);
            }
        }
    }

    /// Whether instances on this node count: it is listed and not down.
    pub(crate) fn holds(&self, node: NodeId) -> bool {
        self.positions
            .get(&node)
            .is_some_and(|&p| self.nodes[p].status != NodeStatus::Down)
    }

    pub(crate) fn is_draining(&self, node: NodeId) -> bool {
        self.positions
            .get(&node)
            .is_some_and(|&p| self.nodes[p].status == NodeStatus::Draining)
    }

    /// The position of a node that [`NodeIndex::holds`].
    pub(crate) fn position(&self, node: NodeId) -> usize {
        self.positions[&node]
    }

    pub(crate) fn id(&self, p: usize) -> NodeId {
        self.nodes[p].node
    }

    /// Books an instance's size on the node at `p`.
    pub(crate) fn take(&mut self, p: usize, want: &Want) {
        let indexed = self.nodes[p].status == NodeStatus::Ready;
        if indexed {
            self.remove(p);
        }
        self.free_memory[p] -= i128::from(want.memory_bytes);
        self.free_cpu[p] -= i128::from(want.cpu_millicores);
        if indexed {
            self.insert(p);
        }
    }

    fn fits(&self, p: usize, want: &Want) -> bool {
        self.free_memory[p] >= i128::from(want.memory_bytes)
            && self.free_cpu[p] >= i128::from(want.cpu_millicores)
    }

    /// The ready node matching `constraints` with room for `want` and the fewest instances of the group
    /// (`spread`: node position → count), then the most free memory, then the lowest ID.
    pub(crate) fn pick(
        &self,
        constraints: &BTreeMap<String, String>,
        want: &Want,
        spread: &HashMap<usize, u32>,
    ) -> Option<usize> {
        // Nodes without an instance of the group: walk the smallest index that the constraints allow, most
        // free memory first; the first that fits wins. Below the wanted memory nothing further fits.
        let candidates = self.candidates(constraints)?;
        let memory = i128::from(want.memory_bytes);
        for &(Reverse(free), _, p) in candidates {
            if free < memory {
                break;
            }
            if spread.get(&p).is_some_and(|c| *c > 0)
                || self.free_cpu[p] < i128::from(want.cpu_millicores)
                || !self.nodes[p].matches(constraints)
            {
                continue;
            }
            return Some(p);
        }
        // Every fitting node already has one: the fewest wins among the group's own nodes.
        spread
            .iter()
            .filter(|(&p, &count)| {
                count > 0
                    && self.nodes[p].status == NodeStatus::Ready
                    && self.nodes[p].matches(constraints)
                    && self.fits(p, want)
            })
            .min_by_key(|(&p, &count)| (count, Reverse(self.free_memory[p]), self.nodes[p].node))
            .map(|(&p, _)| p)
    }

    /// The ready nodes that may match: all of them, or those with the rarest constrained label.
    fn candidates(&self, constraints: &BTreeMap<String, String>) -> Option<&BTreeSet<Key>> {
        if constraints.is_empty() {
            return Some(&self.all);
        }
        let mut smallest: Option<&BTreeSet<Key>> = None;
        for (k, v) in constraints {
            let set = self.by_label.get(k.as_str())?.get(v.as_str())?;
            if smallest.is_none_or(|s| set.len() < s.len()) {
                smallest = Some(set);
            }
        }
        smallest
    }

    /// Why [`NodeIndex::pick`] found nothing, for people. Scans every node: it runs once per unplaced group.
    pub(crate) fn why_not(&self, constraints: &BTreeMap<String, String>, want: &Want) -> Pending {
        let mut all = StatusCounts::default();
        let mut matching = StatusCounts::default();
        let mut most_memory: Option<usize> = None;
        let mut most_cpu: Option<usize> = None;
        for (p, node) in self.nodes.iter().enumerate() {
            all.count(node.status);
            if !node.matches(constraints) {
                continue;
            }
            matching.count(node.status);
            if node.status != NodeStatus::Ready {
                continue;
            }
            let better = |best: Option<usize>, free: &[i128]| {
                best.is_none_or(|b| (free[p], Reverse(node.node)) > (free[b], Reverse(self.nodes[b].node)))
            };
            if better(most_memory, &self.free_memory) {
                most_memory = Some(p);
            }
            if better(most_cpu, &self.free_cpu) {
                most_cpu = Some(p);
            }
        }
        if all.ready == 0 {
            return Pending::NoSchedulableNode { nodes: all };
        }
        let (Some(m), Some(c)) = (most_memory, most_cpu) else {
            return Pending::NoNodeMatches {
                constraints: constraints.clone(),
                nodes: matching,
            };
        };
        let free = |f: i128| u64::try_from(f).unwrap_or(0);
        Pending::NoRoom {
            memory_bytes: want.memory_bytes,
            cpu_millicores: want.cpu_millicores,
            most_memory: (free(self.free_memory[m]), self.nodes[m].name.clone()),
            most_cpu: (free(self.free_cpu[c]), self.nodes[c].name.clone()),
        }
    }
}
