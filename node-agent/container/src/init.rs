//! The code that runs inside the re-executed `berth` binary (see the crate docs).
//!
//! Two processes: the *outer* init joins the cgroups and the network namespace, unshares the other namespaces
//! and forks; its child is PID 1 of the new PID namespace (see [`pid1`]), builds the root filesystem and
//! supervises the app. The outer init stays outside the PID namespace so that the caller has a normal child to
//! signal and wait for: it forwards signals to PID 1 and exits with PID 1's exit code.
//!
//! Both are single-threaded (no runtime is started before [`main`]), which is what makes `fork` safe here.

mod harden;
mod masks;
mod mounts;
mod pid1;
mod signals;
mod userns;

use std::fmt::Display;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::signal::kill;
use nix::unistd::{fork, ForkResult, Pid};

use crate::{ContainerSpec, Network, SETUP_FAILED_EXIT_CODE};

/// Entry point for `berth __container-init`. Never returns.
pub fn main() -> ! {
    let code = match run_outer() {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "container setup failed: {e}");
            SETUP_FAILED_EXIT_CODE
        }
    };
    std::process::exit(code)
}

/// A setup step that failed, with what was being done. Printed once on stderr.
#[derive(Debug)]
pub(crate) struct SetupError(String);

impl Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) trait Context<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, SetupError>;
}

impl<T, E: Display> Context<T> for Result<T, E> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, SetupError> {
        self.map_err(|e| SetupError(format!("{}: {e}", what())))
    }
}

fn fail<T>(message: String) -> Result<T, SetupError> {
    Err(SetupError(message))
}

fn run_outer() -> Result<i32, SetupError> {
    let mode = std::env::args().nth(2);
    let attached = matches!(
        mode.as_deref(),
        Some(crate::ATTACHED_ARG | crate::ATTACHED_TTY_ARG)
    );
    let terminal = mode.as_deref() == Some(crate::ATTACHED_TTY_ARG);
    let spec = if attached { read_spec_from_fd3()? } else { None };
    // Whatever the caller leaked to us (it should have set CLOEXEC everywhere) must not reach the app.
    close_fds_from(3);
    let spec = match spec {
        Some(spec) => spec,
        None => read_spec()?,
    };
    validate(&spec)?;
    // Read while the host's /proc is still ours: where each cgroup directory's hierarchy is mounted.
    let hierarchies = mounts::cgroup_hierarchies(&spec.cgroup_dirs)?;

    // Join the cgroups first so that everything below, including PID 1 and the app, is accounted and limited,
    // and so that the cgroup namespace created below is rooted at the container's own cgroups.
    let pid = std::process::id().to_string();
    for dir in &spec.cgroup_dirs {
        std::fs::write(dir.join("cgroup.procs"), &pid).ctx(|| format!("joining cgroup {}", dir.display()))?;
    }
    // Created from here, in the host's PID namespace, where the helper's /proc entry is the host's own.
    let user_namespace = spec.user_namespace.as_ref().map(userns::create).transpose()?;
    match &spec.network {
        Network::Host => {}
        Network::Join(path) => {
            let netns = File::open(path).ctx(|| format!("opening network namespace {}", path.display()))?;
            setns(&netns, CloneFlags::CLONE_NEWNET)
                .ctx(|| format!("joining network namespace {}", path.display()))?;
        }
        Network::Isolated => {
            unshare(CloneFlags::CLONE_NEWNET).ctx(|| "unsharing the network namespace".into())?;
            loopback_up().ctx(|| "bringing up loopback".into())?;
        }
    }
    unshare(
        CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWUTS
            | CloneFlags::CLONE_NEWIPC
            | CloneFlags::CLONE_NEWPID
            | CloneFlags::CLONE_NEWCGROUP,
    )
    .ctx(|| "unsharing namespaces".into())?;

    // Blocked before the fork so that no signal is lost between the fork and the wait loops; PID 1 inherits the
    // mask and unblocks it only in the app.
    let waited = signals::block()?;
    // SAFETY: this process is single-threaded (no runtime was started before `main`), so the child may run
    // arbitrary code, allocation included.
    match unsafe { fork() }.ctx(|| "forking PID 1".into())? {
        ForkResult::Child => {
            let code = match pid1::run(&spec, &hierarchies, &waited, user_namespace.as_ref(), terminal) {
                Ok(code) => code,
                Err(e) => {
                    let _ = writeln!(std::io::stderr(), "container setup failed: {e}");
                    SETUP_FAILED_EXIT_CODE
                }
            };
            std::process::exit(code)
        }
        ForkResult::Parent { child } => forward_until_exit(child, &waited),
    }
}

/// Sets `lo` up in the (new) network namespace this process is in.
fn loopback_up() -> std::io::Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: plain socket(2); the descriptor is owned (and closed) by `socket` below.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor nobody else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: all-zero is a valid `ifreq`.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (to, from) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *to = *from as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write `ifr_ifru.ifru_flags` of the `ifreq` we pass.
    unsafe {
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The outer init's loop: forwards signals to PID 1 and returns PID 1's exit code.
fn forward_until_exit(pid1: Pid, waited: &nix::sys::signal::SigSet) -> Result<i32, SetupError> {
    loop {
        let signal = waited.wait().ctx(|| "waiting for signals".into())?;
        if signal == nix::sys::signal::Signal::SIGCHLD {
            if let Some(code) = signals::reap(Some(pid1))? {
                return Ok(code);
            }
        } else {
            // PID 1 may have just exited; its status arrives with the next SIGCHLD.
            let _ = kill(pid1, signal);
        }
    }
}

/// The spec of an attached container, from descriptor 3 (closed after); standard input stays the app's.
fn read_spec_from_fd3() -> Result<Option<ContainerSpec>, SetupError> {
    use std::os::fd::FromRawFd;
    // SAFETY: the caller (`spawn_attached`) put the spec pipe's read end on descriptor 3, which nothing else
    // in this process owns; the `File` closes it.
    let mut file = unsafe { File::from_raw_fd(3) };
    let mut json = Vec::new();
    file.read_to_end(&mut json)
        .ctx(|| "reading the spec from descriptor 3".into())?;
    serde_json::from_slice(&json)
        .ctx(|| "parsing the spec".into())
        .map(Some)
}

fn read_spec() -> Result<ContainerSpec, SetupError> {
    let mut json = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut json)
        .ctx(|| "reading the spec from stdin".into())?;
    let spec = serde_json::from_slice(&json).ctx(|| "parsing the spec".into())?;
    // The app must not read from whatever the caller gave us as stdin.
    let null = File::open("/dev/null").ctx(|| "opening /dev/null".into())?;
    nix::unistd::dup2(null.as_raw_fd(), 0).ctx(|| "reopening stdin as /dev/null".into())?;
    Ok(spec)
}

fn validate(spec: &ContainerSpec) -> Result<(), SetupError> {
    if spec.argv.is_empty() {
        return fail("argv is empty".into());
    }
    if spec.layers.is_empty() {
        return fail("no layers".into());
    }
    let absolute = |p: &Path| p.is_absolute();
    if !spec.cwd.is_absolute()
        || spec
            .binds
            .iter()
            .any(|b| !absolute(&b.target) || !absolute(&b.source))
    {
        return fail("cwd and bind mount paths must be absolute".into());
    }
    if let Some(map) = &spec.user_namespace {
        // Host root (or any host id below 2^16, system users) inside a tenant's range would defeat the point.
        if map.size == 0 || map.host_base < 65536 || map.host_base.checked_add(map.size).is_none() {
            return fail(format!("bad user namespace range {}+{}", map.host_base, map.size));
        }
    }
    if spec.hostname.is_empty() || spec.hostname.len() > 64 {
        return fail(format!("bad hostname {:?}", spec.hostname));
    }
    Ok(())
}

/// Closes every file descriptor from `first` up, with `close_range` or, on old kernels, by listing
/// `/proc/self/fd`.
pub(crate) fn close_fds_from(first: i32) {
    // SAFETY: close_range only closes descriptors; nothing in this single-threaded process holds one of them
    // across this call (the std handles for 0-2 are below `first`).
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first as libc::c_uint, libc::c_uint::MAX, 0) };
    if rc == 0 {
        return;
    }
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd >= first)
        .collect();
    for fd in fds {
        // SAFETY: as above; closing the read_dir's own descriptor (already dropped) just fails with EBADF.
        unsafe { libc::close(fd) };
    }
}
