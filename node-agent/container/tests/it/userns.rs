//! The app in a tenant user namespace: root inside, `host_base` on the host, files keep their on-disk owners.

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use container::{BindMount, ContainerSpec, IdMap, Output};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::fixture::{host_mounts_below, run, runtime, Fixture};

pub const TESTS: &[crate::Test] = &[
    (
        "userns_root_inside_host_base_outside",
        userns_root_inside_host_base_outside,
    ),
    (
        "userns_distinct_bases_distinct_host_uids",
        userns_distinct_bases_distinct_host_uids,
    ),
    ("userns_layer_files_keep_owners", userns_layer_files_keep_owners),
    (
        "userns_bind_writes_land_as_container_uids",
        userns_bind_writes_land_as_container_uids,
    ),
    (
        "userns_root_cannot_reach_host_namespaces",
        userns_root_cannot_reach_host_namespaces,
    ),
    ("userns_bad_range_is_refused", userns_bad_range_is_refused),
    (
        "userns_container_dies_with_its_outer_init",
        userns_container_dies_with_its_outer_init,
    ),
    ("without_userns_app_is_host_root", without_userns_app_is_host_root),
    (
        "image_user_from_the_layers_passwd",
        image_user_from_the_layers_passwd,
    ),
    ("image_user_numeric_and_unknown", image_user_numeric_and_unknown),
];

const BASE: u32 = 1 << 20;
const SIZE: u32 = 65536;

fn with_userns(mut spec: ContainerSpec, host_base: u32) -> ContainerSpec {
    spec.user_namespace = Some(IdMap {
        host_base,
        size: SIZE,
    });
    spec
}

fn userns_root_inside_host_base_outside() {
    let f = Fixture::new();
    let out = run(&with_userns(
        f.spec("id -u; id -g; id -G; cat /proc/self/uid_map /proc/self/gid_map"),
        BASE,
    ));
    assert_eq!(out.code, Some(0));
    let lines: Vec<&str> = out.stdout.lines().map(str::trim).collect();
    assert_eq!(lines[..3], ["0", "0", "0"], "{}", out.stdout);
    let map: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(map, ["0", &BASE.to_string(), "65536"], "uid_map: {}", out.stdout);
    let gid_map: Vec<&str> = lines[4].split_whitespace().collect();
    assert_eq!(gid_map, map, "gid_map");
    assert_eq!(host_uid_of_app(&with_userns(f.spec(""), BASE)), BASE);
    assert!(
        host_mounts_below(f.dir.path()).is_empty(),
        "no idmapped mount leaks to the host"
    );
}

fn userns_distinct_bases_distinct_host_uids() {
    let (f, g) = (Fixture::new(), Fixture::new());
    let other = BASE + SIZE;
    let first = host_uid_of_app(&with_userns(f.spec(""), BASE));
    let second = host_uid_of_app(&with_userns(g.spec(""), other));
    assert_eq!((first, second), (BASE, other));
}

/// Starts the spec's app as a long sleep, reads its host uid from the host's /proc, and stops it.
fn host_uid_of_app(spec: &ContainerSpec) -> u32 {
    let mut spec = spec.clone();
    spec.argv = vec![
        "/bin/sh".into(),
        "-c".into(),
        "echo started; exec sleep 60".into(),
    ];
    runtime().block_on(async {
        let init = std::env::current_exe().unwrap();
        let mut c = container::spawn(&init, &spec, Output::Piped).await.unwrap();
        let mut lines = BufReader::new(c.child.stdout.take().unwrap()).lines();
        let first = lines.next_line().await.unwrap();
        let uid = match first.as_deref() {
            Some("started") => app_host_uid(c.pid().unwrap()),
            other => Err(format!("the app did not start: {other:?}")),
        };
        c.signal(nix::sys::signal::Signal::SIGKILL).unwrap();
        c.wait().await.unwrap();
        uid.unwrap()
    })
}

/// The uid of the app (the grandchild of the outer init) on the host, checking that its real, effective,
/// saved and filesystem uids and gids all equal it.
fn app_host_uid(outer: u32) -> Result<u32, String> {
    let pid1 = child_of(outer).ok_or("no PID 1")?;
    let app = child_of(pid1).ok_or("no app")?;
    let status = std::fs::read_to_string(format!("/proc/{app}/status")).map_err(|e| e.to_string())?;
    let ids = |key: &str| -> Vec<String> {
        let line = status.lines().find(|l| l.starts_with(key)).unwrap_or_default();
        line.split_whitespace().skip(1).map(String::from).collect()
    };
    let (uids, gids) = (ids("Uid:"), ids("Gid:"));
    if uids.len() != 4 || uids.iter().chain(&gids).any(|id| *id != uids[0]) {
        return Err(format!("mixed ids: uids {uids:?}, gids {gids:?}"));
    }
    uids[0].parse().map_err(|e| format!("uid {}: {e}", uids[0]))
}

/// The first process (by host /proc) whose parent is `parent`.
fn child_of(parent: u32) -> Option<u32> {
    std::fs::read_dir("/proc").unwrap().flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
        // The command name may hold spaces: the parent PID is the 2nd field after the closing parenthesis.
        let ppid: u32 = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
        (ppid == parent).then_some(pid)
    })
}

fn userns_layer_files_keep_owners() {
    let f = Fixture::new();
    std::fs::write(f.path("layer/app-owned"), "x\n").unwrap();
    std::os::unix::fs::chown(f.path("layer/app-owned"), Some(1000), Some(1000)).unwrap();
    let script = "stat -c '%u:%g' /marker /app-owned /; echo more >> /marker && cat /marker; \
                  echo new > /created; mkdir /d; rm /bin/touch";
    let out = run(&with_userns(f.spec(script), BASE));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[..3], ["0:0", "1000:1000", "0:0"], "owners as on disk");
    assert_eq!(
        lines[3..],
        ["from the layer", "more"],
        "root can write a layer file (copy-up)"
    );
    assert_eq!(
        std::fs::read_to_string(f.path("layer/marker")).unwrap(),
        "from the layer\n",
        "the layer is untouched"
    );
    for name in ["marker", "created", "d"] {
        let meta = std::fs::metadata(f.path("upper").join(name)).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (0, 0),
            "upper/{name} is owned by 0 on disk"
        );
    }
    let whiteout = std::fs::symlink_metadata(f.path("upper/bin/touch")).unwrap();
    assert!(
        whiteout.file_type().is_char_device(),
        "root can delete a layer file"
    );
}

fn userns_bind_writes_land_as_container_uids() {
    let f = Fixture::new();
    let data = f.path("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("host-file"), "h\n").unwrap();
    let config = f.path("config");
    std::fs::write(&config, "setting\n").unwrap();
    let mut spec = f.spec(
        "stat -c %u /data/host-file; echo c > /data/by-root; echo u > /data/by-1000; \
         chown 1000:1000 /data/by-1000; stat -c %u /etc/config; cat /etc/config; \
         echo changed 2>/dev/null > /etc/config || echo read-only",
    );
    spec.binds = vec![
        BindMount {
            source: data.clone(),
            target: "/data".into(),
            read_only: false,
        },
        BindMount {
            source: config.clone(),
            target: "/etc/config".into(),
            read_only: true,
        },
    ];
    let out = run(&with_userns(spec, BASE));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines, ["0", "0", "setting", "read-only"], "a read-only file bind");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "setting\n");
    let owner = |name: &str| {
        let meta = std::fs::metadata(data.join(name)).unwrap();
        (meta.uid(), meta.gid())
    };
    assert_eq!(owner("by-root"), (0, 0));
    assert_eq!(owner("by-1000"), (1000, 1000));
}

fn userns_root_cannot_reach_host_namespaces() {
    let f = Fixture::new();
    // Each probe only acts inside the container's own namespaces; with a user namespace they must all fail.
    let script = "hostname other 2>/dev/null && echo hostname-changed; \
                  mkdir -p /m && mount -t tmpfs none /m 2>/dev/null && echo mounted; \
                  cat /proc/1/environ >/dev/null 2>&1 && echo read-pid1; \
                  echo done";
    let out = run(&with_userns(f.spec(script), BASE));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "done", "no probe may succeed: {}", out.stdout);
    // The same probe as host root with every capability and no seccomp filter does change the container's
    // hostname: the test can fail.
    let mut unconfined = f.spec("hostname other && hostname");
    unconfined.security = container::Security {
        capabilities: caps::all().into_iter().collect(),
        rlimits: vec![],
        seccomp: container::seccomp::SeccompProgram { filters: vec![] },
        user: None,
    };
    let out = run(&unconfined);
    assert_eq!(out.stdout.trim(), "other");
}

/// PID 1's parent-death signal survives its change of filesystem ids: killing the outer init (which cannot
/// forward SIGKILL) takes PID 1 and the app down.
fn userns_container_dies_with_its_outer_init() {
    let f = Fixture::new();
    let mut spec = with_userns(f.spec(""), BASE);
    spec.argv = vec![
        "/bin/sh".into(),
        "-c".into(),
        "echo started; exec sleep 60".into(),
    ];
    let (pid1, app) = runtime().block_on(async {
        let init = std::env::current_exe().unwrap();
        let mut c = container::spawn(&init, &spec, Output::Piped).await.unwrap();
        let mut lines = BufReader::new(c.child.stdout.take().unwrap()).lines();
        assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("started"));
        let pid1 = child_of(c.pid().unwrap());
        let app = pid1.and_then(child_of);
        c.child.start_kill().unwrap();
        c.wait().await.unwrap();
        (pid1.expect("PID 1"), app.expect("the app"))
    });
    // The kernel delivers the parent-death signal right away; give it up to 10 s to finish them off.
    let alive = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            !stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
    };
    for _ in 0..100 {
        if !alive(pid1) && !alive(app) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Do not leave them behind, then fail.
    for pid in [app, pid1] {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    panic!("PID 1 ({pid1}) or the app ({app}) outlived the outer init");
}

fn userns_bad_range_is_refused() {
    let f = Fixture::new();
    for (host_base, size) in [(0, SIZE), (1000, SIZE), (BASE, 0), (u32::MAX - 10, SIZE)] {
        let mut spec = f.spec("true");
        spec.user_namespace = Some(IdMap { host_base, size });
        let out = run(&spec);
        assert_eq!(
            out.code,
            Some(container::SETUP_FAILED_EXIT_CODE),
            "{host_base}+{size}"
        );
        assert!(out.stderr.contains("bad user namespace range"), "{}", out.stderr);
    }
}

fn without_userns_app_is_host_root() {
    let f = Fixture::new();
    let out = run(&f.spec("id -u; cat /proc/self/uid_map; echo x > /created"));
    assert_eq!(out.code, Some(0));
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "0");
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["0", "0", "4294967295"],
        "the host's own user namespace"
    );
    assert_eq!(std::fs::metadata(f.path("upper/created")).unwrap().uid(), 0);
    assert_eq!(host_uid_of_app(&f.spec("")), 0);
}

/// A fixture whose layer has an `/etc/passwd` and `/etc/group` with a non-root `app` user.
fn fixture_with_users() -> Fixture {
    let f = Fixture::new();
    let etc = f.path("layer/etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(etc.join("group"), "root:x:0:\nstaff:x:50:app\napp:x:1000:\n").unwrap();
    f
}

/// An image's `USER app`: ids from the layer's `/etc/passwd` and `/etc/group`, `HOME` from passwd, no
/// capabilities left, and on the host the tenant's range shifted by the uid.
fn image_user_from_the_layers_passwd() {
    let f = fixture_with_users();
    let mut spec = with_userns(
        f.spec("id -u; id -g; id -G; echo $HOME; grep -E '^Cap(Eff|Prm)' /proc/self/status"),
        BASE,
    );
    spec.security.user = Some("app".into());
    let out = run(&spec);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().map(str::trim).collect();
    assert_eq!(
        lines[..4],
        ["1000", "1000", "1000 50", "/home/app"],
        "{}",
        out.stdout
    );
    assert_eq!(lines[4], "CapPrm:\t0000000000000000", "{}", out.stdout);
    assert_eq!(lines[5], "CapEff:\t0000000000000000", "{}", out.stdout);
    assert_eq!(host_uid_of_app(&spec), BASE + 1000);
    // The control: the same spec without a user is container root.
    spec.security.user = None;
    assert_eq!(host_uid_of_app(&spec), BASE);
}

fn image_user_numeric_and_unknown() {
    let f = fixture_with_users();
    // Without a user namespace too, and a uid the image does not list.
    let mut spec = f.spec("id -u; id -g");
    spec.security.user = Some("65534:65533".into());
    let out = run(&spec);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["65534", "65533"]
    );

    spec.security.user = Some("ghost".into());
    let out = run(&spec);
    assert_eq!(
        out.code,
        Some(container::SETUP_FAILED_EXIT_CODE),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("unable to find user ghost"), "{}", out.stderr);
}
