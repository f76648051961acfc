//! One agent, the whole life of instances: serve, isolation seen from inside, crash and restart, stop,
//! shutdown, and nothing left behind.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use agent::{Agent, AgentConfig, Ipv4Net};
use agent_contract::{ExitReason, ImageRef, InstanceSpec, InstanceState, Limits, NodeReport};
use image_store::{ImageConfig, ImageExtras, ImageStore, LayerMode};
use tokio::sync::watch;
use vocabulary::{
    AccountId, AppId, AppName, IdRange, InstanceId, NodeId, ProcessType, ReleaseId, ReleaseVersion,
};

const APPLETS: &[&str] = &[
    "sh", "cat", "echo", "hostname", "ls", "grep", "sleep", "httpd", "nc", "dd", "rm", "stty",
];

pub struct Names {
    pub bridge: String,
    pub cgroup_parent: String,
    pub netns_prefix: String,
    pub subnet: Ipv4Net,
}

fn unused_subnet() -> Ipv4Net {
    let routes = std::process::Command::new("ip")
        .args(["-4", "route", "show", "table", "all"])
        .output()
        .unwrap();
    let routes = String::from_utf8_lossy(&routes.stdout).to_string();
    loop {
        let third: u8 = rand::random_range(100..=250);
        if !routes.contains(&format!("10.203.{third}.")) {
            return format!("10.203.{third}.0/24").parse().unwrap();
        }
    }
}

pub fn image(store: &ImageStore, dir: &Path) -> String {
    let root = dir.join("image-root");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("www")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    std::fs::write(root.join("www/index.html"), "hello from berth\n").unwrap();
    let layer = store.write_layer_from_dir(&root, "", LayerMode::Rootfs).unwrap();
    let config = ImageConfig {
        env: BTreeMap::from([
            ("PATH".into(), "/bin".into()),
            ("FROM_IMAGE".into(), "yes".into()),
        ]),
        working_dir: "/www".into(),
        ..Default::default()
    };
    store.put_image("test", &[layer], &config).unwrap()
}

/// A Dockerfile-like image with `USER nobody`, `WORKDIR /www` and an exec-form `ENTRYPOINT` + `CMD`, and no
/// `/bin/sh`: it runs only if the agent execs the image's argv itself. It serves what it saw: its ids, `HOME`
/// and working directory.
fn image_as_nobody(store: &ImageStore, dir: &Path) -> (String, String) {
    let root = dir.join("nobody-root");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("www")).unwrap();
    std::fs::set_permissions(
        root.join("www"),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
    let layer = store.write_layer_from_dir(&root, "", LayerMode::Rootfs).unwrap();
    let config = ImageConfig {
        env: BTreeMap::from([("PATH".into(), "/bin".into())]),
        working_dir: "/www".into(),
        cmd: vec![
            "echo uid=$(busybox id -u) gid=$(busybox id -g) home=$HOME cwd=$(busybox pwd) > index.html; \
             exec busybox httpd -f -p $PORT -h ."
                .into(),
        ],
        ..Default::default()
    };
    let extras = ImageExtras {
        entrypoint: vec!["/bin/busybox".into(), "sh".into(), "-c".into()],
        user: "nobody".into(),
        ..Default::default()
    };
    let argv: Vec<String> = extras.entrypoint.iter().chain(&config.cmd).cloned().collect();
    let digest = store
        .put_image_with("nobody", &[layer], &config, &extras)
        .unwrap();
    // What the control plane puts in a release without a Procfile.
    (digest, image_store::shell_command(&argv).unwrap())
}

pub fn spec(digest: &str, command: &str) -> InstanceSpec {
    InstanceSpec {
        id: InstanceId::new(),
        app_id: AppId::new(),
        app: AppName::new("testapp").unwrap(),
        account: AccountId::new(),
        release: ReleaseId::new(),
        release_version: ReleaseVersion(1),
        process_type: ProcessType::new("web").unwrap(),
        index: 1,
        image: ImageRef {
            manifest_digest: digest.into(),
        },
        command: command.into(),
        env: BTreeMap::from([("PORT".into(), "5000".into())]),
        port: 5000,
        limits: Limits {
            memory_bytes: 96 * 1024 * 1024,
            cpu_millicores: 500,
            pids_max: 64,
            io_weight: Some(100),
            disk_bytes: 64 * 1024 * 1024,
        },
        // As the control plane sends it: every instance runs in its account's user namespace.
        id_range: Some(IdRange::from_slot(3).unwrap()),
        stop_grace_secs: None,
        boot_timeout_secs: None,
        health_check: None,
    }
}

pub async fn wait_for(
    reports: &mut watch::Receiver<NodeReport>,
    what: &str,
    mut done: impl FnMut(&NodeReport) -> bool,
) -> NodeReport {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        {
            let report = reports.borrow_and_update();
            if done(&report) {
                return report.clone();
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, reports.changed()).await {
            Ok(Ok(())) => {}
            _ => panic!(
                "timed out waiting for {what}; last report: {:?}",
                reports.borrow()
            ),
        }
    }
}

/// Cgroups, namespaces, veths and directories of `instance`, or of any instance if `None`.
pub fn leftovers(names: &Names, data_dir: &Path, instance: Option<InstanceId>) -> Vec<String> {
    let short = instance.map(|i| i.short()).unwrap_or_default();
    let veth = instance
        .map(|i| format!("bv{}", &i.as_uuid().simple().to_string()[..10]))
        .unwrap_or_default();
    let mine = |line: &str| instance.is_none() || line.contains(&short) || line.contains(&veth);
    let mut found = Vec::new();
    for controller in ["memory", "pids", "cpu", "cpuacct", "blkio", "unified"] {
        // Instances' cgroups are PARENT/account-ID/SHORT; an account's goes with its last instance.
        let parent = Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(&names.cgroup_parent);
        let accounts = std::fs::read_dir(&parent).into_iter().flatten().flatten();
        for account in accounts.filter(|e| e.file_name().to_string_lossy().starts_with("account-")) {
            let dir = account.path().join(&short);
            if instance.is_some() && dir.exists() {
                found.push(dir.display().to_string());
            }
            if instance.is_none() {
                found.push(account.path().display().to_string());
            }
        }
    }
    let ip = |args: &[&str]| {
        let out = std::process::Command::new("ip").args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    for line in ip(&["netns", "list"])
        .lines()
        .filter(|l| l.starts_with(&names.netns_prefix) && mine(l))
    {
        found.push(format!("netns {line}"));
    }
    for line in ip(&["-o", "link", "show", "master", &names.bridge])
        .lines()
        .filter(|l| mine(l))
    {
        found.push(format!("link {line}"));
    }
    if instance.is_some() && data_dir.join("instances").join(&short).exists() {
        found.push(format!("instance dir {short}"));
    }
    found
}

fn http_get(address: std::net::SocketAddr) -> String {
    http_get_path(address, "/index.html")
}

pub fn http_get_path(address: std::net::SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).unwrap();
    body
}

/// A test agent's names, image store with the busybox image, and config.
pub struct Setup {
    pub names: Names,
    pub dir: tempfile::TempDir,
    pub digest: String,
    pub data_dir: std::path::PathBuf,
    pub cfg: AgentConfig,
}

pub fn setup(stop_grace: Duration) -> Setup {
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..6];
    let names = Names {
        bridge: format!("bt{tag}"),
        cgroup_parent: format!("berth-test-{tag}"),
        netns_prefix: format!("bt{tag}-"),
        subnet: unused_subnet(),
    };
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&dir.path().join("images")).unwrap();
    let digest = image(&store, dir.path());
    let data_dir = dir.path().join("agent");
    let cfg = AgentConfig {
        node: NodeId::new(),
        data_dir: data_dir.clone(),
        image_store: store,
        init_program: std::env::current_exe().unwrap(),
        cgroup_parent: names.cgroup_parent.clone(),
        bridge: names.bridge.clone(),
        subnet: names.subnet,
        netns_prefix: names.netns_prefix.clone(),
        stop_grace,
        output: None,
    };
    Setup {
        names,
        dir,
        digest,
        data_dir,
        cfg,
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

pub fn instance_lifecycle() {
    let Setup {
        names,
        dir,
        digest,
        data_dir,
        cfg,
    } = setup(Duration::from_secs(2));
    let (nobody_digest, nobody_command) = image_as_nobody(&cfg.image_store, dir.path());
    runtime().block_on(async {
        let (agent, mut reports) = Agent::start(cfg).await.unwrap();
        let web = spec(
            &digest,
            "echo host=$(hostname) env=$FROM_IMAGE cwd=$(pwd); \
             cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; \
             echo pids=$(ls /proc | grep -c '^[0-9]'); echo uid_map=$(cat /proc/self/uid_map); cat /etc/resolv.conf /etc/hosts; exec httpd -f -p $PORT -h /www",
        );
        let crasher = spec(&digest, "echo crashing; exit 3");
        let nobody = spec(&nobody_digest, &nobody_command);
        let (web_id, crasher_id, nobody_id) = (web.id, crasher.id, nobody.id);
        agent.set_desired(vec![web.clone(), crasher.clone(), nobody]);

        // The image with `USER nobody` runs its own argv (it has no /bin/sh) as nobody, in its WORKDIR, with
        // HOME from its /etc/passwd.
        let report = wait_for(&mut reports, "nobody running", |r| {
            r.instances.iter().any(|i| i.id == nobody_id && i.state == InstanceState::Running)
        })
        .await;
        let address = report.instances.iter().find(|i| i.id == nobody_id).unwrap().address.unwrap();
        let response = tokio::task::spawn_blocking(move || http_get(address)).await.unwrap();
        assert!(
            response.contains("uid=65534 gid=65534 home=/nonexistent cwd=/www"),
            "{response}"
        );

        // The web instance comes up and answers from the host at its own address.
        let report = wait_for(&mut reports, "web running", |r| {
            r.instances.iter().any(|i| i.id == web_id && i.state == InstanceState::Running)
        })
        .await;
        let status = report.instances.iter().find(|i| i.id == web_id).unwrap();
        let address = status.address.unwrap();
        assert!(names.subnet.contains(&address.ip().to_string().parse::<std::net::Ipv4Addr>().unwrap()));
        let response = tokio::task::spawn_blocking(move || http_get(address)).await.unwrap();
        assert!(response.contains("hello from berth"), "{response}");

        // What the app saw from inside, from its kept output.
        // The agent copies output to the log as it reads it: wait for the last line before httpd.
        let log_path = data_dir.join("instances").join(web_id.short()).join("output.log");
        let mut log = String::new();
        for _ in 0..100 {
            log = std::fs::read_to_string(&log_path).unwrap();
            if log.contains("uid_map=") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(log.contains(&format!("host={} env=yes cwd=/www", web_id.short())), "{log}");
        assert!(log.contains(&(96 * 1024 * 1024).to_string()), "memory limit visible inside: {log}");
        let pids: u32 = log.split("pids=").nth(1).unwrap().lines().next().unwrap().trim().parse().unwrap();
        assert!(pids <= 5, "the app sees only its own processes: {pids}");
        // Its resolv.conf and hosts are the agent's.
        assert!(log.contains("# generated by berth"), "{log}");
        assert!(log.contains(&format!("{}\t{}\n", address.ip(), web_id.short())), "{log}");
        let base = web.id_range.unwrap().host_base();
        let uid_map: Vec<&str> = log.split("uid_map=").nth(1).unwrap().lines().next().unwrap().split_whitespace().collect();
        assert_eq!(uid_map, ["0", &base.to_string(), "65536"], "the account's user namespace");

        // The crasher is reported crashed with its exit code, and restarted with backoff.
        wait_for(&mut reports, "crasher restarted twice", |r| {
            r.instances.iter().any(|i| {
                i.id == crasher_id && matches!(&i.state, InstanceState::Crashed { exit_code: Some(3), restarts, reason: Some(ExitReason::Exited { code: 3 }) } if *restarts >= 2)
            })
        })
        .await;

        // Another instance reaches neither the node (a listener on the bridge's address) nor the web instance,
        // once its own loopback works (so a missing `nc` cannot pass for a blocked one).
        let gateway = names.subnet.hosts().next().unwrap();
        let on_node = std::net::TcpListener::bind((gateway, 0)).unwrap();
        let node_port = on_node.local_addr().unwrap().port();
        let probe = |to: String, name: &str| format!("nc -w 2 {to} </dev/null && echo {name}=reached || echo {name}=blocked");
        let prober = spec(
            &digest,
            &format!(
                "nc -l -p 7000 </dev/null & until nc -w 2 127.0.0.1 7000 </dev/null; do sleep 1; done; \
                 echo self=reached; {}; {}; exec sleep 1000",
                probe(format!("{gateway} {node_port}"), "node"),
                probe(format!("{} {}", address.ip(), address.port()), "web"),
            ),
        );
        let prober_log = data_dir.join("instances").join(prober.id.short()).join("output.log");
        agent.set_desired(vec![web.clone(), crasher.clone(), prober.clone()]);
        let deadline = Instant::now() + Duration::from_secs(60);
        let seen = loop {
            let log = std::fs::read_to_string(&prober_log).unwrap_or_default();
            if log.contains("web=") || Instant::now() > deadline {
                break log;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        for want in ["self=reached", "node=blocked", "web=blocked"] {
            assert!(seen.contains(want), "{want}: {seen}");
        }
        drop(on_node);

        // Each account's instances share a cgroup below the parent (equal CPU weight per tenant); the memory
        // hierarchy on v1, the only one on v2.
        let account_cgroup = |account: vocabulary::AccountId| {
            ["memory", ""].map(|hierarchy| {
                Path::new("/sys/fs/cgroup")
                    .join(hierarchy)
                    .join(&names.cgroup_parent)
                    .join(format!("account-{}", account.as_uuid().simple()))
            })
        };
        assert!(
            account_cgroup(web.account).iter().any(|d| d.join(web_id.short()).is_dir()),
            "web's cgroup is below its account's: {:?}",
            account_cgroup(web.account)
        );
        // The account's CPU is capped at every CPU but one (at least one core): v1 cpu hierarchy or v2.
        let cpus = std::thread::available_parallelism().unwrap().get() as u64;
        let cap_us = (cpus.saturating_sub(1) * 100_000).max(100_000);
        let account_dir = |hierarchy: &str| {
            Path::new("/sys/fs/cgroup")
                .join(hierarchy)
                .join(&names.cgroup_parent)
                .join(format!("account-{}", web.account.as_uuid().simple()))
        };
        let quota = std::fs::read_to_string(account_dir("cpu").join("cpu.cfs_quota_us"))
            .or_else(|_| std::fs::read_to_string(account_dir("").join("cpu.max")))
            .expect("the account's cgroup has a CPU quota file");
        assert_eq!(
            quota.split_whitespace().next(),
            Some(cap_us.to_string().as_str()),
            "account CPU cap: {quota}"
        );

        // Stopping the web instance removes its cgroup, namespace, veth and directory, and its account's
        // cgroup with it (its last instance here); the crasher's account keeps its own.
        agent.set_desired(vec![crasher.clone()]);
        wait_for(&mut reports, "web gone", |r| r.instances.iter().all(|i| i.id != web_id)).await;
        let left = leftovers(&names, &data_dir, Some(web_id));
        assert!(left.is_empty(), "left after stopping web: {left:?}");
        assert!(account_cgroup(web.account).iter().all(|d| !d.exists()), "web's account cgroup left");
        assert!(account_cgroup(crasher.account).iter().any(|d| d.is_dir()), "the crasher's account cgroup is there");
        assert!(TcpStream::connect_timeout(&address, Duration::from_millis(500)).is_err());

        agent.shutdown().await;
    });
    assert_nothing_left(&names, &data_dir);
}

/// After an agent's shutdown: no instance's cgroup, namespace, veth, directory or mount, no cgroup parent,
/// bridge or nftables table.
pub fn assert_nothing_left(names: &Names, data_dir: &Path) {
    let left = leftovers(names, data_dir, None);
    assert!(left.is_empty(), "left after shutdown: {left:?}");
    for controller in ["memory", "pids", "cpu", "blkio"] {
        let parent = Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(&names.cgroup_parent);
        assert!(!parent.exists(), "cgroup parent left: {}", parent.display());
    }
    let bridge = std::process::Command::new("ip")
        .args(["link", "show", &names.bridge])
        .output()
        .unwrap();
    assert!(!bridge.status.success(), "bridge left");
    for family in ["bridge", "inet"] {
        let table = std::process::Command::new("nft")
            .args(["list", "table", family, &format!("berth_{}", names.bridge)])
            .output()
            .unwrap();
        assert!(!table.status.success(), "{family} table left");
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&data_dir.display().to_string()), "mount left");
}
