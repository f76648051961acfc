use super::*;

const MIB: u64 = 1024 * 1024;

struct World {
    app: AppId,
    v1: ReleaseId,
    v2: ReleaseId,
    node_a: NodeId,
    node_b: NodeId,
}

fn world() -> World {
    let mut nodes = [NodeId::new(), NodeId::new()];
    nodes.sort();
    World {
        app: AppId::new(),
        v1: ReleaseId::new(),
        v2: ReleaseId::new(),
        node_a: nodes[0],
        node_b: nodes[1],
    }
}

fn web() -> ProcessType {
    ProcessType::web()
}

fn demand(w: &World, release: Option<ReleaseId>, web_quantity: u32) -> AppDemand {
    AppDemand {
        app: w.app,
        release,
        release_processes: [web()].into(),
        formation: [(
            web(),
            Want {
                quantity: web_quantity,
                memory_bytes: 256 * MIB,
                cpu_millicores: 100,
            },
        )]
        .into(),
        strategy: DeployStrategy::AllAtOnce,
        constraints: BTreeMap::new(),
    }
}

fn existing(w: &World, release: ReleaseId, index: u32, node: NodeId, running: bool) -> Existing {
    Existing {
        id: InstanceId::new(),
        app: w.app,
        release,
        process_type: web(),
        index,
        node,
        memory_bytes: 256 * MIB,
        cpu_millicores: 100,
        running,
        stopping: false,
        replace: false,
    }
}

fn node(id: NodeId, name: &str, memory_mib: u64) -> NodeCapacity {
    NodeCapacity {
        node: id,
        name: name.to_owned(),
        memory_bytes: memory_mib * MIB,
        cpu_millicores: 8000,
        labels: BTreeMap::new(),
        status: NodeStatus::Ready,
    }
}

fn nodes(w: &World, a_mib: u64, b_mib: u64) -> Vec<NodeCapacity> {
    vec![node(w.node_a, "node-a", a_mib), node(w.node_b, "node-b", b_mib)]
}

#[test]
fn nothing_runs_before_the_first_release() {
    let w = world();
    let plan = plan(&[demand(&w, None, 1)], &[], &nodes(&w, 1024, 1024));
    assert!(plan.is_empty());
}

#[test]
fn spread_beats_free_memory() {
    let w = world();
    let plan = plan(&[demand(&w, Some(w.v1), 2)], &[], &nodes(&w, 1024, 2048));
    let placed: Vec<(u32, NodeId)> = plan.place.iter().map(|p| (p.index, p.node)).collect();
    // Node B has more room, so web.1 goes there; web.2 goes to A, which has none of the app's web yet.
    assert_eq!(placed, vec![(1, w.node_b), (2, w.node_a)]);
    assert!(plan.stop.is_empty());
}

#[test]
fn spreads_when_memory_evens_out() {
    let w = world();
    let plan = plan(&[demand(&w, Some(w.v1), 3)], &[], &nodes(&w, 1024, 1024));
    let on_a = plan.place.iter().filter(|p| p.node == w.node_a).count();
    let on_b = plan.place.iter().filter(|p| p.node == w.node_b).count();
    assert_eq!((on_a, on_b), (2, 1));
}

#[test]
fn keeps_what_matches() {
    let w = world();
    let have = [existing(&w, w.v1, 1, w.node_a, true)];
    let plan = plan(&[demand(&w, Some(w.v1), 1)], &have, &nodes(&w, 1024, 1024));
    assert!(plan.is_empty(), "{plan:?}");
}

#[test]
fn scale_down_stops_highest_indexes() {
    let w = world();
    let have = [
        existing(&w, w.v1, 1, w.node_a, true),
        existing(&w, w.v1, 2, w.node_a, true),
        existing(&w, w.v1, 3, w.node_b, true),
    ];
    let plan = plan(&[demand(&w, Some(w.v1), 1)], &have, &nodes(&w, 1024, 1024));
    let mut want = vec![have[1].id, have[2].id];
    want.sort();
    assert_eq!(plan.stop, want);
    assert!(plan.place.is_empty());
}

#[test]
fn scale_to_zero_stops_everything() {
    let w = world();
    let have = [existing(&w, w.v1, 1, w.node_a, true)];
    let plan = plan(&[demand(&w, Some(w.v1), 0)], &have, &nodes(&w, 1024, 1024));
    assert_eq!(plan.stop, vec![have[0].id]);
}

#[test]
fn new_release_starts_beside_the_old_one() {
    let w = world();
    let have = [existing(&w, w.v1, 1, w.node_a, true)];
    let plan = plan(&[demand(&w, Some(w.v2), 1)], &have, &nodes(&w, 1024, 1024));
    assert_eq!(plan.place.len(), 1);
    assert_eq!(plan.place[0].release, w.v2);
    assert!(
        plan.stop.is_empty(),
        "old release must keep serving until the new one runs"
    );
}

#[test]
fn old_release_stops_once_the_new_one_runs() {
    let w = world();
    let have = [
        existing(&w, w.v1, 1, w.node_a, true),
        existing(&w, w.v2, 1, w.node_b, true),
    ];
    let plan = plan(&[demand(&w, Some(w.v2), 1)], &have, &nodes(&w, 1024, 1024));
    assert_eq!(plan.stop, vec![have[0].id]);
    assert!(plan.place.is_empty());
}

#[test]
fn a_crashing_new_release_never_stops_the_old_one() {
    let w = world();
    let have = [
        existing(&w, w.v1, 1, w.node_a, true),
        existing(&w, w.v2, 1, w.node_b, false),
    ];
    let plan = plan(&[demand(&w, Some(w.v2), 1)], &have, &nodes(&w, 1024, 1024));
    assert!(plan.is_empty(), "{plan:?}");
}

#[test]
fn full_nodes_leave_instances_unplaced() {
    let w = world();
    let plan = plan(&[demand(&w, Some(w.v1), 3)], &[], &nodes(&w, 300, 300));
    assert_eq!(plan.place.len(), 2);
    assert_eq!(plan.unplaced.len(), 1);
    assert_eq!(plan.unplaced[0].index, 3);
}

#[test]
fn stopping_instances_still_hold_memory() {
    let w = world();
    let mut old = existing(&w, w.v1, 1, w.node_a, true);
    old.stopping = true;
    let plan = plan(&[demand(&w, Some(w.v2), 1)], &[old], &nodes(&w, 300, 0));
    assert_eq!(plan.unplaced.len(), 1, "{plan:?}");
}

#[test]
fn instances_of_deleted_apps_stop() {
    let w = world();
    let have = [existing(&w, w.v1, 1, w.node_a, true)];
    let plan = plan(&[], &have, &nodes(&w, 1024, 1024));
    assert_eq!(plan.stop, vec![have[0].id]);
}

#[test]
fn process_types_missing_from_the_release_are_not_placed() {
    let w = world();
    let mut d = demand(&w, Some(w.v1), 1);
    d.formation.insert(
        ProcessType::new("worker").unwrap(),
        Want {
            quantity: 2,
            memory_bytes: 256 * MIB,
            cpu_millicores: 100,
        },
    );
    let plan = plan(&[d], &[], &nodes(&w, 1024, 1024));
    assert_eq!(plan.place.len(), 1);
    assert!(plan.place[0].process_type.is_web());
}

#[test]
fn a_restart_starts_a_fresh_instance_before_stopping_the_old_one() {
    let w = world();
    let mut old = existing(&w, w.v1, 1, w.node_a, true);
    old.replace = true;
    let other = existing(&w, w.v1, 2, w.node_b, true);
    let demands = [demand(&w, Some(w.v1), 2)];
    let caps = nodes(&w, 1024, 1024);

    // The fresh web.1 is placed; nothing stops while it is not running.
    let first = plan(&demands, &[old.clone(), other.clone()], &caps);
    assert_eq!(first.place.len(), 1, "{first:?}");
    assert_eq!(first.place[0].index, 1);
    assert_eq!(first.place[0].release, w.v1);
    assert!(first.stop.is_empty(), "{first:?}");

    // Starting: still nothing stops, and nothing more is placed.
    let fresh_starting = existing(&w, w.v1, 1, first.place[0].node, false);
    let second = plan(&demands, &[old.clone(), other.clone(), fresh_starting], &caps);
    assert!(second.is_empty(), "{second:?}");

    // Running: the marked one stops, the untouched web.2 keeps running.
    let fresh = existing(&w, w.v1, 1, first.place[0].node, true);
    let third = plan(&demands, &[old.clone(), other, fresh], &caps);
    assert!(third.place.is_empty(), "{third:?}");
    assert_eq!(third.stop, vec![old.id]);
}

/// Rolling: (old instances and whether each runs, new instances and whether each runs) → how many new ones are
/// placed and which old ones (by index) stop, for web=3 moving from v1 to v2.
#[test]
fn rolling_replaces_one_instance_at_a_time() {
    type Case = (&'static [bool], &'static [bool], usize, &'static [u32]);
    let cases: &[Case] = &[
        // The deploy starts: one new instance, nothing stops yet.
        (&[true, true, true], &[], 1, &[]),
        // It is starting: nothing more.
        (&[true, true, true], &[false], 0, &[]),
        // It runs: the next one starts and old web.1 goes.
        (&[true, true, true], &[true], 1, &[1]),
        // Old web.1 is gone (stopping instances are not listed here), new 2 starting.
        (&[true, true], &[true, false], 0, &[]),
        (&[true, true], &[true, true], 1, &[2]),
        // The last new one runs: the last old one goes.
        (&[true], &[true, true, true], 0, &[3]),
        // A new instance that never comes up holds the rollout where it is: the old ones keep serving.
        (&[true, true], &[true, false], 0, &[]),
    ];
    for (old_running, new_running, placed, stopped) in cases {
        let w = world();
        let first_old = 4 - old_running.len() as u32;
        let mut have: Vec<Existing> = old_running
            .iter()
            .enumerate()
            .map(|(i, running)| existing(&w, w.v1, first_old + i as u32, w.node_a, *running))
            .collect();
        have.extend(
            new_running
                .iter()
                .enumerate()
                .map(|(i, running)| existing(&w, w.v2, i as u32 + 1, w.node_b, *running)),
        );
        let demand = AppDemand {
            strategy: DeployStrategy::Rolling,
            ..demand(&w, Some(w.v2), 3)
        };
        let plan = plan(&[demand], &have, &nodes(&w, 4096, 4096));
        let case = format!("old {old_running:?}, new {new_running:?}");
        assert_eq!(plan.place.len(), *placed, "{case}: {plan:?}");
        if let Some(p) = plan.place.first() {
            assert_eq!(
                (p.release, p.index),
                (w.v2, new_running.len() as u32 + 1),
                "{case}"
            );
        }
        let mut want: Vec<InstanceId> = have
            .iter()
            .filter(|e| e.release == w.v1 && stopped.contains(&e.index))
            .map(|e| e.id)
            .collect();
        want.sort();
        assert_eq!(plan.stop, want, "{case}");
    }
    // Without old instances (a first deploy, a scale-up) rolling places everything at once.
    let w = world();
    let demand = AppDemand {
        strategy: DeployStrategy::Rolling,
        ..demand(&w, Some(w.v1), 3)
    };
    assert_eq!(plan(&[demand], &[], &nodes(&w, 4096, 4096)).place.len(), 3);
}
