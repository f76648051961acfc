//! Signals the inits wait for: the ones forwarded to the app, and SIGCHLD.

use nix::errno::Errno;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::{Context, SetupError};

/// Forwarded from the outer init to PID 1 and from PID 1 to every process in the container.
pub const FORWARDED: [Signal; 6] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

extern "C" fn ignore(_: libc::c_int) {}

/// Installs a no-op handler for every waited signal and blocks them, returning the set to `wait` on.
///
/// The handler matters for PID 1 of a PID namespace: the kernel drops signals for which such an init has no
/// handler. Blocking makes them pending so that `sigwait` collects them one by one.
pub fn block() -> Result<SigSet, SetupError> {
    let mut set = SigSet::empty();
    let handler = SigAction::new(SigHandler::Handler(ignore), SaFlags::SA_RESTART, SigSet::empty());
    for signal in FORWARDED.into_iter().chain([Signal::SIGCHLD]) {
        set.add(signal);
        // SAFETY: the handler does nothing, so it is async-signal-safe.
        unsafe { sigaction(signal, &handler) }.ctx(|| format!("installing a handler for {signal}"))?;
    }
    set.thread_block().ctx(|| "blocking signals".into())?;
    Ok(set)
}

/// Undoes [`block`] in a process about to exec: default dispositions, nothing blocked.
pub fn restore_defaults() {
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for signal in FORWARDED.into_iter().chain([Signal::SIGCHLD]) {
        // SAFETY: restoring the default disposition installs no code.
        let _ = unsafe { sigaction(signal, &default) };
    }
    let _ = SigSet::all().thread_unblock();
}

/// The exit code a shell would report for a wait status.
pub fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, signal, _) => Some(128 + signal as i32),
        _ => None,
    }
}

/// Reaps every child that has exited, without blocking. Returns the exit code of `watched` if it was among
/// them (or if no child is left at all, which means it is gone).
pub fn reap(watched: Option<Pid>) -> Result<Option<i32>, SetupError> {
    let mut result = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => return Ok(result),
            Ok(status) => {
                if status.pid() == watched && watched.is_some() {
                    result = exit_code(status);
                }
            }
            Err(Errno::EINTR) => continue,
            Err(Errno::ECHILD) => return Ok(result.or(watched.map(|_| LOST))),
            Err(e) => return Err(e).ctx(|| "waiting for children".into()),
        }
    }
}

/// Reaps every child that has exited, without blocking. Returns whether any child is left: every process of
/// the PID namespace has PID 1 or one of its children as an ancestor, so none left means none at all.
pub fn reap_all() -> Result<bool, SetupError> {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => return Ok(true),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(Errno::ECHILD) => return Ok(false),
            Err(e) => return Err(e).ctx(|| "waiting for children".into()),
        }
    }
}

/// Reported if the watched child vanished without a status we saw (should not happen).
const LOST: i32 = 255;
