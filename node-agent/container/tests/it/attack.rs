//! The attack suite's hostile probe (`tests/fixtures/hostile/probe.py`) run as a tenant's app on the real
//! stack: every attack it makes must be refused. The stack comes from the cache the builder's tests share
//! (built once with debootstrap when missing, never per test).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use container::{ContainerSpec, Network};
use image_store::ImageStore;
use stack::StackConfig;

use crate::fixture::{run, runtime};

pub const TESTS: &[crate::Test] = &[
    (
        "hostile_probe_refuses_outside_a_container",
        hostile_probe_refuses_outside_a_container,
    ),
    (
        "hostile_probe_is_refused_everything",
        hostile_probe_is_refused_everything,
    ),
];

fn probe_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hostile/probe.py")
}

/// Needs a `python3` on the host; run armed, the probe must still see that it is not in a container.
fn hostile_probe_refuses_outside_a_container() {
    let Ok(out) = Command::new("python3")
        .arg(probe_path())
        .env("BERTH_HOSTILE_PROBE", "armed")
        .output()
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "needs python3 on the host (CI is set)"
        );
        println!("skipping hostile_probe_refuses_outside_a_container: needs python3");
        return;
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.starts_with("probe: refusing to run"), "{stdout}");
    assert!(!stdout.contains(" | "), "no attack was made: {stdout}");
}

fn hostile_probe_is_refused_everything() {
    let shared = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("berth-stack-cache");
    let store = ImageStore::open(&shared.join("images")).unwrap();
    let config = StackConfig::new(shared.join("stacks"));
    let stack = match runtime().block_on(stack::ensure_stack(&config, &store, &|line| println!("{line}"))) {
        Ok(stack) => stack,
        Err(e) if std::env::var_os("CI").is_none() => {
            println!("skipping hostile_probe_is_refused_everything: no stack ({e})");
            return;
        }
        Err(e) => panic!("the stack is needed (CI is set): {e}"),
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = |name: &str| {
        let path = tmp.path().join(name);
        std::fs::create_dir_all(&path).unwrap();
        path
    };
    store
        .unpack_layer(&stack.layer.digest, &stack.layer.diff_id, &dir("stack"))
        .unwrap();
    std::fs::copy(probe_path(), dir("probe/probe").join("probe.py")).unwrap();
    // The container shares the host's network here (network isolation is not this crate's), so a listener
    // on the host's loopback is reachable: the probe must say so, which shows it can report a breach.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let reachable = listener.local_addr().unwrap().to_string();
    let spec = ContainerSpec {
        hostname: "hostile-1".into(),
        layers: vec![tmp.path().join("stack"), tmp.path().join("probe")],
        upper_dir: dir("upper"),
        work_dir: dir("work"),
        rootfs: dir("rootfs"),
        binds: vec![],
        network: Network::Host,
        cwd: "/".into(),
        env: BTreeMap::from([
            ("PATH".to_string(), "/usr/bin:/bin".to_string()),
            ("BERTH_HOSTILE_PROBE".to_string(), "armed".to_string()),
            ("BERTH_PROBE_FORBIDDEN".to_string(), reachable.clone()),
        ]),
        argv: vec!["python3".into(), "/probe/probe.py".into()],
        cgroup_dirs: vec![],
        security: container::Security::default(),
        // As instances run: root of a user namespace mapped onto an unprivileged host range.
        user_namespace: Some(container::IdMap {
            host_base: 3 << 20,
            size: 65536,
        }),
    };
    let out = run(&spec);
    // The table, for whoever reads the test's output.
    println!("{}", out.stdout);
    let table = &out.stdout;
    let connect = format!("connect to {reachable} | network isolation (nftables) | BREACHED: connected");
    assert!(table.lines().any(|l| l == connect), "{table}");
    let breached: Vec<&str> = table
        .lines()
        .filter(|l| l.contains("BREACHED") && *l != connect)
        .collect();
    assert!(breached.is_empty(), "{table}");
    assert!(!table.contains("PROBE ERROR"), "{table}\n{}", out.stderr);
    assert!(
        table.contains("summary: 47 attacks, 1 breached, 0 probe errors"),
        "{table}\n{}",
        out.stderr
    );
    // Exit code 1: something (the loopback listener) was breached.
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let result = |attack: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{attack} |")))
            .unwrap_or_else(|| panic!("no {attack} line in:\n{table}"))
            .rsplit(" | ")
            .next()
            .unwrap()
            .to_string()
    };
    // Refused by seccomp itself (the kernel would have said something else).
    assert_eq!(result("keyctl"), "refused: EPERM (Operation not permitted)");
    assert_eq!(result("userfaultfd"), "refused: EPERM (Operation not permitted)");
    assert_eq!(
        result("io_uring_setup"),
        "refused: EPERM (Operation not permitted)"
    );
    assert_eq!(
        result("clone3(CLONE_NEWUSER)"),
        "refused: ENOSYS (Function not implemented)"
    );
    assert_eq!(
        result("find a leaked descriptor of ours"),
        "refused: only 0, 1, 2"
    );
    assert!(result("read /proc/interrupts").starts_with("refused"));
    let attacks = table.lines().filter(|l| l.contains(" | ")).count() - 1;
    assert!(attacks >= 35, "only {attacks} attacks ran:\n{table}");
}
