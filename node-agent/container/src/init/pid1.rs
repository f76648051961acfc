//! PID 1 of the container: builds the root filesystem, starts the app and acts as its init.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{chdir, execve, fork, sethostname, setsid, ForkResult, Pid};

use super::mounts::{self, CgroupHierarchy};
use super::{close_fds_from, harden, signals, userns, Context, SetupError};
use crate::user::Credentials;
use crate::{ContainerSpec, Security, SETUP_FAILED_EXIT_CODE};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Runs PID 1 and returns the exit code for the whole container: the app's.
pub fn run(
    spec: &ContainerSpec,
    hierarchies: &[CgroupHierarchy],
    waited: &SigSet,
    user_namespace: Option<&OwnedFd>,
    terminal: bool,
) -> Result<i32, SetupError> {
    // Before the parent-death signal: changing the filesystem ids clears it.
    if let Some(map) = &spec.user_namespace {
        userns::act_on_files_as(map)?;
    }
    // If the outer init is killed (SIGKILL cannot be forwarded), take the whole PID namespace down with it.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).ctx(|| "setting the parent-death signal".into())?;
    let user_namespace = user_namespace.map(AsFd::as_fd);
    mounts::build_root(spec, hierarchies, user_namespace)?;
    sethostname(&spec.hostname).ctx(|| format!("setting hostname {}", spec.hostname))?;
    chdir(&spec.cwd).ctx(|| format!("changing to working directory {}", spec.cwd.display()))?;

    let mut exec = Exec::prepare(spec, user_namespace)?;
    exec.terminal = terminal;
    // SAFETY: single-threaded process (see the module docs of `init`).
    match unsafe { fork() }.ctx(|| "forking the app".into())? {
        ForkResult::Child => exec.run(),
        ForkResult::Parent { child } => supervise(child, waited),
    }
}

/// Reaps every process that ends up as our child, forwards signals, and returns when the app exits.
///
/// Once SIGTERM came (the instance is being stopped), every process got it, as on Heroku, and each may take
/// its time to finish: the app's exit then waits for the rest, up to the caller's grace period (it sends
/// SIGKILL after it). This matters because the app is usually `/bin/sh -c CMD`, and Debian's dash does not
/// exec the last command: the shell dies of SIGTERM at once while the server it started shuts down cleanly.
fn supervise(app: Pid, waited: &SigSet) -> Result<i32, SetupError> {
    let mut stopping = false;
    let mut app_exit = None;
    loop {
        let signal = waited.wait().ctx(|| "waiting for signals".into())?;
        if signal != Signal::SIGCHLD {
            stopping |= signal == Signal::SIGTERM;
            // Everything in the namespace but us: the app and whatever it started, in any process group.
            let _ = kill(Pid::from_raw(-1), signal);
            continue;
        }
        let others_left = match app_exit {
            None => {
                app_exit = signals::reap(Some(app))?;
                true
            }
            Some(_) => signals::reap_all()?,
        };
        let Some(code) = app_exit else { continue };
        if stopping && others_left && signals::reap_all()? {
            continue;
        }
        // The app is gone (and, when stopping, so is everything else): nothing it left behind may outlive it.
        let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
        // Until ECHILD: all reaped.
        while matches!(waitpid(None, None), Ok(_) | Err(Errno::EINTR)) {}
        return Ok(code);
    }
}

/// Everything `execve` needs, prepared before the fork so that errors are setup errors.
struct Exec<'a> {
    user_namespace: Option<BorrowedFd<'a>>,
    program: CString,
    argv: Vec<CString>,
    env: Vec<CString>,
    security: Security,
    credentials: Option<Credentials>,
    /// Descriptor 0 is a terminal to make the app's controlling terminal.
    terminal: bool,
}

impl<'a> Exec<'a> {
    fn prepare(spec: &ContainerSpec, user_namespace: Option<BorrowedFd<'a>>) -> Result<Self, SetupError> {
        let cstring = |s: &[u8]| CString::new(s).ctx(|| "argument or environment with a NUL byte".into());
        let path_var = spec.env.get("PATH").map(String::as_str).unwrap_or(DEFAULT_PATH);
        let program = find_program(&spec.argv[0], path_var)
            .ok_or_else(|| SetupError(format!("{}: command not found", spec.argv[0])))?;
        let credentials = spec.security.user.as_deref().map(resolve_user).transpose()?;
        let mut env = spec.env.clone();
        if let Some(home) = credentials.as_ref().and_then(|c| c.home.clone()) {
            env.entry("HOME".into()).or_insert(home);
        }
        Ok(Exec {
            user_namespace,
            program: cstring(program.as_os_str().as_bytes())?,
            argv: spec
                .argv
                .iter()
                .map(|a| cstring(a.as_bytes()))
                .collect::<Result<_, _>>()?,
            env: env
                .iter()
                .map(|(k, v)| cstring(format!("{k}={v}").as_bytes()))
                .collect::<Result<_, _>>()?,
            security: spec.security.clone(),
            credentials,
            terminal: false,
        })
    }

    /// In the forked app process: enter the tenant's user namespace, become a session leader (so a
    /// terminal-less app gets its own process group), drop the inits' signal setup and every inherited
    /// descriptor above stderr, drop privileges, and exec.
    fn run(self) -> ! {
        if let Some(ns) = self.user_namespace {
            if let Err(e) = userns::enter(ns) {
                let _ = writeln!(std::io::stderr(), "container setup failed: {e}");
                std::process::exit(SETUP_FAILED_EXIT_CODE)
            }
        }
        signals::restore_defaults();
        let _ = setsid();
        if self.terminal {
            // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal it from another session).
            if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
                let err = std::io::Error::last_os_error();
                let _ = writeln!(
                    std::io::stderr(),
                    "container setup failed: making the terminal controlling: {err}"
                );
                std::process::exit(SETUP_FAILED_EXIT_CODE)
            }
        }
        close_fds_from(3);
        if let Err(e) = harden::apply(&self.security, self.credentials.as_ref()) {
            let _ = writeln!(std::io::stderr(), "container setup failed: {e}");
            std::process::exit(SETUP_FAILED_EXIT_CODE)
        }
        let err = execve(&self.program, &self.argv, &self.env).unwrap_err();
        let _ = writeln!(
            std::io::stderr(),
            "container: executing {:?}: {err}",
            self.program
        );
        // Shell conventions: 127 not found, 126 found but not executable.
        std::process::exit(if err == Errno::ENOENT { 127 } else { 126 })
    }
}

/// Resolves the app's `USER` with the container's own `/etc/passwd` and `/etc/group` (we are in its root now);
/// a missing file reads as empty, so numeric ids still work in an image without one.
fn resolve_user(user: &str) -> Result<Credentials, SetupError> {
    let read = |path: &str| match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e).ctx(|| format!("reading the container's {path}")),
    };
    crate::user::resolve(user, &read("/etc/passwd")?, &read("/etc/group")?).map_err(SetupError)
}

/// Looks `name` up like a shell does: as a path if it has a slash, otherwise in each `PATH` entry.
fn find_program(name: &str, path_var: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    path_var
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|dir| Path::new(dir).join(name))
        .find(|candidate| {
            std::fs::metadata(candidate).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}
