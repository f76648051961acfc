//! Hides the kernel interfaces of `/proc` and `/sys` that leak host information or change the host, as runc
//! and Docker do: masked paths get `/dev/null` (files) or an empty read-only tmpfs (directories) on top;
//! read-only paths are bound onto themselves read-only. Paths the kernel does not have are skipped.

use std::path::Path;

use nix::mount::{mount, MsFlags};

use super::{Context, SetupError};

/// Paths (below the new root) that show nothing.
const MASKED: [&str; 12] = [
    "proc/acpi",
    "proc/asound",
    "proc/interrupts",
    "proc/kcore",
    "proc/keys",
    "proc/latency_stats",
    "proc/timer_list",
    "proc/timer_stats",
    "proc/sched_debug",
    "proc/scsi",
    "sys/firmware",
    "sys/devices/virtual/powercap",
];

/// Paths (below the new root) that can be read but not written.
const READ_ONLY: [&str; 5] = [
    "proc/bus",
    "proc/fs",
    "proc/irq",
    "proc/sys",
    "proc/sysrq-trigger",
];

/// Runs after `/proc` and `/sys` are mounted below `root`, before `pivot_root` (the host's `/dev/null` is
/// still at `/dev/null`). Both are kernel filesystems, so the paths below cannot be the image's symlinks.
pub fn apply(root: &Path) -> Result<(), SetupError> {
    let hardened = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    for relative in MASKED {
        let path = root.join(relative);
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let result = if meta.is_dir() {
            mount(
                Some("tmpfs"),
                &path,
                Some("tmpfs"),
                hardened | MsFlags::MS_RDONLY,
                Some("size=0,mode=555"),
            )
        } else {
            mount(
                Some("/dev/null"),
                &path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        };
        result.ctx(|| format!("masking /{relative}"))?;
    }
    for relative in READ_ONLY {
        let path = root.join(relative);
        if std::fs::symlink_metadata(&path).is_err() {
            continue;
        }
        mount(
            Some(&path),
            &path,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .ctx(|| format!("binding /{relative}"))?;
        mount(
            None::<&str>,
            &path,
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | hardened,
            None::<&str>,
        )
        .ctx(|| format!("making /{relative} read-only"))?;
    }
    Ok(())
}
