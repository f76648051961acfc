//! The scheduler benchmark: places 100,000 instances of 10,000 apps on 10,000 simulated nodes through the real
//! planner, and prints placements per second and the spread quality. The baseline is the memory-only planner
//! Berth had before (every placement scans all nodes for the most free memory), run on the same input.
//! Run with `scripts/bench-scheduler` (release mode); arguments: NODES INSTANCES APPS.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use scheduler::{plan, AppDemand, Existing, NodeCapacity, NodeStatus, Plan, Want};
use vocabulary::{AppId, DeployStrategy, InstanceId, NodeId, ProcessType, ReleaseId};

const MIB: u64 = 1024 * 1024;
const REGIONS: [&str; 3] = ["eu", "us", "ap"];

/// A small deterministic generator (xorshift), so every run plans the same input.
struct Rng(u64);

impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

fn nodes(count: usize, rng: &mut Rng) -> Vec<NodeCapacity> {
    (0..count)
        .map(|i| NodeCapacity {
            node: NodeId::new(),
            name: format!("node-{i}"),
            // 8 or 16 GiB, 4 or 8 cores.
            memory_bytes: (8192 << rng.next(2)) * MIB,
            cpu_millicores: 4000 << rng.next(2),
            labels: [
                ("region".to_owned(), REGIONS[i % REGIONS.len()].to_owned()),
                ("zone".to_owned(), format!("z{}", i % 7)),
            ]
            .into(),
            // One node in fifty cordoned, one in a hundred down.
            status: match i % 100 {
                0 => NodeStatus::Down,
                1 | 2 => NodeStatus::Cordoned,
                _ => NodeStatus::Ready,
            },
        })
        .collect()
}

/// `apps` apps sharing `instances` instances (1 to 19 each, the rest to the last ones), one app in five
/// constrained to a region.
fn apps(apps: usize, instances: usize, rng: &mut Rng) -> Vec<AppDemand> {
    let mut left = instances;
    (0..apps)
        .map(|i| {
            let share = left / (apps - i);
            let quantity = if i + 1 == apps {
                left
            } else {
                (share.saturating_sub(9) + rng.next(19) as usize).min(left)
            };
            left -= quantity;
            let constraints: BTreeMap<String, String> = if i % 5 == 0 {
                [("region".to_owned(), REGIONS[i % 3].to_owned())].into()
            } else {
                BTreeMap::new()
            };
            AppDemand {
                app: AppId::new(),
                release: Some(ReleaseId::new()),
                release_processes: [ProcessType::web()].into(),
                formation: [(
                    ProcessType::web(),
                    Want {
                        quantity: u32::try_from(quantity).expect("fits"),
                        memory_bytes: (128 << rng.next(4)) * MIB,
                        cpu_millicores: 100 + 50 * rng.next(4) as u32,
                    },
                )]
                .into(),
                strategy: DeployStrategy::AllAtOnce,
                constraints,
            }
        })
        .collect()
}

/// The planner before this one, for the same input: memory only, no spread, no constraints, scanning every
/// node for each placement. Counts placements.
fn baseline(apps: &[AppDemand], nodes: &[NodeCapacity]) -> usize {
    let mut free: BTreeMap<NodeId, i128> = nodes
        .iter()
        .filter(|n| n.status == NodeStatus::Ready)
        .map(|n| (n.node, i128::from(n.memory_bytes)))
        .collect();
    let mut placed = 0;
    for demand in apps {
        for want in demand.formation.values() {
            for _ in 0..want.quantity {
                let memory = i128::from(want.memory_bytes);
                let best = free
                    .iter()
                    .filter(|(_, f)| **f >= memory)
                    .max_by(|(a_id, a), (b_id, b)| a.cmp(b).then(b_id.cmp(a_id)))
                    .map(|(id, _)| *id);
                if let Some(node) = best {
                    *free.get_mut(&node).expect("picked") -= memory;
                    placed += 1;
                }
            }
        }
    }
    placed
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("arguments: NODES INSTANCES APPS (numbers)"))
        .collect();
    let (node_count, instance_count, app_count) = match args.as_slice() {
        [] => (10_000, 100_000, 10_000),
        [n, i, a] => (*n, *i, *a),
        _ => panic!("arguments: NODES INSTANCES APPS"),
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let nodes = nodes(node_count, &mut rng);
    let apps = apps(app_count, instance_count, &mut rng);

    let mut runs = Vec::new();
    let mut result = Plan::default();
    for _ in 0..3 {
        let start = Instant::now();
        result = plan(&apps, &[], &nodes);
        runs.push(start.elapsed());
    }
    let ours = median(runs);
    let start = Instant::now();
    let baseline_placed = baseline(&apps, &nodes);
    let theirs = start.elapsed();

    let rate = |placed: usize, took: Duration| placed as f64 / took.as_secs_f64();
    println!(
        "input: {node_count} nodes ({} ready), {instance_count} instances of {app_count} apps (1 in 5 constrained to a region)",
        nodes.iter().filter(|n| n.status == NodeStatus::Ready).count()
    );
    println!(
        "planner:  {} placed, {} pending, {:.0} ms (median of 3) = {:.0} placements/s",
        result.place.len(),
        result.unplaced.len(),
        ours.as_secs_f64() * 1000.0,
        rate(result.place.len(), ours)
    );
    println!(
        "baseline: {baseline_placed} placed, {:.0} ms = {:.0} placements/s (memory only, scans every node)",
        theirs.as_secs_f64() * 1000.0,
        rate(baseline_placed, theirs)
    );
    println!(
        "ratio planner / baseline (placements/s): {:.1}",
        rate(result.place.len(), ours) / rate(baseline_placed, theirs)
    );
    steady_state(&apps, &nodes, &result);
    spread_quality(&apps, &nodes, &result);
}

/// The controller's usual pass: everything placed and running, nothing to do. Also checks that it is so.
fn steady_state(apps: &[AppDemand], nodes: &[NodeCapacity], result: &Plan) {
    let existing: Vec<Existing> = result
        .place
        .iter()
        .map(|p| Existing {
            id: InstanceId::new(),
            app: p.app,
            release: p.release,
            process_type: p.process_type.clone(),
            index: p.index,
            node: p.node,
            memory_bytes: p.memory_bytes,
            cpu_millicores: p.cpu_millicores,
            running: true,
            stopping: false,
            replace: false,
        })
        .collect();
    let start = Instant::now();
    let again = plan(apps, &existing, nodes);
    let took = start.elapsed();
    assert!(again.is_empty(), "a placed world must plan nothing");
    println!(
        "steady state: a pass over {} running instances with nothing to do: {:.0} ms",
        existing.len(),
        took.as_secs_f64() * 1000.0
    );
}

/// For each app (one process type here): max − min instances per eligible node; and the share of nodes used.
fn spread_quality(apps: &[AppDemand], nodes: &[NodeCapacity], result: &Plan) {
    let mut per_app: HashMap<AppId, HashMap<NodeId, u32>> = HashMap::new();
    for p in &result.place {
        *per_app.entry(p.app).or_default().entry(p.node).or_default() += 1;
    }
    let mut gaps: BTreeMap<u32, usize> = BTreeMap::new();
    for demand in apps {
        let eligible = nodes
            .iter()
            .filter(|n| n.status == NodeStatus::Ready && n.matches(&demand.constraints))
            .count();
        let counts = per_app.remove(&demand.app).unwrap_or_default();
        let max = counts.values().copied().max().unwrap_or(0);
        let min = if counts.len() < eligible {
            0
        } else {
            counts.values().copied().min().unwrap_or(0)
        };
        *gaps.entry(max - min).or_default() += 1;
    }
    let used: BTreeSet<NodeId> = result.place.iter().map(|p| p.node).collect();
    let ready = nodes.iter().filter(|n| n.status == NodeStatus::Ready).count();
    println!("spread: max - min instances of an app per eligible node -> apps");
    for (gap, count) in gaps {
        println!("  {gap}: {count}");
    }
    println!(
        "nodes used: {} of {ready} ready ({:.1}%)",
        used.len(),
        100.0 * used.len() as f64 / ready as f64
    );
}
