//! Why an instance cannot be placed, in words for the people who wait for it.

use std::collections::BTreeMap;
use std::fmt;

use crate::NodeStatus;

/// How many nodes are in each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCounts {
    pub ready: u32,
    pub cordoned: u32,
    pub draining: u32,
    pub down: u32,
}

impl StatusCounts {
    pub(crate) fn count(&mut self, status: NodeStatus) {
        match status {
            NodeStatus::Ready => self.ready += 1,
            NodeStatus::Cordoned => self.cordoned += 1,
            NodeStatus::Draining => self.draining += 1,
            NodeStatus::Down => self.down += 1,
        }
    }

    /// "2 cordoned, 1 down", or "" when every node is ready.
    fn unschedulable(&self) -> String {
        [
            (self.cordoned, "cordoned"),
            (self.draining, "draining"),
            (self.down, "down"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// The reason an instance waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// No node takes new instances at all.
    NoSchedulableNode { nodes: StatusCounts },
    /// No ready node has every label the app asks for (`nodes` counts the matching ones by status).
    NoNodeMatches {
        constraints: BTreeMap<String, String>,
        nodes: StatusCounts,
    },
    /// Nodes match, but none has room: the most free memory and CPU among them, with the node's name.
    NoRoom {
        memory_bytes: u64,
        cpu_millicores: u32,
        most_memory: (u64, String),
        most_cpu: (u64, String),
    },
}

impl fmt::Display for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pending::NoSchedulableNode { nodes } => {
                let why = nodes.unschedulable();
                if why.is_empty() {
                    write!(f, "no schedulable node (no nodes)")
                } else {
                    write!(f, "no schedulable node ({why})")
                }
            }
            Pending::NoNodeMatches { constraints, nodes } => {
                let labels = constraints
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",");
                let why = nodes.unschedulable();
                if why.is_empty() {
                    write!(f, "no node matches {labels}")
                } else {
                    write!(f, "no schedulable node matches {labels} ({why})")
                }
            }
            Pending::NoRoom {
                memory_bytes,
                cpu_millicores,
                most_memory: (memory_free, memory_node),
                most_cpu: (cpu_free, cpu_node),
            } => {
                let memory_short = memory_free < memory_bytes;
                let cpu_short = *cpu_free < u64::from(*cpu_millicores);
                match (memory_short, cpu_short) {
                    (true, _) => write!(
                        f,
                        "no node has {} of memory free (largest free: {} on {memory_node})",
                        mb(*memory_bytes),
                        mb(*memory_free)
                    ),
                    (false, true) => write!(
                        f,
                        "no node has {cpu_millicores} millicores of CPU free (largest free: {cpu_free} on {cpu_node})"
                    ),
                    (false, false) => write!(
                        f,
                        "no node has both {} of memory and {cpu_millicores} millicores of CPU free",
                        mb(*memory_bytes)
                    ),
                }
            }
        }
    }
}

/// Whole mebibytes, as formations are sized ("512 MB").
fn mb(bytes: u64) -> String {
    format!("{} MB", bytes >> 20)
}
