//! The writable-layer bound: an instance that writes past its `disk_bytes` gets ENOSPC, another instance
//! writes its own share undisturbed, and the instance's disk is unmounted when it stops.

use std::path::Path;
use std::time::{Duration, Instant};

use agent::Agent;
use agent_contract::InstanceState;

use crate::node::{assert_nothing_left, runtime, setup, spec, wait_for};

/// `dd` of `mib` MiB into the instance's root filesystem, then what it said and its status, then a listener
/// (so the instance counts as running while the test looks).
fn writer(mib: u32) -> String {
    format!(
        "dd if=/dev/zero of=/fill bs=1048576 count={mib} 2>/tmp/dd.err; echo dd-status=$?; \
         cat /tmp/dd.err; echo dd-done; exec httpd -f -p $PORT -h /"
    )
}

fn instance_mounts(data_dir: &Path, short: &str) -> Vec<String> {
    let dir = data_dir.join("instances").join(short);
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&dir.display().to_string()))
        .map(str::to_owned)
        .collect()
}

pub fn writes_past_the_disk_bound_fail() {
    let s = setup(Duration::from_secs(2));
    // What a crashed agent leaves: an instance's disk still mounted. The next start removes it.
    let crashed = s.data_dir.join("instances/ileftover/disk");
    std::fs::create_dir_all(&crashed).unwrap();
    let mounted = std::process::Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=1m",
            "berth-test",
            &crashed.display().to_string(),
        ])
        .status()
        .unwrap();
    assert!(mounted.success());
    assert!(!instance_mounts(&s.data_dir, "ileftover").is_empty());
    runtime().block_on(async {
        let (agent, mut reports) = Agent::start(s.cfg.clone()).await.unwrap();
        let left = instance_mounts(&s.data_dir, "ileftover");
        assert!(
            left.is_empty(),
            "a crashed agent's mount survived the start: {left:?}"
        );
        // 16 MiB of disk, well below its 96 MiB of memory: the disk bound is the one it meets.
        let mut filler = spec(&s.digest, &writer(64));
        filler.limits.disk_bytes = 16 * 1024 * 1024;
        let mut neighbour = spec(&s.digest, &writer(8));
        neighbour.limits.disk_bytes = 16 * 1024 * 1024;
        agent.set_desired(vec![filler.clone(), neighbour.clone()]);

        let log_of =
            |id: vocabulary::InstanceId| s.data_dir.join("instances").join(id.short()).join("output.log");
        let deadline = Instant::now() + Duration::from_secs(60);
        let (filled, neighboured) = loop {
            let read = |id| std::fs::read_to_string(log_of(id)).unwrap_or_default();
            let (a, b) = (read(filler.id), read(neighbour.id));
            if (a.contains("dd-done") && b.contains("dd-done")) || Instant::now() > deadline {
                break (a, b);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        println!("  filler (64 MiB into 16 MiB): {}", filled.replace('\n', " | "));
        println!(
            "  neighbour (8 MiB into 16 MiB): {}",
            neighboured.replace('\n', " | ")
        );
        assert!(filled.contains("No space left on device"), "{filled}");
        assert!(!filled.contains("dd-status=0"), "{filled}");
        assert!(neighboured.contains("dd-status=0"), "{neighboured}");

        // The disk is a mount of the instance's while it runs, and gone once it stops.
        let short = filler.id.short();
        let mounts = instance_mounts(&s.data_dir, &short);
        assert!(mounts.iter().any(|l| l.contains(" - tmpfs ")), "{mounts:?}");
        agent.set_desired(vec![neighbour.clone()]);
        wait_for(&mut reports, "filler gone", |r| {
            r.instances.iter().all(|i| i.id != filler.id)
        })
        .await;
        let mounts = instance_mounts(&s.data_dir, &short);
        assert!(mounts.is_empty(), "mount left after stop: {mounts:?}");
        // The neighbour runs on.
        let report = wait_for(&mut reports, "neighbour running", |r| {
            r.instances
                .iter()
                .any(|i| i.id == neighbour.id && i.state == InstanceState::Running)
        })
        .await;
        assert_eq!(report.instances.len(), 1);
        agent.shutdown().await;
    });
    assert_nothing_left(&s.names, &s.data_dir);
}
