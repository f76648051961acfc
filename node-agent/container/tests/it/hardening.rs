//! What the app may do: its capabilities, `no_new_privs`, seccomp, resource limits, and what it cannot reach
//! in `/proc`, `/sys` and `/dev`. Every attempt below would succeed for a plain root process in the same
//! namespaces, and every one is harmless if it did (the hostname and domain name are the container's own,
//! `mount` targets the container's private mount namespace, the write to `/proc/sysrq-trigger` is empty).

use std::collections::BTreeSet;

use container::Security;

use crate::fixture::{run, Fixture};

pub const TESTS: &[crate::Test] = &[
    (
        "capabilities_nnp_seccomp_and_limits",
        capabilities_nnp_seccomp_and_limits,
    ),
    ("privileged_operations_fail", privileged_operations_fail),
    ("masked_and_read_only_proc", masked_and_read_only_proc),
    ("dev_has_only_the_listed_devices", dev_has_only_the_listed_devices),
];

/// The value of `Name:` in `/proc/self/status` output.
fn status_field<'a>(status: &'a str, name: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {name} in {status}"))
        .trim()
}

fn capabilities_nnp_seccomp_and_limits() {
    let f = Fixture::new();
    let out = run(&f.spec("cat /proc/self/status; echo nofile=$(ulimit -n) core=$(ulimit -c)"));
    assert_eq!(out.code, Some(0));
    let status = &out.stdout;
    let mask = format!("{:016x}", Security::default().capability_mask());
    assert_eq!(mask, "00000000800005fb");
    for (field, want) in [
        ("CapEff", mask.as_str()),
        ("CapPrm", &mask),
        ("CapBnd", &mask),
        ("CapInh", "0000000000000000"),
        ("CapAmb", "0000000000000000"),
        ("NoNewPrivs", "1"),
        // 2 = filter mode.
        ("Seccomp", "2"),
        ("Seccomp_filters", "2"),
    ] {
        assert_eq!(status_field(status, field), want, "{field}");
    }
    // The hardened limit, or ours if that is lower (limits are never raised).
    let mut ours = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we pass and nothing else.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut ours) }, 0);
    let nofile = container::security::HARDENED_NOFILE.min(ours.rlim_max);
    assert!(status.contains(&format!("nofile={nofile} core=0")), "{status}");
}

fn privileged_operations_fail() {
    let f = Fixture::new();
    // Each line prints `ok NAME` when the attempt fails and `BREACHED NAME` when it works.
    let attempts = [
        ("mount", "mount -t tmpfs none /tmp"),
        ("unshare-mount", "unshare -m true"),
        ("unshare-user", "unshare -U true"),
        ("nsenter", "nsenter -t 1 -m true"),
        ("chroot", "chroot / true"),
        ("hostname", "hostname changed"),
        ("mknod-block", "mknod /tmp/blk b 8 0"),
        ("mknod-char", "mknod /tmp/mem c 1 1"),
        ("domainname", "echo changed > /proc/sys/kernel/domainname"),
        ("sysrq", "true > /proc/sysrq-trigger"),
        ("sys", "mkdir /sys/fs/cgroup/x"),
    ];
    let script: String = attempts
        .iter()
        .map(|(name, cmd)| {
            format!("if {cmd} 2>/dev/null; then echo BREACHED {name}; else echo ok {name}; fi; ")
        })
        .chain(["mknod /tmp/fifo p && echo fifo-made; hostname; cat /proc/sys/kernel/domainname".to_string()])
        .collect();
    let out = run(&f.spec(&script));
    assert_eq!(out.code, Some(0), "{}\n{}", out.stderr, out.stdout);
    for (name, _) in attempts {
        assert!(
            out.stdout.lines().any(|l| l == format!("ok {name}")),
            "{name} was not refused:\n{}",
            out.stdout
        );
    }
    assert!(!out.stdout.contains("BREACHED"), "{}", out.stdout);
    // The syscalls themselves still work for what needs no privilege: the refusals above are not a broken
    // shell.
    assert!(out.stdout.contains("fifo-made"), "{}", out.stdout);
    assert!(out.stdout.contains("\nbox-test\n"), "{}", out.stdout);
}

fn masked_and_read_only_proc() {
    let f = Fixture::new();
    let masked =
        "/proc/keys /proc/timer_list /proc/sched_debug /proc/interrupts /proc/kcore /proc/latency_stats";
    let script = format!(
        "echo masked-bytes=$(cat {masked} 2>/dev/null | wc -c); \
         echo firmware=$(ls -A /sys/firmware | wc -l); \
         echo acpi=$(ls -A /proc/acpi 2>/dev/null | wc -l); \
         echo uptime-bytes=$(cat /proc/uptime | wc -c); \
         cat /proc/mounts"
    );
    // The same files are not empty on the host, or the test would prove nothing.
    let host_interrupts = std::fs::read("/proc/interrupts").unwrap();
    assert!(!host_interrupts.is_empty());
    let out = run(&f.spec(&script));
    assert_eq!(out.code, Some(0), "{}\n{}", out.stderr, out.stdout);
    let o = &out.stdout;
    assert!(o.contains("masked-bytes=0\n"), "{o}");
    assert!(o.contains("firmware=0\n"), "{o}");
    assert!(o.contains("acpi=0\n"), "{o}");
    assert!(!o.contains("uptime-bytes=0\n"), "the rest of /proc works: {o}");
    for read_only in [
        "/proc/sys",
        "/proc/sysrq-trigger",
        "/proc/irq",
        "/proc/bus",
        "/proc/fs",
    ] {
        if !std::path::Path::new(read_only).exists() {
            continue; // Not in this kernel (this one has no /proc/sysrq-trigger).
        }
        assert!(
            o.lines().any(|l| l.split(' ').nth(1) == Some(read_only)
                && l.split(' ')
                    .nth(3)
                    .is_some_and(|opts| opts.split(',').any(|x| x == "ro"))),
            "{read_only} is not mounted read-only:\n{o}"
        );
    }
}

fn dev_has_only_the_listed_devices() {
    let f = Fixture::new();
    let out = run(&f.spec("find /dev -type b; echo ---; find /dev -type c; echo ---; ls -A /dev"));
    assert_eq!(out.code, Some(0), "{}\n{}", out.stderr, out.stdout);
    let parts: Vec<&str> = out.stdout.split("---\n").collect();
    assert_eq!(parts[0], "", "no block devices");
    let chars: BTreeSet<&str> = parts[1].lines().collect();
    let want: BTreeSet<&str> = [
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/random",
        "/dev/urandom",
        "/dev/tty",
        "/dev/pts/ptmx",
    ]
    .into();
    assert_eq!(chars, want);
    let entries: BTreeSet<&str> = parts[2].lines().collect();
    let want: BTreeSet<&str> = [
        "null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm", "fd", "stdin", "stdout",
        "stderr",
    ]
    .into();
    assert_eq!(entries, want);
}
