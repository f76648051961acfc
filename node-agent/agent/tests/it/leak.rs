//! Starts and stops 200 instances, in batches, on one agent, and then looks for anything left behind:
//! cgroups, network namespaces, veths, nftables set elements, mounts, instance directories and processes.

use std::path::Path;
use std::time::{Duration, Instant};

use agent::Agent;
use agent_contract::{InstanceSpec, InstanceState};

use crate::node::{assert_nothing_left, runtime, setup, spec, wait_for, Names};

const INSTANCES: usize = 200;
const BATCH: usize = 25;

/// What is on the host now, counted by kind.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Census {
    pub cgroups: usize,
    pub netns: usize,
    pub veths: usize,
    pub set_elements: usize,
    pub mounts: usize,
    pub instance_dirs: usize,
    pub child_processes: usize,
}

fn output(program: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(program).args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Processes whose parent is this test process (the agent runs containers as its children).
fn children() -> usize {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            // `pid (comm) state ppid ...`: comm may hold spaces, so split after its last ')'.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .is_some_and(|ppid| ppid == me)
        })
        .count()
}

pub fn census(names: &Names, data_dir: &Path) -> Census {
    let table = format!("berth_{}", names.bridge);
    let set_elements = ["ports", "attachments"]
        .iter()
        .map(|set| {
            output("nft", &["list", "set", "bridge", &table, set])
                .matches("\"bv")
                .count()
        })
        .sum();
    let instances = data_dir.join("instances");
    Census {
        cgroups: cgroups::children(&names.cgroup_parent).len(),
        netns: output("ip", &["netns", "list"])
            .lines()
            .filter(|l| l.starts_with(&names.netns_prefix))
            .count(),
        veths: output("ip", &["-o", "link", "show", "master", &names.bridge])
            .lines()
            .count(),
        set_elements,
        mounts: std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(&data_dir.display().to_string()))
            .count(),
        instance_dirs: std::fs::read_dir(&instances).map_or(0, |d| d.count()),
        child_processes: children(),
    }
}

pub fn two_hundred_instances_leave_nothing() {
    let s = setup(Duration::from_secs(2));
    let started = Instant::now();
    runtime().block_on(async {
        let (agent, mut reports) = Agent::start(s.cfg.clone()).await.unwrap();
        let before = census(&s.names, &s.data_dir);
        println!("  before: {before:?}");
        for batch in 0..INSTANCES / BATCH {
            let specs: Vec<InstanceSpec> = (0..BATCH)
                .map(|i| {
                    let mut one = spec(&s.digest, "exec httpd -f -p $PORT -h /www");
                    one.index = (batch * BATCH + i + 1) as u32;
                    one.limits.disk_bytes = 4 * 1024 * 1024;
                    one
                })
                .collect();
            agent.set_desired(specs.clone());
            wait_for(&mut reports, &format!("batch {batch} running"), |r| {
                specs.iter().all(|sp| {
                    r.instances
                        .iter()
                        .any(|i| i.id == sp.id && i.state == InstanceState::Running)
                })
            })
            .await;
            let up = census(&s.names, &s.data_dir);
            if batch == 0 {
                println!("  a batch of {BATCH} running: {up:?}");
                // Each instance holds what the census counts, so it can see a leak.
                assert_eq!((up.cgroups, up.netns, up.veths), (BATCH, BATCH, BATCH), "{up:?}");
                assert_eq!(up.set_elements, 2 * BATCH, "{up:?}");
                assert!(up.mounts >= BATCH && up.child_processes >= BATCH, "{up:?}");
            }
            agent.set_desired(Vec::new());
            wait_for(&mut reports, &format!("batch {batch} gone"), |r| {
                r.instances.is_empty()
            })
            .await;
        }
        let after = census(&s.names, &s.data_dir);
        println!(
            "  {INSTANCES} instances started and stopped in batches of {BATCH} ({:?}); left: {after:?}",
            started.elapsed()
        );
        assert_eq!(after, before, "left behind after {INSTANCES} instances");
        agent.shutdown().await;
    });
    assert_nothing_left(&s.names, &s.data_dir);
    assert_eq!(children(), 0, "child processes left after shutdown");
}
