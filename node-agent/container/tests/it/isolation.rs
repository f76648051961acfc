//! What the app can see: its own PIDs, hostname, cgroup, root filesystem, devices; and what it cannot.

use std::os::fd::AsRawFd;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use crate::fixture::{host_mounts_below, run, Fixture};

pub const TESTS: &[crate::Test] = &[
    ("pid_namespace_and_hostname", pid_namespace_and_hostname),
    ("memory_limit_visible_inside", memory_limit_visible_inside),
    ("overlay_writes_stay_in_upper", overlay_writes_stay_in_upper),
    ("no_descriptor_leaks", no_descriptor_leaks),
    ("minimal_dev_and_read_only_sys", minimal_dev_and_read_only_sys),
    (
        "isolated_network_has_only_loopback_up",
        isolated_network_has_only_loopback_up,
    ),
];

fn pid_namespace_and_hostname() {
    let f = Fixture::new();
    let out = run(&f.spec("echo $$; hostname; ls /proc | grep -c '^[0-9]'; cat /proc/1/cmdline"));
    assert_eq!(out.code, Some(0));
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "2", "the app is PID 2, right after the init");
    assert_eq!(lines[1], "box-test");
    let pids: u32 = lines[2].parse().unwrap();
    assert!(pids <= 4, "the app sees only its own processes, saw {pids}");
    assert!(
        lines[3].contains(container::INIT_ARG),
        "PID 1 is the init: {:?}",
        lines[3]
    );
}

fn memory_limit_visible_inside() {
    let f = Fixture::new();
    let name = format!("berth-ctest-{}", std::process::id());
    let v1 = Path::new("/sys/fs/cgroup/memory/cgroup.procs").exists();
    let (dir, limit_file, inside) = if v1 {
        (
            Path::new("/sys/fs/cgroup/memory").join(&name),
            "memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        )
    } else {
        (
            Path::new("/sys/fs/cgroup").join(&name),
            "memory.max",
            "/sys/fs/cgroup/memory.max",
        )
    };
    std::fs::create_dir(&dir).unwrap();
    let result = std::panic::catch_unwind(|| {
        std::fs::write(dir.join(limit_file), "67108864").unwrap();
        let mut spec = f.spec(&format!("cat {inside}; cat /proc/self/cgroup"));
        spec.cgroup_dirs = vec![dir.clone()];
        let out = run(&spec);
        assert_eq!(out.code, Some(0));
        assert_eq!(out.stdout.lines().next(), Some("67108864"), "{}", out.stdout);
        // The cgroup namespace hides the host's cgroup tree.
        assert!(!out.stdout.contains(&name), "{}", out.stdout);
    });
    std::fs::remove_dir(&dir).unwrap();
    result.unwrap();
}

fn overlay_writes_stay_in_upper() {
    let f = Fixture::new();
    let out =
        run(&f.spec("cat /marker && echo new > /marker2 && rm /marker && echo x > /bin/newfile && ls /"));
    assert_eq!(out.code, Some(0));
    assert!(out.stdout.starts_with("from the layer"));
    assert!(f.path("layer/marker").exists(), "the layer is untouched");
    assert!(!f.path("layer/marker2").exists());
    assert!(!f.path("layer/bin/newfile").exists());
    assert_eq!(std::fs::read_to_string(f.path("upper/marker2")).unwrap(), "new\n");
    let whiteout = std::fs::symlink_metadata(f.path("upper/marker")).unwrap();
    assert!(
        whiteout.file_type().is_char_device(),
        "deletion is an overlay whiteout in upper"
    );
    assert!(
        host_mounts_below(f.dir.path()).is_empty(),
        "no mount of the container is visible on the host"
    );
}

fn no_descriptor_leaks() {
    let f = Fixture::new();
    let file = std::fs::File::open("/etc/hostname").unwrap();
    // SAFETY: dup of a valid descriptor; the copy has no CLOEXEC, as a careless caller's would.
    let leaked = unsafe { libc::dup(file.as_raw_fd()) };
    assert!(leaked >= 3);
    // `; true` keeps busybox sh from exec-ing ls in its own place: we list the shell's descriptors.
    let out = run(&f.spec("ls /proc/$$/fd; true"));
    // SAFETY: closing the descriptor we duplicated above.
    unsafe { libc::close(leaked) };
    assert_eq!(out.code, Some(0));
    assert_eq!(out.stdout.split_whitespace().collect::<Vec<_>>(), ["0", "1", "2"]);
}

fn minimal_dev_and_read_only_sys() {
    let f = Fixture::new();
    let script = "ls /dev; echo x > /dev/null; ls /dev/pts; mkdir /sys/x 2>/dev/null && echo sys-writable; \
                  echo y > /dev/shm/f && cat /dev/shm/f; cat /proc/mounts";
    let out = run(&f.spec(script));
    assert_eq!(out.code, Some(0));
    let words: Vec<&str> = out.stdout.split_whitespace().collect();
    for dev in [
        "null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm",
    ] {
        assert!(words.contains(&dev), "/dev/{dev} missing: {}", out.stdout);
    }
    assert!(!words.contains(&"sda"), "no host devices");
    assert!(!out.stdout.contains("sys-writable"));
    assert!(out.stdout.contains("\ny\n"), "/dev/shm is writable");
    assert!(out.stdout.contains("sysfs /sys sysfs ro"), "{}", out.stdout);
}

fn isolated_network_has_only_loopback_up() {
    let f = Fixture::new();
    let mut spec = f.spec("ls /sys/class/net; cat /sys/class/net/lo/flags");
    spec.network = container::Network::Isolated;
    let out = run(&spec);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0], "lo",
        "a new network namespace has only loopback: {lines:?}"
    );
    let flags = u32::from_str_radix(lines[1].trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo is up (IFF_UP), flags {}", lines[1]);
}
