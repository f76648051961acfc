//! Real cgroups, as root: limits and swap are set, the OOM killer's work is counted, nested cgroups are
//! removed with their processes. Each test uses its own parent cgroup and removes it.

use std::path::Path;
use std::process::{Command, Stdio};

use cgroups::{Cgroup, Limits};

const LIMITS: Limits = Limits {
    memory_bytes: 64 << 20,
    cpu_millicores: 500,
    pids_max: 32,
    io_weight: None,
};

fn root_or_skip(test: &str) -> bool {
    if cgroups::available() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test} needs root (CI is set, so not skipping)"
    );
    println!("skipping {test}: needs root");
    false
}

fn parent(test: &str) -> String {
    format!("berth-it-cgroups-{test}-{}", std::process::id())
}

/// Runs `script` with `sh` inside `cgroup` (it joins by writing its own PID first) and waits for it.
fn run_in(cgroup: &Cgroup, script: &str) -> std::process::ExitStatus {
    let joins: String = cgroup
        .dirs()
        .iter()
        .map(|d| format!("echo $$ > {}/cgroup.procs\n", d.display()))
        .collect();
    Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("{joins}{script}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
}

fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file))
        .ok()
        .map(|t| t.trim().to_owned())
}

#[tokio::test]
async fn limits_are_set_and_an_oom_kill_is_counted() {
    if !root_or_skip("limits_are_set_and_an_oom_kill_is_counted") {
        return;
    }
    let parent = parent("oom");
    let cgroup = Cgroup::create(&parent, "one", &LIMITS).unwrap();
    let dirs = cgroup.dirs();
    assert!(!dirs.is_empty());
    let memory = dirs
        .iter()
        .find(|d| d.join("memory.limit_in_bytes").exists() || d.join("memory.max").exists())
        .expect("a memory controller directory");
    let limit = read(memory, "memory.limit_in_bytes").or_else(|| read(memory, "memory.max"));
    assert_eq!(limit.as_deref(), Some("67108864"));
    // No swap beyond the limit, where the kernel accounts swap.
    if let Some(memsw) = read(memory, "memory.memsw.limit_in_bytes") {
        assert_eq!(memsw, "67108864");
    }
    if let Some(swap) = read(memory, "memory.swap.max") {
        assert_eq!(swap, "0");
    }
    assert_eq!(cgroup.oom_kills(), 0);
    // Half a core: 50 ms of every 100 ms; 32 processes.
    let find = |file: &str| dirs.iter().find_map(|d| read(d, file));
    match find("cpu.max") {
        Some(max) => assert_eq!(max, "50000 100000"),
        None => assert_eq!(find("cpu.cfs_quota_us").as_deref(), Some("50000")),
    }
    assert_eq!(find("pids.max").as_deref(), Some("32"));

    // A process within the limit is left alone; one beyond it is killed, and that is counted.
    assert!(run_in(&cgroup, "true").success());
    assert_eq!(cgroup.oom_kills(), 0);
    let status = run_in(&cgroup, "exec tail /dev/zero");
    assert!(!status.success());
    assert!(cgroup.oom_kills() >= 1, "the OOM kill was not counted");

    cgroup.remove().await.unwrap();
    assert!(dirs.iter().all(|d| !d.exists()), "{dirs:?}");
    cgroups::remove_children(&parent, true).await.unwrap();
}

#[tokio::test]
async fn nested_cgroups_are_removed_with_their_processes() {
    if !root_or_skip("nested_cgroups_are_removed_with_their_processes") {
        return;
    }
    let parent = parent("nested");
    let inner = Cgroup::create(&format!("{parent}/builds"), "build-x", &LIMITS).unwrap();
    let dirs = inner.dirs();
    // A process left running in the inner cgroup.
    let joins: String = dirs
        .iter()
        .map(|d| format!("echo $$ > {}/cgroup.procs\n", d.display()))
        .collect();
    let mut sleeper = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("{joins}exec sleep 600"))
        .spawn()
        .unwrap();
    while std::fs::read_to_string(dirs[0].join("cgroup.procs"))
        .unwrap()
        .trim()
        .is_empty()
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // Dropping a `Cgroup` leaves it in place, as a crashed owner would.
    drop(inner);
    assert_eq!(cgroups::children(&parent), ["builds"]);

    cgroups::remove_children(&parent, true).await.unwrap();
    assert!(!sleeper.wait().unwrap().success(), "the sleeper was killed");
    assert!(dirs.iter().all(|d| !d.exists()), "{dirs:?}");
    assert!(cgroups::dirs_of_path(&parent).iter().all(|d| !d.exists()));
}

#[tokio::test]
async fn the_io_weight_is_set_where_the_kernel_offers_one() {
    if !root_or_skip("the_io_weight_is_set_where_the_kernel_offers_one") {
        return;
    }
    let parent = parent("io");
    let weighted = Limits {
        io_weight: Some(300),
        ..LIMITS
    };
    let cgroup = Cgroup::create(&parent, "one", &weighted).unwrap();
    match cgroup.io_weight_setting() {
        Some((file, value)) => {
            println!("io weight in {file}: {value}");
            // v2's io.weight reads back as `default 300`.
            assert!(value == "300" || value == "default 300", "{file}: {value}");
        }
        None => {
            // Only acceptable where no hierarchy has a weight file at all.
            let offered = ["blkio", "unified", ""].iter().any(|h| {
                let dir = Path::new("/sys/fs/cgroup").join(h).join(&parent).join("one");
                ["blkio.bfq.weight", "blkio.weight", "io.weight", "io.bfq.weight"]
                    .iter()
                    .any(|f| dir.join(f).exists())
            });
            assert!(!offered, "a weight file exists but was not used");
            println!("skipping the io weight check: no io weight file on this kernel");
        }
    }
    // A weight outside the range is refused before anything is made.
    let bad = Limits {
        io_weight: Some(0),
        ..LIMITS
    };
    let err = Cgroup::create(&parent, "two", &bad).unwrap_err();
    assert!(err.to_string().contains("io weight 0"), "{err}");
    cgroup.remove().await.unwrap();
    cgroups::remove_children(&parent, true).await.unwrap();
    assert!(cgroups::dirs_of_path(&parent).iter().all(|d| !d.exists()));
}
