//! What the app process may do once it runs: its capabilities, resource limits and seccomp filter. The init
//! applies it right before `execve` (see `init::harden`), always with `no_new_privs`.
//!
//! There is one profile, [`Security::hardened`], and it is the default: a spec without a `security` field
//! still gets it.

use serde::{Deserialize, Serialize};

pub use caps::Capability;

use crate::seccomp::{self, SeccompError, SeccompProgram};

/// The app's privileges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Security {
    /// The only capabilities left in the bounding, permitted and effective sets (ambient and inheritable are
    /// emptied: a non-root program must not gain any through file capabilities).
    pub capabilities: Vec<Capability>,
    pub rlimits: Vec<Rlimit>,
    /// Installed last, right before `execve`.
    pub seccomp: SeccompProgram,
    /// Who the app runs as (an image's `USER`: `NAME`, `UID`, `NAME:GROUP`, `UID:GID`, resolved with the
    /// container's `/etc/passwd` and `/etc/group`); `None`: root (of the user namespace when there is one).
    /// A user other than root has no capabilities left.
    #[serde(default)]
    pub user: Option<String>,
}

/// A resource limit set on the app (soft and hard), or the agent's own where that is lower: limits are never
/// raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    pub resource: Resource,
    pub soft: u64,
    pub hard: u64,
}

/// The limits we set. `RLIMIT_NPROC` is not among them on purpose: without a user namespace every
/// container's root is the host's uid 0, so a per-uid process count would be shared by all tenants; the pids
/// cgroup limits processes instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Resource {
    /// Open files.
    NoFile,
    /// Core dump size.
    Core,
    /// Pending signals (per real uid).
    SigPending,
    /// Bytes in POSIX message queues (per real uid).
    MsgQueue,
}

/// Docker's default capabilities without `MKNOD`, `NET_RAW`, `SYS_CHROOT` and `AUDIT_WRITE`.
pub const HARDENED_CAPABILITIES: [Capability; 10] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FOWNER,
    Capability::CAP_FSETID,
    Capability::CAP_KILL,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SETFCAP,
];

/// Open files: what a busy web server needs, far below the host's `fs.nr_open`.
pub const HARDENED_NOFILE: u64 = 65_536;

impl Security {
    /// The profile for tenants' instances and builds. Fails only where no seccomp profile exists (not
    /// x86_64).
    pub fn hardened() -> Result<Security, SeccompError> {
        let limit = |resource, value| Rlimit {
            resource,
            soft: value,
            hard: value,
        };
        Ok(Security {
            capabilities: HARDENED_CAPABILITIES.to_vec(),
            rlimits: vec![
                limit(Resource::NoFile, HARDENED_NOFILE),
                limit(Resource::Core, 0),
                limit(Resource::SigPending, 16_384),
                limit(Resource::MsgQueue, 819_200),
            ],
            seccomp: seccomp::hardened()?.clone(),
            user: None,
        })
    }

    /// The capability mask as `/proc/PID/status` shows it (`CapEff`, `CapBnd`).
    pub fn capability_mask(&self) -> u64 {
        self.capabilities.iter().fold(0, |mask, c| mask | c.bitmask())
    }
}

impl Default for Security {
    /// [`Security::hardened`]. Panics where there is no seccomp profile (not x86_64): a container must never
    /// silently run without one.
    fn default() -> Self {
        Security::hardened().expect("no seccomp profile for this architecture")
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    #[test]
    fn hardened_mask_is_dockers_without_the_dropped_four() {
        // CHOWN 0, DAC_OVERRIDE 1, FOWNER 3, FSETID 4, KILL 5, SETGID 6, SETUID 7, SETPCAP 8,
        // NET_BIND_SERVICE 10, SETFCAP 31.
        assert_eq!(Security::default().capability_mask(), 0x8000_05fb);
    }

    #[test]
    fn a_spec_without_security_gets_the_hardened_profile() {
        #[derive(Deserialize)]
        struct Old {
            #[serde(default)]
            security: Security,
        }
        let old: Old = serde_json::from_str("{}").unwrap();
        assert_eq!(old.security, Security::hardened().unwrap());
    }
}
