//! Placement across many nodes: fit, spread, constraints, node status and pending reasons.

use super::*;

const MIB: u64 = 1024 * 1024;

fn web() -> ProcessType {
    ProcessType::web()
}

type Labels<'a> = &'a [(&'a str, &'a str)];
/// A node: memory in MiB, CPU in millicores, labels, status.
type NodeSpec<'a> = (u64, u64, Labels<'a>, NodeStatus);

/// Nodes named node-a, node-b, … with ascending IDs.
fn cluster(specs: &[NodeSpec<'_>]) -> Vec<NodeCapacity> {
    let mut ids: Vec<NodeId> = specs.iter().map(|_| NodeId::new()).collect();
    ids.sort();
    specs
        .iter()
        .zip(ids)
        .enumerate()
        .map(|(i, ((memory_mib, cpu, labels, status), id))| NodeCapacity {
            node: id,
            name: format!("node-{}", char::from(b'a' + i as u8)),
            memory_bytes: memory_mib * MIB,
            cpu_millicores: *cpu,
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            status: *status,
        })
        .collect()
}

fn app(quantity: u32, memory_mib: u64, cpu: u32, constraints: &[(&str, &str)]) -> AppDemand {
    AppDemand {
        app: AppId::new(),
        release: Some(ReleaseId::new()),
        release_processes: [web()].into(),
        formation: [(
            web(),
            Want {
                quantity,
                memory_bytes: memory_mib * MIB,
                cpu_millicores: cpu,
            },
        )]
        .into(),
        strategy: DeployStrategy::AllAtOnce,
        constraints: constraints
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

fn running(demand: &AppDemand, index: u32, node: NodeId) -> Existing {
    let want = demand.formation[&web()];
    Existing {
        id: InstanceId::new(),
        app: demand.app,
        release: demand.release.expect("released"),
        process_type: web(),
        index,
        node,
        memory_bytes: want.memory_bytes,
        cpu_millicores: want.cpu_millicores,
        running: true,
        stopping: false,
        replace: false,
    }
}

/// Node names the plan places on, in index order, or the pending reasons.
fn outcome(plan: &Plan, nodes: &[NodeCapacity]) -> Vec<String> {
    let name = |id: NodeId| {
        nodes
            .iter()
            .find(|n| n.node == id)
            .expect("known node")
            .name
            .clone()
    };
    let mut out: Vec<(u32, String)> = plan.place.iter().map(|p| (p.index, name(p.node))).collect();
    out.extend(plan.unplaced.iter().map(|u| (u.index, u.reason.to_string())));
    out.sort();
    out.into_iter().map(|(_, s)| s).collect()
}

const READY: NodeStatus = NodeStatus::Ready;
const NO_LABELS: &[(&str, &str)] = &[];
const EU: &[(&str, &str)] = &[("region", "eu")];
const US: &[(&str, &str)] = &[("region", "us")];

#[test]
fn fits_memory_and_cpu_or_says_why_not() {
    type Case = (&'static str, u32, u64, u32, &'static [&'static str]);
    // Two nodes: A has 1024 MB and 1000 millicores, B 512 MB and 4000.
    let cases: &[Case] = &[
        ("small fits the roomiest", 1, 256, 100, &["node-a"]),
        ("memory only fits on A", 1, 768, 100, &["node-a"]),
        ("CPU only fits on B", 1, 256, 2000, &["node-b"]),
        ("two spread", 2, 256, 100, &["node-a", "node-b"]),
        (
            "memory nowhere",
            1,
            2048,
            100,
            &["no node has 2048 MB of memory free (largest free: 1024 MB on node-a)"],
        ),
        (
            "CPU nowhere",
            1,
            256,
            5000,
            &["no node has 5000 millicores of CPU free (largest free: 4000 on node-b)"],
        ),
        (
            "both but not on one node",
            1,
            768,
            2000,
            &["no node has both 768 MB of memory and 2000 millicores of CPU free"],
        ),
        (
            "the third waits: A's CPU is used up",
            3,
            256,
            1000,
            &["node-a", "node-b", "node-b"],
        ),
        (
            "the fourth cannot fit: A has memory, B has CPU",
            4,
            256,
            1000,
            &[
                "node-a",
                "node-b",
                "node-b",
                "no node has both 256 MB of memory and 1000 millicores of CPU free",
            ],
        ),
    ];
    for (name, quantity, memory, cpu, want) in cases {
        let nodes = cluster(&[(1024, 1000, NO_LABELS, READY), (512, 4000, NO_LABELS, READY)]);
        let plan = plan(&[app(*quantity, *memory, *cpu, &[])], &[], &nodes);
        assert_eq!(outcome(&plan, &nodes), *want, "{name}");
    }
}

#[test]
fn spreads_one_type_of_an_app_evenly() {
    let nodes = cluster(&[
        (4096, 8000, NO_LABELS, READY),
        (4096, 8000, NO_LABELS, READY),
        (4096, 8000, NO_LABELS, READY),
    ]);
    let demand = app(6, 256, 100, &[]);
    let plan = plan_of(&demand, &[], &nodes);
    assert_eq!(
        outcome(&plan, &nodes),
        ["node-a", "node-b", "node-c", "node-a", "node-b", "node-c"]
    );

    // Two already run on A: a scale-up to four fills B and C first, though A has the most memory.
    let nodes = cluster(&[
        (8192, 8000, NO_LABELS, READY),
        (4096, 8000, NO_LABELS, READY),
        (4096, 8000, NO_LABELS, READY),
    ]);
    let demand = app(4, 256, 100, &[]);
    let have = [
        running(&demand, 1, nodes[0].node),
        running(&demand, 2, nodes[0].node),
    ];
    let plan = plan_of(&demand, &have, &nodes);
    assert_eq!(outcome(&plan, &nodes), ["node-b", "node-c"]);
}

#[test]
fn constraints_restrict_nodes() {
    type Case = (
        &'static str,
        &'static [(&'static str, &'static str)],
        u32,
        &'static [&'static str],
    );
    let cases: &[Case] = &[
        ("no constraint: anywhere", &[], 3, &["node-a", "node-b", "node-c"]),
        ("eu only", EU, 3, &["node-b", "node-c", "node-b"]),
        (
            "two pairs",
            &[("region", "eu"), ("disk", "ssd")],
            2,
            &["node-c", "node-c"],
        ),
        (
            "no such value",
            &[("region", "ap")],
            1,
            &["no node matches region=ap"],
        ),
        ("no such key", &[("gpu", "yes")], 1, &["no node matches gpu=yes"]),
        (
            "pairs no single node has",
            &[("region", "us"), ("disk", "ssd")],
            1,
            &["no node matches disk=ssd,region=us"],
        ),
    ];
    for (name, constraints, quantity, want) in cases {
        let nodes = cluster(&[
            (8192, 8000, US, READY),
            (4096, 8000, EU, READY),
            (4096, 8000, &[("region", "eu"), ("disk", "ssd")], READY),
        ]);
        let plan = plan(&[app(*quantity, 256, 100, constraints)], &[], &nodes);
        assert_eq!(outcome(&plan, &nodes), *want, "{name}");
    }
}

#[test]
fn unschedulable_nodes_take_nothing_new() {
    use NodeStatus::{Cordoned, Down, Draining};
    type Case = (
        &'static str,
        &'static [NodeStatus],
        &'static [(&'static str, &'static str)],
        &'static str,
    );
    let cases: &[Case] = &[
        ("one ready among others", &[Cordoned, READY, Down], &[], "node-b"),
        (
            "none ready",
            &[Cordoned, Cordoned, Down],
            &[],
            "no schedulable node (2 cordoned, 1 down)",
        ),
        (
            "draining too",
            &[Draining, Down, Down],
            &[],
            "no schedulable node (1 draining, 2 down)",
        ),
        ("no nodes at all", &[], &[], "no schedulable node (no nodes)"),
        (
            "the matching node is cordoned",
            &[READY, Cordoned, READY],
            EU,
            "no schedulable node matches region=eu (1 cordoned)",
        ),
    ];
    for (name, statuses, constraints, want) in cases {
        let specs: Vec<NodeSpec<'_>> = statuses
            .iter()
            .enumerate()
            .map(|(i, s)| (1024, 4000, if i == 1 { EU } else { US }, *s))
            .collect();
        let nodes = cluster(&specs);
        let plan = plan(&[app(1, 256, 100, constraints)], &[], &nodes);
        assert_eq!(outcome(&plan, &nodes), [*want], "{name}");
    }
}

#[test]
fn cordoned_nodes_keep_what_they_run() {
    let nodes = cluster(&[
        (1024, 4000, NO_LABELS, NodeStatus::Cordoned),
        (1024, 4000, NO_LABELS, READY),
    ]);
    let demand = app(2, 256, 100, &[]);
    let have = [running(&demand, 1, nodes[0].node)];
    let plan = plan_of(&demand, &have, &nodes);
    assert!(plan.stop.is_empty(), "{plan:?}");
    assert_eq!(outcome(&plan, &nodes), ["node-b"]);
}

#[test]
fn instances_on_down_nodes_are_replaced_and_stopped() {
    let nodes = cluster(&[
        (1024, 4000, NO_LABELS, NodeStatus::Down),
        (1024, 4000, NO_LABELS, READY),
        (1024, 4000, NO_LABELS, READY),
    ]);
    let demand = app(2, 256, 100, &[]);
    let have = [
        running(&demand, 1, nodes[0].node),
        running(&demand, 2, nodes[1].node),
    ];
    let plan = plan_of(&demand, &have, &nodes);
    // web.1 is gone with its node: a new web.1 goes to C (B has web.2), and the old one is stopped so that
    // the node, when it returns, no longer runs it.
    assert_eq!(outcome(&plan, &nodes), ["node-c"]);
    assert_eq!(plan.place[0].index, 1);
    assert_eq!(plan.stop, vec![have[0].id]);

    // A node the inventory no longer lists counts as down.
    let plan = plan_of(&demand, &have, &nodes[1..]);
    assert_eq!(plan.stop, vec![have[0].id]);
    assert_eq!(plan.place.len(), 1);
}

fn plan_of(demand: &AppDemand, have: &[Existing], nodes: &[NodeCapacity]) -> Plan {
    plan(std::slice::from_ref(demand), have, nodes)
}

#[test]
fn draining_moves_instances_by_rolling_replacement() {
    let nodes = cluster(&[
        (1024, 4000, NO_LABELS, NodeStatus::Draining),
        (1024, 4000, NO_LABELS, READY),
    ]);
    let demand = app(1, 256, 100, &[]);
    let old = running(&demand, 1, nodes[0].node);

    // The replacement starts elsewhere; the old one keeps serving.
    let first = plan_of(&demand, std::slice::from_ref(&old), &nodes);
    assert_eq!(outcome(&first, &nodes), ["node-b"]);
    assert!(first.stop.is_empty(), "{first:?}");

    // Starting: nothing more.
    let mut fresh = running(&demand, 1, nodes[1].node);
    fresh.running = false;
    let second = plan_of(&demand, &[old.clone(), fresh.clone()], &nodes);
    assert!(second.is_empty(), "{second:?}");

    // Running: the old one stops.
    fresh.running = true;
    let third = plan_of(&demand, &[old.clone(), fresh], &nodes);
    assert!(third.place.is_empty(), "{third:?}");
    assert_eq!(third.stop, vec![old.id]);
}

#[test]
fn the_same_inputs_in_any_order_give_the_same_plan() {
    let nodes = cluster(&[
        (2048, 4000, EU, READY),
        (2048, 4000, EU, READY),
        (2048, 4000, US, READY),
        (2048, 4000, US, READY),
    ]);
    let apps = [app(5, 256, 100, EU), app(3, 512, 250, &[]), app(2, 128, 100, US)];
    let first = plan(&apps, &[], &nodes);
    let mut reversed = nodes.clone();
    reversed.reverse();
    assert_eq!(plan(&apps, &[], &reversed), first);
    assert_eq!(plan(&apps, &[], &nodes), first);
    assert_eq!(first.place.len(), 10);
}
