//! The cgroups of instances and builds, through cgroups-rs: one cgroup per instance or build under a parent
//! of the caller's (`berth`, `berth-builds`, a test's own name), on cgroup v1 (one directory per controller)
//! or v2 (one directory).
//!
//! A cgroup gets a memory limit without swap (v1 `memory.memsw.limit_in_bytes` equal to the memory limit
//! when the kernel accounts swap; v2 `memory.swap.max` 0), a CFS CPU quota and a pids limit; on v2 the whole
//! cgroup is killed together when the OOM killer strikes (`memory.oom.group`). [`Cgroup::oom_kills`] says
//! afterwards whether the OOM killer killed anything in it. It does not join processes (the container init
//! writes `cgroup.procs` itself) and does not run anything. Used by the node agent and the builders.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cgroups_rs::fs::cgroup_builder::CgroupBuilder;
use cgroups_rs::fs::{hierarchies, MaxValue};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The CFS period; the quota is `cpu_millicores` thousandths of it per core.
const CPU_PERIOD_US: u64 = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup {path}: {reason}")]
    Create { path: String, reason: String },
    #[error("cgroup {path}: writing {file}")]
    Write {
        path: String,
        file: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("removing cgroup {path}: {reason}")]
    Remove { path: String, reason: String },
}

/// What a cgroup may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Memory without swap; the OOM killer acts beyond it.
    pub memory_bytes: u64,
    /// Thousandths of a core (2000 = two cores' worth of CPU time).
    pub cpu_millicores: u32,
    /// Processes and threads together.
    pub pids_max: u32,
    /// Relative share of block IO under contention, [`IO_WEIGHTS`] (the kernel's default is 100); `None`
    /// leaves the default. Set where the kernel offers a weight (v1 `blkio.bfq.weight` or `blkio.weight`, v2
    /// `io.weight` or `io.bfq.weight`), skipped otherwise.
    pub io_weight: Option<u16>,
}

/// The io weights accepted: the range every weight file takes (v2's `io.weight` goes up to 10000).
pub const IO_WEIGHTS: std::ops::RangeInclusive<u16> = 1..=1000;

/// Where a weight is written, by preference: v1 then v2 files, per IO scheduler.
const IO_WEIGHT_FILES: [&str; 4] = ["blkio.bfq.weight", "blkio.weight", "io.weight", "io.bfq.weight"];

/// Whether the block IO controller can be used: on v1 when its hierarchy is mounted (the others are
/// filtered out by cgroups-rs anyway), on v2 when the root offers `io`.
fn io_controller(v2: bool) -> bool {
    if !v2 {
        return true;
    }
    let root = hierarchies::auto().root();
    std::fs::read_to_string(root.join("cgroup.controllers"))
        .is_ok_and(|c| c.split_whitespace().any(|n| n == "io"))
}

fn controllers(v2: bool) -> Vec<String> {
    let names: &[&str] = if v2 {
        &["memory", "pids", "cpu"]
    } else {
        &["memory", "pids", "cpu", "cpuacct"]
    };
    let mut names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    if io_controller(v2) {
        names.push(if v2 { "io" } else { "blkio" }.into());
    }
    names
}

/// The directories of `path` in every hierarchy we use (one per v1 controller, one on v2).
fn dirs_of(cgroup: &cgroups_rs::fs::Cgroup) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = cgroup
        .subsystems()
        .iter()
        .map(|s| s.to_controller().path().to_owned())
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

fn load(path: &str) -> cgroups_rs::fs::Cgroup {
    let hier = hierarchies::auto();
    let v2 = hier.v2();
    cgroups_rs::fs::Cgroup::load_with_specified_controllers(hier, path, controllers(v2))
}

/// One cgroup with [`Limits`]; [`Cgroup::remove`] kills what is left in it and removes it.
#[derive(Debug)]
pub struct Cgroup {
    path: String,
    dirs: Vec<PathBuf>,
    /// The directory holding the memory controller's files.
    memory_dir: Option<PathBuf>,
    v2: bool,
}

impl Cgroup {
    /// Creates `parent/name` (and `parent` when missing) with `limits`.
    pub fn create(parent: &str, name: &str, limits: &Limits) -> Result<Self, CgroupError> {
        let path = format!("{parent}/{name}");
        if let Some(weight) = limits.io_weight.filter(|w| !IO_WEIGHTS.contains(w)) {
            return Err(CgroupError::Create {
                path,
                reason: format!(
                    "io weight {weight} is outside {}..={}",
                    IO_WEIGHTS.start(),
                    IO_WEIGHTS.end()
                ),
            });
        }
        let hier = hierarchies::auto();
        let v2 = hier.v2();
        let quota = i64::from(limits.cpu_millicores) * CPU_PERIOD_US as i64 / 1000;
        let built = CgroupBuilder::new(&path)
            .set_specified_controllers(controllers(v2))
            .memory()
            .memory_hard_limit(limits.memory_bytes as i64)
            .done()
            .cpu()
            .period(CPU_PERIOD_US)
            .quota(quota)
            .done()
            .pid()
            .maximum_number_of_processes(MaxValue::Value(i64::from(limits.pids_max)))
            .done()
            .build(hier)
            .map_err(|e| CgroupError::Create {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        let dirs = dirs_of(&built);
        let memory_dir = if v2 {
            dirs.first().cloned()
        } else {
            dirs.iter()
                .find(|d| d.join("memory.limit_in_bytes").exists())
                .cloned()
        };
        let cgroup = Cgroup {
            path,
            dirs,
            memory_dir,
            v2,
        };
        if let Err(e) = cgroup.no_swap(limits).and_then(|()| cgroup.io_weight(limits)) {
            let _ = remove_now(&cgroup.path, &cgroup.dirs);
            return Err(e);
        }
        Ok(cgroup)
    }

    /// Swap off (when the kernel accounts it) and, on v2, the whole cgroup killed on OOM.
    fn no_swap(&self, limits: &Limits) -> Result<(), CgroupError> {
        let Some(dir) = &self.memory_dir else {
            return Ok(());
        };
        let settings: &[(&'static str, String)] = if self.v2 {
            &[
                ("memory.swap.max", "0".to_owned()),
                ("memory.oom.group", "1".to_owned()),
            ]
        } else {
            // memsw counts memory plus swap: equal to the memory limit, no swap is left.
            &[("memory.memsw.limit_in_bytes", limits.memory_bytes.to_string())]
        };
        for (file, value) in settings {
            let target = dir.join(file);
            // Absent when the kernel has no swap accounting (or no swap): nothing to turn off.
            if !target.exists() {
                continue;
            }
            std::fs::write(&target, value).map_err(|source| CgroupError::Write {
                path: self.path.clone(),
                file,
                source,
            })?;
        }
        Ok(())
    }

    /// Writes the io weight into the first weight file the kernel offers (which depends on the cgroup version
    /// and the block devices' IO schedulers); without one, the weight is skipped.
    fn io_weight(&self, limits: &Limits) -> Result<(), CgroupError> {
        let Some(weight) = limits.io_weight else {
            return Ok(());
        };
        let Some((target, file)) = self.io_weight_file() else {
            tracing::debug!(cgroup = %self.path, "no io weight file (no blkio/io controller or IO scheduler with weights): io weight skipped");
            return Ok(());
        };
        std::fs::write(&target, weight.to_string()).map_err(|source| CgroupError::Write {
            path: self.path.clone(),
            file,
            source,
        })
    }

    /// The io weight file in use and its value, if the cgroup has one (`("blkio.bfq.weight", "300")`).
    pub fn io_weight_setting(&self) -> Option<(&'static str, String)> {
        let (path, file) = self.io_weight_file()?;
        let text = std::fs::read_to_string(path).ok()?;
        Some((file, text.trim().to_owned()))
    }

    fn io_weight_file(&self) -> Option<(PathBuf, &'static str)> {
        self.dirs.iter().find_map(|dir| {
            IO_WEIGHT_FILES
                .into_iter()
                .find(|f| dir.join(f).exists())
                .map(|f| (dir.join(f), f))
        })
    }

    /// The cgroup's path under the hierarchies' roots (`parent/name`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Its directories, whose `cgroup.procs` a container init joins.
    pub fn dirs(&self) -> Vec<PathBuf> {
        self.dirs.clone()
    }

    /// How many processes the OOM killer has killed in the cgroup since it was made (v1
    /// `memory.oom_control`, v2 `memory.events`; on a v1 kernel without the `oom_kill` count, how often the
    /// limit was hit, `memory.failcnt`).
    pub fn oom_kills(&self) -> u64 {
        let Some(dir) = &self.memory_dir else {
            return 0;
        };
        let file = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        let text = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        match count_of(&text, "oom_kill") {
            Some(count) => count,
            None if !self.v2 => std::fs::read_to_string(dir.join("memory.failcnt"))
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0),
            None => 0,
        }
    }

    /// SIGKILLs every process still in the cgroup.
    pub fn kill_all(&self) -> usize {
        kill_procs(&self.dirs)
    }

    /// Kills what is left and removes the cgroup, retrying while the kernel drains exiting tasks.
    pub async fn remove(self) -> Result<(), CgroupError> {
        remove_dir_set(&self.path, &self.dirs).await
    }

    /// [`Cgroup::remove`] for a caller that cannot wait (a `Drop`): a few short blocking retries.
    pub fn remove_blocking(self) -> Result<(), CgroupError> {
        for _ in 0..20 {
            if remove_now(&self.path, &self.dirs).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        remove_now(&self.path, &self.dirs)
    }
}

/// The number after `key` in a `key value` per line file (`memory.oom_control`, `memory.events`).
pub fn count_of(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

fn kill_procs(dirs: &[PathBuf]) -> usize {
    let mut killed = 0;
    for dir in dirs {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|p| p.trim().parse::<i32>().ok()) {
            if kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok() {
                killed += 1;
            }
        }
    }
    killed
}

/// One attempt: kill, then remove every directory still there.
fn remove_now(path: &str, dirs: &[PathBuf]) -> Result<(), CgroupError> {
    kill_procs(dirs);
    let mut last_error = None;
    for dir in dirs.iter().filter(|d| d.exists()) {
        if let Err(e) = std::fs::remove_dir(dir) {
            last_error = Some(format!("{}: {e}", dir.display()));
        }
    }
    match last_error {
        None => Ok(()),
        Some(reason) => Err(CgroupError::Remove {
            path: path.to_owned(),
            reason,
        }),
    }
}

async fn remove_dir_set(path: &str, dirs: &[PathBuf]) -> Result<(), CgroupError> {
    let mut result = Ok(());
    for _ in 0..100 {
        result = remove_now(path, dirs);
        if result.is_ok() {
            return result;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    result
}

/// The directories of `parent` in every hierarchy we use; they need not exist.
pub fn dirs_of_path(parent: &str) -> Vec<PathBuf> {
    dirs_of(&load(parent))
}

/// The child cgroups of `parent` (names), in any hierarchy.
pub fn children(parent: &str) -> Vec<String> {
    let mut children: Vec<String> = Vec::new();
    for dir in dirs_of_path(parent) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().is_ok_and(|t| t.is_dir()) && !children.contains(&name) {
                children.push(name);
            }
        }
    }
    children
}

/// Removes every cgroup below `parent`, deepest first (killing their processes), and, if `remove_parent`, the
/// parent too.
pub async fn remove_children(parent: &str, remove_parent: bool) -> Result<(), CgroupError> {
    let parent_dirs = dirs_of_path(parent);
    for child in children(parent) {
        let path = format!("{parent}/{child}");
        tracing::info!(cgroup = %path, "removing leftover cgroup");
        Box::pin(remove_children(&path, true)).await?;
    }
    if remove_parent {
        remove_dir_set(parent, &parent_dirs).await?;
    }
    Ok(())
}

/// Removes `path` in every hierarchy where it has no child cgroups left (a shared parent such as an account's,
/// whose last child just went). Returns whether it is gone everywhere; a parent still in use (children, or
/// `EBUSY`) is left as it is, which is not an error.
pub fn remove_if_empty(path: &str) -> bool {
    let mut gone = true;
    for dir in dirs_of_path(path) {
        let has_children = std::fs::read_dir(&dir)
            .is_ok_and(|entries| entries.flatten().any(|e| e.file_type().is_ok_and(|t| t.is_dir())));
        if has_children {
            gone = false;
            continue;
        }
        match std::fs::remove_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => gone = false,
        }
    }
    gone
}

/// Caps the CPU time of the existing cgroup `path` and everything below it at `millicores` (v1
/// `cpu.cfs_quota_us`, v2 `cpu.max`), for a parent shared by several instances such as an account's. Fails where
/// the kernel refuses it (on v1, a child already allowed more than the cap).
pub fn cap_cpu(path: &str, millicores: u32) -> Result<(), CgroupError> {
    let quota = u64::from(millicores) * CPU_PERIOD_US / 1000;
    let failed = |dir: &Path, e: std::io::Error| CgroupError::Create {
        path: path.to_owned(),
        reason: format!("capping CPU in {}: {e}", dir.display()),
    };
    for dir in dirs_of_path(path) {
        if dir.join("cpu.max").exists() {
            std::fs::write(dir.join("cpu.max"), format!("{quota} {CPU_PERIOD_US}"))
                .map_err(|e| failed(&dir, e))?;
        } else if dir.join("cpu.cfs_quota_us").exists() {
            std::fs::write(dir.join("cpu.cfs_period_us"), CPU_PERIOD_US.to_string())
                .map_err(|e| failed(&dir, e))?;
            std::fs::write(dir.join("cpu.cfs_quota_us"), quota.to_string()).map_err(|e| failed(&dir, e))?;
        }
    }
    Ok(())
}

/// Whether this process may create cgroups (root with a writable cgroup filesystem).
pub fn available() -> bool {
    nix::unistd::geteuid().is_root() && Path::new("/sys/fs/cgroup").is_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_kill_counts_are_read_from_both_formats() {
        let cases = [
            ("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", Some(3)),
            (
                "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 1\n",
                Some(1),
            ),
            ("oom_kill_disable 0\nunder_oom 0\n", None),
            ("oom_kill x\n", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(count_of(text, "oom_kill"), want, "{text:?}");
        }
    }
}
