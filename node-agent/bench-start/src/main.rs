//! Start latency of a hardened Berth container against `crun run` of an equivalent hardened OCI bundle on the
//! same root filesystem (issue 5's benchmark). Run it through `scripts/bench-start`, which makes the root
//! filesystem (static busybox plus `/stamp`, which prints `CLOCK_MONOTONIC` and exits) and lets crun run on a
//! hybrid cgroup host.
//!
//! Both sides get the same isolation: PID, mount, UTS, IPC, network (a new one with loopback only), cgroup and
//! user namespaces (container root mapped to an unprivileged host range), a cgroup with memory, CPU and pids
//! limits, ten capabilities, `no_new_privs`, the same resource limits, a Docker-like seccomp filter, masked
//! and read-only `/proc` paths. Differences that remain, both in crun's favour: Berth mounts an overlay (a
//! writable layer over the read-only image) where crun uses the directory as it is, and Berth removes the
//! writable layer's directories afterwards. crun compiles its seccomp profile at every start (that is how crun
//! works); Berth compiles its own once per process.
//!
//! The two runtimes alternate run by run, so load from elsewhere on the machine hits both alike; the ratios
//! are what to read.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, ensure, Context};
use clap::Parser;
use container::{ContainerSpec, IdMap, Network, Output, Security};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

#[derive(Debug, Parser)]
struct Args {
    /// A root filesystem with a static `/stamp` (prints `CLOCK_MONOTONIC` nanoseconds, exits 0).
    #[arg(long)]
    rootfs: PathBuf,
    /// Scratch directory for writable layers and crun's bundle (emptied first).
    #[arg(long)]
    work: PathBuf,
    /// Measured starts of each runtime (after a few unmeasured warm-up starts).
    #[arg(long, default_value_t = 100)]
    runs: usize,
    #[arg(long, default_value = "crun")]
    crun: PathBuf,
    /// A Docker-format seccomp profile, turned into the bundle's OCI seccomp section for our capabilities.
    #[arg(long, default_value = "/usr/share/containers/seccomp.json")]
    docker_seccomp: PathBuf,
    /// Parent cgroup of every container either runtime starts (removed at the end).
    #[arg(long, default_value = "berth-bench-start")]
    cgroup_parent: String,
    /// First host uid of the user namespaces' mapping (65536 ids); far above Berth's accounts' slots in use.
    #[arg(long, default_value_t = 1 << 31)]
    host_base: u32,
}

const WARMUP: usize = 5;
const LIMITS: cgroups::Limits = cgroups::Limits {
    memory_bytes: 512 << 20,
    cpu_millicores: 1000,
    pids_max: 256,
    // crun's bundle sets no io weight either.
    io_weight: None,
};

/// One start, in milliseconds from just before the runtime was asked to start it.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// `/stamp`'s first instruction (its clock reading).
    first_instruction: f64,
    /// The runtime reported the exit (Berth: the init exited; crun: `crun run` returned, its cleanup done).
    exited: f64,
    /// Everything the start made is gone (Berth: cgroup and writable layer removed; crun: as `exited`).
    cleaned_up: f64,
}

fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some(container::INIT_ARG) {
        container::init::main();
    }
    let args = Args::parse();
    ensure!(nix::unistd::geteuid().is_root(), "bench-start needs root");
    ensure!(
        args.rootfs.join("stamp").is_file(),
        "{} has no /stamp (scripts/bench-start makes the root filesystem)",
        args.rootfs.display()
    );
    let _ = std::fs::remove_dir_all(&args.work);
    std::fs::create_dir_all(&args.work)?;
    let rootfs = std::fs::canonicalize(&args.rootfs)?;
    let bundle = args.work.join("crun-bundle");
    write_crun_bundle(&args, &rootfs, &bundle)?;
    let security = Security::hardened()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    let mut berth = Vec::new();
    let mut crun = Vec::new();
    let result: anyhow::Result<()> = runtime.block_on(async {
        for run in 0..WARMUP + args.runs {
            let b = start_berth(&args, &rootfs, &security, run).await?;
            let c = start_crun(&args, &bundle, run)?;
            if run >= WARMUP {
                berth.push(b);
                crun.push(c);
            }
            if (run + 1) % 25 == 0 {
                eprintln!(
                    "bench-start: {} of {} starts of each runtime",
                    run + 1,
                    WARMUP + args.runs
                );
            }
        }
        Ok(())
    });
    let cleanup = runtime.block_on(cgroups::remove_children(&args.cgroup_parent, true));
    // crun also made the parent in every other hierarchy (cpuset, freezer, ... and the hugetlb one the script
    // mounts); its own children it removed itself.
    remove_everywhere(&args.cgroup_parent);
    let _ = std::fs::remove_dir_all(&args.work);
    result?;
    cleanup.context("removing the benchmark's cgroups")?;
    report(&berth, &crun);
    Ok(())
}

/// Removes the (empty) cgroup `parent` and anything left below it from every mounted cgroup hierarchy.
fn remove_everywhere(parent: &str) {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    for line in mountinfo.lines() {
        let Some((before, after)) = line.split_once(" - ") else {
            continue;
        };
        if !after.starts_with("cgroup ") && !after.starts_with("cgroup2 ") {
            continue;
        }
        let Some(mount_point) = before.split(' ').nth(4) else {
            continue;
        };
        remove_tree(&Path::new(mount_point).join(parent));
    }
}

/// Depth first: a cgroup directory can be removed only once it has no children.
fn remove_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path());
            }
        }
        if let Err(e) = std::fs::remove_dir(dir) {
            eprintln!("bench-start: could not remove cgroup {}: {e}", dir.display());
        }
    }
}

fn monotonic_ns() -> anyhow::Result<i64> {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)?;
    Ok(now.tv_sec() * 1_000_000_000 + now.tv_nsec())
}

fn ms_since(start_ns: i64, now_ns: i64) -> f64 {
    (now_ns - start_ns) as f64 / 1e6
}

fn stamp_of(output: &str) -> anyhow::Result<i64> {
    output
        .trim()
        .parse()
        .with_context(|| format!("/stamp printed {output:?}, not nanoseconds"))
}

async fn start_berth(args: &Args, rootfs: &Path, security: &Security, run: usize) -> anyhow::Result<Sample> {
    let dir = args.work.join(format!("berth-{run}"));
    let start = monotonic_ns()?;
    // What the agent does per instance, less its network attachment (crun gets no veth either).
    let cgroup = cgroups::Cgroup::create(&args.cgroup_parent, &format!("berth-{run}"), &LIMITS)?;
    for sub in ["upper", "work", "root"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    let spec = ContainerSpec {
        hostname: "bench".into(),
        layers: vec![rootfs.to_owned()],
        upper_dir: dir.join("upper"),
        work_dir: dir.join("work"),
        rootfs: dir.join("root"),
        binds: vec![],
        network: Network::Isolated,
        cwd: "/".into(),
        env: BTreeMap::from([("PATH".to_owned(), "/bin".to_owned())]),
        argv: vec!["/stamp".into()],
        cgroup_dirs: cgroup.dirs(),
        security: security.clone(),
        user_namespace: Some(IdMap {
            host_base: args.host_base,
            size: 65536,
        }),
    };
    let init = std::env::current_exe()?;
    let mut c = container::spawn(&init, &spec, Output::Piped).await?;
    let mut stdout = String::new();
    let mut stderr = String::new();
    c.child
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut stdout)
        .await?;
    c.child
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut stderr)
        .await?;
    let status = c.wait().await?;
    let exited = monotonic_ns()?;
    cgroup.remove().await?;
    std::fs::remove_dir_all(&dir)?;
    let cleaned_up = monotonic_ns()?;
    if !status.success() {
        bail!("the Berth container exited with {status}: {stderr}");
    }
    Ok(Sample {
        first_instruction: ms_since(start, stamp_of(&stdout)?),
        exited: ms_since(start, exited),
        cleaned_up: ms_since(start, cleaned_up),
    })
}

fn start_crun(args: &Args, bundle: &Path, run: usize) -> anyhow::Result<Sample> {
    let id = format!("berth-bench-{}-{run}", std::process::id());
    let config = bundle.join("config.json");
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&config)?)?;
    doc["linux"]["cgroupsPath"] = json!(format!("/{}/crun-{run}", args.cgroup_parent));
    std::fs::write(&config, serde_json::to_vec(&doc)?)?;

    let start = monotonic_ns()?;
    let mut child = Command::new(&args.crun)
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", args.crun.display()))?;
    let mut stdout = String::new();
    child.stdout.take().expect("piped").read_to_string(&mut stdout)?;
    let output = child.wait_with_output()?;
    let exited = monotonic_ns()?;
    if !output.status.success() {
        bail!(
            "crun run exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(Sample {
        first_instruction: ms_since(start, stamp_of(&stdout)?),
        exited: ms_since(start, exited),
        cleaned_up: ms_since(start, exited),
    })
}

/// Writes `bundle/config.json`: `crun spec`'s defaults made equivalent to Berth's hardened instance.
fn write_crun_bundle(args: &Args, rootfs: &Path, bundle: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(bundle)?;
    let status = Command::new(&args.crun)
        .args(["spec", "--bundle"])
        .arg(bundle)
        .status()
        .with_context(|| format!("running {} spec", args.crun.display()))?;
    ensure!(status.success(), "crun spec failed: {status}");
    let config = bundle.join("config.json");
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&config)?)?;
    let docker: Value = serde_json::from_slice(
        &std::fs::read(&args.docker_seccomp)
            .with_context(|| format!("reading {}", args.docker_seccomp.display()))?,
    )?;
    let security = Security::hardened()?;
    let caps: Vec<String> = security.capabilities.iter().map(|c| c.to_string()).collect();
    harden_oci_config(
        &mut doc,
        rootfs,
        args.host_base,
        &caps,
        oci_seccomp(&docker, &caps)?,
    );
    std::fs::write(&config, serde_json::to_vec_pretty(&doc)?)?;
    Ok(())
}

fn harden_oci_config(doc: &mut Value, rootfs: &Path, host_base: u32, caps: &[String], seccomp: Value) {
    let process = &mut doc["process"];
    process["terminal"] = json!(false);
    process["args"] = json!(["/stamp"]);
    process["env"] = json!(["PATH=/bin"]);
    process["capabilities"] = json!({ "bounding": caps, "effective": caps, "permitted": caps });
    process["noNewPrivileges"] = json!(true);
    let limit = |name: &str, value: u64| json!({ "type": name, "soft": value, "hard": value });
    process["rlimits"] = json!([
        // As Berth does: never above the caller's own hard limit.
        limit(
            "RLIMIT_NOFILE",
            container::security::HARDENED_NOFILE.min(nofile_hard_limit())
        ),
        limit("RLIMIT_CORE", 0),
        limit("RLIMIT_SIGPENDING", 16_384),
        limit("RLIMIT_MSGQUEUE", 819_200),
    ]);
    doc["root"] = json!({ "path": rootfs, "readonly": true });
    doc["hostname"] = json!("bench");
    let linux = &mut doc["linux"];
    let mapping = json!([{ "containerID": 0, "hostID": host_base, "size": 65536 }]);
    linux["uidMappings"] = mapping.clone();
    linux["gidMappings"] = mapping;
    linux["namespaces"] = json!(["pid", "network", "ipc", "uts", "mount", "cgroup", "user"]
        .iter()
        .map(|kind| json!({ "type": kind }))
        .collect::<Vec<_>>());
    linux["resources"] = json!({
        "memory": { "limit": LIMITS.memory_bytes, "swap": LIMITS.memory_bytes },
        "cpu": { "quota": i64::from(LIMITS.cpu_millicores) * 100, "period": 100_000 },
        "pids": { "limit": LIMITS.pids_max },
    });
    linux["seccomp"] = seccomp;
}

fn nofile_hard_limit() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(u64::MAX, |(_, hard)| hard)
}

/// Docker's profile format (`includes`/`excludes` by capability and architecture) resolved for x86_64 and
/// `caps` into the OCI runtime spec's seccomp section, as Docker and Podman do before calling their runtime.
fn oci_seccomp(docker: &Value, caps: &[String]) -> anyhow::Result<Value> {
    let has_cap = |name: &Value| name.as_str().is_some_and(|n| caps.iter().any(|c| c == n));
    let names_amd64 = |arches: &Value| arches.as_array().is_some_and(|a| a.iter().any(|x| x == "amd64"));
    let mut syscalls = Vec::new();
    for rule in docker["syscalls"]
        .as_array()
        .context("the profile has no syscalls list")?
    {
        let includes = &rule["includes"];
        let excludes = &rule["excludes"];
        let include_arches = includes["arches"].as_array().map_or(0, Vec::len);
        if include_arches > 0 && !names_amd64(&includes["arches"]) {
            continue;
        }
        if names_amd64(&excludes["arches"]) {
            continue;
        }
        if let Some(needed) = includes["caps"].as_array() {
            if !needed.iter().all(has_cap) {
                continue;
            }
        }
        if let Some(excluded) = excludes["caps"].as_array() {
            if excluded.iter().any(has_cap) {
                continue;
            }
        }
        let mut entry = json!({ "names": rule["names"], "action": rule["action"] });
        if let Some(args) = rule["args"].as_array().filter(|a| !a.is_empty()) {
            entry["args"] = json!(args);
        }
        if let Some(errno) = rule.get("errnoRet") {
            entry["errnoRet"] = errno.clone();
        }
        syscalls.push(entry);
    }
    let mut section = json!({
        "defaultAction": docker["defaultAction"],
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": syscalls,
    });
    if let Some(errno) = docker.get("defaultErrnoRet") {
        section["defaultErrnoRet"] = errno.clone();
    }
    Ok(section)
}

/// The `p`th percentile (0..=100) by nearest rank of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn sorted(samples: &[Sample], field: fn(&Sample) -> f64) -> Vec<f64> {
    let mut values: Vec<f64> = samples.iter().map(field).collect();
    values.sort_by(f64::total_cmp);
    values
}

fn report(berth: &[Sample], crun: &[Sample]) {
    type Field = fn(&Sample) -> f64;
    let rows: [(&str, &[Sample], Field); 5] = [
        ("berth: first instruction", berth, |s| s.first_instruction),
        ("berth: exited", berth, |s| s.exited),
        ("berth: cleaned up", berth, |s| s.cleaned_up),
        ("crun: first instruction", crun, |s| s.first_instruction),
        ("crun: exited (cleaned up)", crun, |s| s.exited),
    ];
    println!(
        "starts of /stamp per runtime: {} (alternating), milliseconds",
        berth.len()
    );
    println!();
    println!("| measure | p50 | p90 | p99 | min |");
    println!("|---|---:|---:|---:|---:|");
    for (name, samples, field) in rows {
        let v = sorted(samples, field);
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} | {:.2} |",
            percentile(&v, 50.0),
            percentile(&v, 90.0),
            percentile(&v, 99.0),
            percentile(&v, 0.0)
        );
    }
    let median = |samples: &[Sample], field: Field| percentile(&sorted(samples, field), 50.0);
    println!();
    println!(
        "ratio berth/crun, medians: first instruction {:.2}, exit {:.2}, cleaned up {:.2}",
        median(berth, |s| s.first_instruction) / median(crun, |s| s.first_instruction),
        median(berth, |s| s.exited) / median(crun, |s| s.exited),
        median(berth, |s| s.cleaned_up) / median(crun, |s| s.exited),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_profile_rules_are_kept_by_capability_and_architecture() {
        let docker = json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "syscalls": [
                { "names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [], "includes": {}, "excludes": {} },
                { "names": ["chroot"], "action": "SCMP_ACT_ALLOW", "includes": { "caps": ["CAP_SYS_CHROOT"] } },
                { "names": ["chroot"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                  "excludes": { "caps": ["CAP_SYS_CHROOT"] } },
                { "names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": { "arches": ["amd64"] } },
                { "names": ["breakpoint"], "action": "SCMP_ACT_ALLOW", "includes": { "arches": ["arm"] } },
            ]
        });
        let section = oci_seccomp(&docker, &["CAP_KILL".to_owned()]).unwrap();
        let kept: Vec<(String, String)> = section["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["names"][0].as_str().unwrap().to_owned(),
                    r["action"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let expected = [
            ("read", "SCMP_ACT_ALLOW"),
            ("chroot", "SCMP_ACT_ERRNO"),
            ("arch_prctl", "SCMP_ACT_ALLOW"),
        ];
        assert_eq!(kept, expected.map(|(a, b)| (a.to_owned(), b.to_owned())).to_vec());
        assert_eq!(section["syscalls"][1]["errnoRet"], 1);
        assert_eq!(section["defaultErrnoRet"], 38);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 5.0);
        assert_eq!(percentile(&v, 90.0), 9.0);
        assert_eq!(percentile(&v, 99.0), 10.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert!(percentile(&[], 50.0).is_nan());
    }
}
