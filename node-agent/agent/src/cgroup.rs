//! Each instance's cgroup, under the agent's parent cgroup, through cgroups-rs (v1 here, v2 on modern hosts).

use std::path::PathBuf;
use std::time::Duration;

use agent_contract::Limits;
use cgroups_rs::fs::cgroup_builder::CgroupBuilder;
use cgroups_rs::fs::{hierarchies, Cgroup, MaxValue};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::AgentError;

/// The CFS period; the quota is `cpu_millicores` thousandths of it per core.
const CPU_PERIOD_US: u64 = 100_000;

fn controllers(v2: bool) -> Vec<String> {
    let names: &[&str] = if v2 {
        &["memory", "pids", "cpu"]
    } else {
        &["memory", "pids", "cpu", "cpuacct"]
    };
    names.iter().map(|s| s.to_string()).collect()
}

/// The directories of `path` in every hierarchy we use (one per v1 controller, one on v2).
fn dirs_of(cgroup: &Cgroup) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = cgroup
        .subsystems()
        .iter()
        .map(|s| s.to_controller().path().to_owned())
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

fn load(path: &str) -> Cgroup {
    let hier = hierarchies::auto();
    let v2 = hier.v2();
    Cgroup::load_with_specified_controllers(hier, path, controllers(v2))
}

#[derive(Debug)]
pub struct InstanceCgroup {
    path: String,
    cgroup: Cgroup,
}

impl InstanceCgroup {
    pub fn create(parent: &str, name: &str, limits: &Limits) -> Result<Self, AgentError> {
        let path = format!("{parent}/{name}");
        let hier = hierarchies::auto();
        let v2 = hier.v2();
        let quota = i64::from(limits.cpu_millicores) * CPU_PERIOD_US as i64 / 1000;
        let cgroup = CgroupBuilder::new(&path)
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
            .map_err(|e| AgentError::Cgroup {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        let created = InstanceCgroup { path, cgroup };
        Ok(created)
    }

    pub fn dirs(&self) -> Vec<PathBuf> {
        dirs_of(&self.cgroup)
    }

    /// SIGKILLs every process still in the cgroup (the container's init normally took them all down).
    pub fn kill_all(&self) -> usize {
        kill_procs(&self.dirs())
    }

    /// Kills what is left and removes the cgroup, retrying while the kernel drains exiting tasks.
    pub async fn remove(self) -> Result<(), AgentError> {
        remove_dir_set(&self.path, &self.dirs()).await?;
        drop(self.cgroup);
        Ok(())
    }
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

async fn remove_dir_set(path: &str, dirs: &[PathBuf]) -> Result<(), AgentError> {
    let mut last_error = None;
    for _ in 0..100 {
        kill_procs(dirs);
        last_error = None;
        for dir in dirs.iter().filter(|d| d.exists()) {
            if let Err(e) = std::fs::remove_dir(dir) {
                last_error = Some(format!("{}: {e}", dir.display()));
            }
        }
        if last_error.is_none() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(AgentError::Cgroup {
        path: path.to_owned(),
        reason: last_error.unwrap_or_default(),
    })
}

/// Removes every child cgroup of `parent` (killing their processes) and, if `remove_parent`, the parent too.
pub async fn remove_children(parent: &str, remove_parent: bool) -> Result<(), AgentError> {
    let parent_dirs = dirs_of(&load(parent));
    let mut children: Vec<String> = Vec::new();
    for dir in &parent_dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().is_ok_and(|t| t.is_dir()) && !children.contains(&name) {
                children.push(name);
            }
        }
    }
    for child in children {
        let path = format!("{parent}/{child}");
        tracing::info!(cgroup = %path, "removing leftover cgroup");
        let dirs: Vec<PathBuf> = parent_dirs.iter().map(|d| d.join(&child)).collect();
        remove_dir_set(&path, &dirs).await?;
    }
    if remove_parent {
        remove_dir_set(parent, &parent_dirs).await?;
    }
    Ok(())
}
