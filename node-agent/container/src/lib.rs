//! The small privileged part of Berth: starts one process tree in new namespaces (PID, mount, UTS, IPC, cgroup,
//! and network unless told to share the host's), with an overlayfs root built from read-only layer directories,
//! `pivot_root`s into it, and runs a tiny init as PID 1 that reaps zombies and forwards signals. Optionally the
//! app runs in a user namespace of its own (see [`IdMap`]).
//!
//! Used by the node agent for app instances and by the builder for build steps. It does not create cgroups or
//! network interfaces (the caller does, and passes their paths), does not unpack images, and keeps no state:
//! everything it mounts lives in the container's own mount namespace and disappears with it.
//!
//! Mechanism: `spawn` re-executes the `berth` binary (`init_program`, normally `/proc/self/exe`) with the
//! hidden argument [`INIT_ARG`]; `berth`'s `main` calls [`init::main`] for it before starting any runtime.

pub mod init;
pub mod mountinfo;
pub mod seccomp;
pub mod security;
pub mod user;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

pub use security::Security;

/// The hidden first argument that makes the `berth` binary act as a container's init.
pub const INIT_ARG: &str = "__container-init";

/// Follows [`INIT_ARG`] when the spec comes on descriptor 3 and the caller's standard input, output and error
/// are the app's own (see [`spawn_attached`]).
pub const ATTACHED_ARG: &str = "--attached";
/// As [`ATTACHED_ARG`], and descriptor 0 is a terminal the app gets as its controlling terminal.
pub const ATTACHED_TTY_ARG: &str = "--attached-tty";

/// Exit code of a container whose setup failed (before the app was started), as with `docker run`.
pub const SETUP_FAILED_EXIT_CODE: i32 = 125;

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
    /// A new network namespace of its own with nothing but loopback (up): no way out. What `crun` gives a
    /// container without a network namespace path; the start-latency benchmark compares the two this way.
    Isolated,
}

/// A user namespace's id mapping: container uids and gids `0..size` are host ids `host_base..host_base+size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMap {
    pub host_base: u32,
    pub size: u32,
}

impl From<vocabulary::IdRange> for IdMap {
    /// An account's range (see `vocabulary::IdRange`).
    fn from(range: vocabulary::IdRange) -> Self {
        IdMap {
            host_base: range.host_base(),
            size: vocabulary::IdRange::SIZE,
        }
    }
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
    /// The app's capabilities, resource limits and seccomp filter; hardened unless said otherwise.
    #[serde(default)]
    pub security: Security,
    /// Run the app in a user namespace with this mapping (its root is host uid `host_base`), with layers, the
    /// upper directory and bind sources seen through idmapped mounts, so files keep their ownership on disk
    /// (uid 0 on disk is container root). `None`: the app runs as host root.
    #[serde(default)]
    pub user_namespace: Option<IdMap>,
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
    #[error("signalling the container")]
    Signal(#[source] std::io::Error),
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
///
/// The init's standard input carries the spec as JSON and is closed right after; the init then reopens it as
/// `/dev/null`, so the app never reads from the caller.
pub async fn spawn(
    init_program: &Path,
    spec: &ContainerSpec,
    output: Output,
) -> Result<Container, ContainerError> {
    let json = serde_json::to_vec(spec).map_err(|e| ContainerError::SendSpec(e.into()))?;
    let stdio = || match output {
        Output::Piped => Stdio::piped(),
        Output::Null => Stdio::null(),
    };
    let mut child = tokio::process::Command::new(init_program)
        .arg(INIT_ARG)
        .stdin(Stdio::piped())
        .stdout(stdio())
        .stderr(stdio())
        .spawn()
        .map_err(|source| ContainerError::Spawn {
            program: init_program.to_owned(),
            source,
        })?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let sent = async {
        stdin.write_all(&json).await?;
        stdin.shutdown().await
    }
    .await;
    drop(stdin);
    if let Err(e) = sent {
        // The init died before reading its spec; do not leave it behind.
        let _ = child.start_kill();
        let _ = child.wait().await;
        return Err(ContainerError::SendSpec(e));
    }
    Ok(Container { child })
}

/// The app's standard input, output and error for [`spawn_attached`].
#[derive(Debug)]
pub struct Attached {
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
    /// `stdin` is a terminal (the slave side of a pseudo-terminal, also given as stdout and stderr): the app
    /// runs in a new session with it as its controlling terminal.
    pub terminal: bool,
}

/// Starts a container whose app reads and writes the given descriptors (a one-off run attached to a user);
/// the spec goes to the init on descriptor 3, so standard input is free for the app. Otherwise as [`spawn`].
pub async fn spawn_attached(
    init_program: &Path,
    spec: &ContainerSpec,
    stdio: Attached,
) -> Result<Container, ContainerError> {
    use std::os::fd::AsRawFd;
    let json = serde_json::to_vec(spec).map_err(|e| ContainerError::SendSpec(e.into()))?;
    let (read, write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| ContainerError::SendSpec(e.into()))?;
    let mut command = tokio::process::Command::new(init_program);
    command
        .arg(INIT_ARG)
        .arg(if stdio.terminal {
            ATTACHED_TTY_ARG
        } else {
            ATTACHED_ARG
        })
        .stdin(stdio.stdin)
        .stdout(stdio.stdout)
        .stderr(stdio.stderr);
    let raw = read.as_raw_fd();
    // SAFETY: between fork and exec the closure only calls dup2 and fcntl, which are async-signal-safe, and
    // touches no memory but its copied integer.
    unsafe {
        command.pre_exec(move || {
            if raw == 3 {
                // dup2 onto itself keeps close-on-exec: clear it instead.
                if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|source| ContainerError::Spawn {
        program: init_program.to_owned(),
        source,
    })?;
    drop(read);
    let sent = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut file = std::fs::File::from(write);
        file.write_all(&json)
    })
    .await
    .map_err(|e| ContainerError::SendSpec(std::io::Error::other(e.to_string())))
    .and_then(|r| r.map_err(ContainerError::SendSpec));
    if let Err(e) = sent {
        let _ = child.start_kill();
        let _ = child.wait().await;
        return Err(e);
    }
    Ok(Container { child })
}

impl Container {
    /// The host PID of the container's outer init, which forwards signals to the container's PID 1.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Sends a signal to the container (forwarded by the init to every process inside).
    pub fn signal(&self, signal: nix::sys::signal::Signal) -> Result<(), ContainerError> {
        let Some(pid) = self.child.id() else {
            return Ok(()); // Already reaped: nothing to signal.
        };
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal)
            .map_err(|e| ContainerError::Signal(std::io::Error::from(e)))
    }

    /// Waits for the container to exit. The exit code is the app's own, `128 + signal` if the app was killed
    /// by a signal, or 125 if setting up the container failed.
    pub async fn wait(&mut self) -> Result<std::process::ExitStatus, ContainerError> {
        self.child.wait().await.map_err(ContainerError::Wait)
    }
}
