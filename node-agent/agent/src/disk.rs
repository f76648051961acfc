//! The bound on an instance's writable layer: its overlay upper and work directories live on a tmpfs of the
//! instance's `disk_bytes`, mounted by the agent on `instances/<id>/disk` for each run and unmounted when the
//! run's instance stops. A write past the bound fails with ENOSPC inside the instance; the node's own disk is
//! never touched.
//!
//! Why tmpfs: it needs no block device, mkfs or loop device per instance (nothing global to leak), costs
//! nothing to create, and its pages are charged to the memory cgroup of the process that writes them, so an
//! instance's files count against its memory limit too: whichever bound is lower stops it (ENOSPC at the disk
//! bound, an out-of-memory kill at the memory bound, reported as such). The writable layer is thrown away on
//! every restart anyway (a fresh dyno), so nothing is lost that was meant to last.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::AgentError;

/// The smallest bound accepted: below it no app can even start.
pub const MIN_DISK_BYTES: u64 = 1024 * 1024;

/// A fresh tmpfs of `bytes` at `dir` (created if missing; an earlier mount there is removed first).
pub fn mount_fresh(dir: &Path, bytes: u64) -> Result<(), AgentError> {
    if bytes < MIN_DISK_BYTES {
        return Err(AgentError::Config(format!(
            "disk limit {bytes} bytes is below the minimum of {MIN_DISK_BYTES}"
        )));
    }
    unmount(dir)?;
    std::fs::create_dir_all(dir).map_err(|source| AgentError::Io {
        path: dir.to_owned(),
        source,
    })?;
    // Inodes bounded too (one per 4 KiB of the bound, at least 1024), so that empty files cannot exhaust
    // kernel memory either.
    let inodes = (bytes / 4096).max(1024);
    let options = format!("size={bytes},nr_inodes={inodes},mode=0755");
    mount(
        Some("berth-disk"),
        dir,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(options.as_str()),
    )
    .map_err(|e| AgentError::Io {
        path: dir.to_owned(),
        source: e.into(),
    })
}

/// Unmounts whatever is mounted at `dir` (nothing if it is not a mount point).
pub fn unmount(dir: &Path) -> Result<(), AgentError> {
    for mounted in mounts_under(dir) {
        if mounted != dir {
            continue;
        }
        umount2(dir, MntFlags::MNT_DETACH).map_err(|e| AgentError::Io {
            path: dir.to_owned(),
            source: e.into(),
        })?;
    }
    Ok(())
}

/// Mount points at or below `dir`, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    container::mountinfo::mounts_under(&info, dir)
}

/// Removes every mount below `dir` (a crashed agent's), deepest first.
pub fn unmount_all_under(dir: &Path) -> Result<(), AgentError> {
    for mounted in mounts_under(dir) {
        tracing::info!(path = %mounted.display(), "removing leftover mount");
        umount2(&mounted, MntFlags::MNT_DETACH).map_err(|e| AgentError::Io {
            path: mounted.clone(),
            source: e.into(),
        })?;
    }
    Ok(())
}
