//! The small privileged part of Berth: starts one process tree in new namespaces (PID, mount, UTS, IPC, cgroup,
//! and network unless told to share the host's), with an overlayfs root built from read-only layer directories,
//! `pivot_root`s into it, and runs a tiny init as PID 1 that reaps zombies and forwards signals.
//!
//! Used by the node agent for app instances and by the builder for build steps. It does not create cgroups or
//! network interfaces (the caller does, and passes their paths), does not unpack images, and keeps no state:
//! everything it mounts lives in the container's own mount namespace and disappears with it.
//!
//! Mechanism: `spawn` re-executes the `berth` binary (`init_program`, normally `/proc/self/exe`) with the
//! hidden argument [`INIT_ARG`]; `berth`'s `main` calls [`init::main`] for it before starting any runtime.

pub mod init;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The hidden first argument that makes the `berth` binary act as a container's init.
pub const INIT_ARG: &str = "__container-init";

/// A directory from the host made visible inside the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindMount {
    pub source: PathBuf,
    /// Absolute path inside the container.
    pub target: PathBuf,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Network {
    /// Share the host's network namespace (builds that fetch dependencies).
    Host,
    /// Join an existing network namespace, such as `/run/netns/NAME`.
    Join(PathBuf),
}

/// Everything needed to start one container. Serialized to the init process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub hostname: String,
    /// Read-only layer directories, lowest (base) first.
    pub layers: Vec<PathBuf>,
    /// Writable overlay upper and work directories (same filesystem, both existing and empty at first start).
    pub upper_dir: PathBuf,
    pub work_dir: PathBuf,
    /// Where the overlay is mounted (inside the container's mount namespace only).
    pub rootfs: PathBuf,
    pub binds: Vec<BindMount>,
    pub network: Network,
    /// Working directory inside the container.
    pub cwd: PathBuf,
    pub env: BTreeMap<String, String>,
    /// argv[0] is looked up in the container's `PATH` from `env`.
    pub argv: Vec<String>,
    /// Cgroup directories (one per v1 controller, or one on v2) whose `cgroup.procs` the init joins before it
    /// unshares anything, so that everything in the container is accounted from the start.
    pub cgroup_dirs: Vec<PathBuf>,
}

/// How the container's standard output and error are delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Pipes the caller reads from `Container::stdout` / `stderr`.
    Piped,
    /// Discarded.
    Null,
}

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("spawning container init {program}")]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("sending the spec to container init")]
    SendSpec(#[source] std::io::Error),
    #[error("waiting for the container")]
    Wait(#[source] std::io::Error),
    #[error("container setup failed: {0}")]
    Setup(String),
}

/// A started container. Dropping it does not stop it; call `kill` / `wait`.
#[derive(Debug)]
pub struct Container {
    pub child: tokio::process::Child,
}

/// Starts a container. Returns once the init process runs; setup errors inside the container make the
/// container exit with code 125 (and a message on its stderr).
pub async fn spawn(init_program: &std::path::Path, spec: &ContainerSpec, output: Output) -> Result<Container, ContainerError> {
    let _ = (init_program, spec, output);
    todo!()
}
