//! The tenant's user namespace and the idmapped mounts that let it own its files.
//!
//! The outer init creates the user namespace with the spec's [`IdMap`] (container ids `0..size` are host ids
//! `host_base..host_base+size`) and keeps a descriptor to it; nothing else is owned by it: the mount, UTS, IPC,
//! network and PID namespaces stay the host's, so container root cannot mount, set the hostname or touch the
//! network. Layers, the overlay upper directory and bind sources are shown through idmapped mounts with that
//! namespace, so a file owned by uid 0 on disk is owned by container root (host uid `host_base`), and what the
//! app writes lands on disk as container uids. Only the app enters the namespace ([`enter`]), right before it
//! drops its host privileges; PID 1 stays host root.
//!
//! The new mount API (`open_tree`, `mount_setattr`, `move_mount`) has no wrapper in nix 0.29, so this module
//! calls the raw syscalls through `libc` behind small functions, rather than adding a second syscall crate.

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, setgroups, setresgid, setresuid, ForkResult, Gid, Uid};

use super::{fail, Context, SetupError};
use crate::IdMap;

/// Creates a user namespace mapping container ids `0..map.size` to `map.host_base..`, for uids and gids, and
/// returns a descriptor to it (close-on-exec).
///
/// Needs the host's `/proc` and PID namespace: a helper child unshares the namespace and waits on a pipe while
/// we (host root, so no `setgroups` "deny" is needed) write its maps and open `/proc/PID/ns/user`; it then
/// exits and is reaped here.
pub fn create(map: &IdMap) -> Result<OwnedFd, SetupError> {
    let (ready_r, ready_w) = nix::unistd::pipe().ctx(|| "creating a pipe".into())?;
    let (go_r, go_w) = nix::unistd::pipe().ctx(|| "creating a pipe".into())?;
    // SAFETY: the caller is single-threaded (see the module docs of `init`).
    match unsafe { fork() }.ctx(|| "forking the user namespace holder".into())? {
        ForkResult::Child => {
            drop((ready_r, go_w));
            let unshared = unshare(CloneFlags::CLONE_NEWUSER).is_ok();
            let _ = File::from(ready_w).write_all(&[u8::from(unshared)]);
            // Until the parent closes its end: it has then opened our namespace.
            let _ = File::from(go_r).read(&mut [0u8]);
            // SAFETY: _exit ends the process without running anything inherited from the parent.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => {
            drop((ready_w, go_r));
            let result = (|| {
                let mut unshared = [0u8];
                File::from(ready_r)
                    .read_exact(&mut unshared)
                    .ctx(|| "waiting for the user namespace holder".into())?;
                if unshared[0] != 1 {
                    return fail("creating a user namespace failed".into());
                }
                let line = format!("0 {} {}\n", map.host_base, map.size);
                for file in ["uid_map", "gid_map"] {
                    let path = format!("/proc/{child}/{file}");
                    std::fs::write(&path, &line).ctx(|| format!("writing {path}"))?;
                }
                let path = format!("/proc/{child}/ns/user");
                Ok(OwnedFd::from(
                    File::open(&path).ctx(|| format!("opening {path}"))?,
                ))
            })();
            drop(go_w);
            while let Err(Errno::EINTR) = waitpid(child, None) {}
            result
        }
    }
}

/// In the app process, before anything else: joins the user namespace and becomes its root (uid and gid 0,
/// no supplementary groups), which is host uid `host_base`. The process keeps capabilities only inside the
/// namespace, which owns nothing.
pub fn enter(userns: BorrowedFd<'_>) -> Result<(), SetupError> {
    setns(userns, CloneFlags::CLONE_NEWUSER).ctx(|| "joining the user namespace".into())?;
    setgroups(&[]).ctx(|| "dropping supplementary groups".into())?;
    let root_gid = Gid::from_raw(0);
    setresgid(root_gid, root_gid, root_gid).ctx(|| "setting the gid".into())?;
    let root_uid = Uid::from_raw(0);
    setresuid(root_uid, root_uid, root_uid).ctx(|| "setting the uid".into())
}

/// In PID 1, before it builds the root: make host root's filesystem uid and gid `host_base` (container root),
/// keeping every capability.
///
/// Overlayfs does its work in the upper directory with the credentials of whoever mounted it, and mkdir and
/// create through an idmapped mount fail (EOVERFLOW) for a filesystem uid the mapping does not cover, as host
/// uid 0 is not. With filesystem ids `host_base`, the overlay's work directory, copy-ups, and the mount points
/// PID 1 creates are written as uid 0 on disk. Changing the filesystem uid away from 0 drops the file
/// capabilities (`CAP_CHOWN`, `CAP_DAC_OVERRIDE`, ...) from the effective set, which copy-up needs: they are
/// raised again from the permitted set. It also clears the parent-death signal: call it before setting that.
pub fn act_on_files_as(map: &IdMap) -> Result<(), SetupError> {
    nix::unistd::setfsgid(Gid::from_raw(map.host_base));
    nix::unistd::setfsuid(Uid::from_raw(map.host_base));
    // setfsuid/setfsgid report no errors: calling again returns the current value.
    let (uid, gid) = (
        nix::unistd::setfsuid(Uid::from_raw(map.host_base)),
        nix::unistd::setfsgid(Gid::from_raw(map.host_base)),
    );
    if uid.as_raw() != map.host_base || gid.as_raw() != map.host_base {
        return fail(format!("setting the filesystem ids to {}", map.host_base));
    }
    raise_permitted_capabilities()
}

/// Makes the effective capability set equal to the permitted one (capget/capset, version 3).
fn raise_permitted_capabilities() -> Result<(), SetupError> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget writes two `Data` (the version 3 size) into `data` and may update `header`; both live.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header as *mut Header, data.as_mut_ptr()) };
    Errno::result(rc).ctx(|| "reading capabilities".into())?;
    for d in &mut data {
        d.effective = d.permitted;
    }
    // SAFETY: capset reads the header and two `Data`, both live for the call.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) };
    Errno::result(rc).ctx(|| "raising capabilities".into()).map(drop)
}

/// A detached copy of the mount at `path` (and, if `recursive`, the mounts below it) whose ids are mapped
/// through `userns`. Attach it with [`attach`].
pub fn idmapped_tree(path: &Path, userns: BorrowedFd<'_>, recursive: bool) -> Result<OwnedFd, SetupError> {
    let what = || format!("idmapping {}", path.display());
    let c_path = CString::new(path.as_os_str().as_bytes()).ctx(what)?;
    let recursive_flag = if recursive {
        libc::AT_RECURSIVE as libc::c_uint
    } else {
        0
    };
    let flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | recursive_flag;
    // SAFETY: open_tree reads a NUL-terminated path that outlives the call and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c_path.as_ptr(), flags) };
    let fd = Errno::result(fd).ctx(what)?;
    // SAFETY: open_tree returned a new descriptor that nothing else owns.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let at_flags = libc::AT_EMPTY_PATH as libc::c_uint | recursive_flag;
    // SAFETY: mount_setattr reads `attr` (of the size passed) and an empty NUL-terminated path, both alive
    // for the call; the tree descriptor is open.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            at_flags,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    Errno::result(rc).ctx(what)?;
    Ok(tree)
}

/// Attaches a detached mount tree (from [`idmapped_tree`]) at `target`.
pub fn attach(tree: OwnedFd, target: &Path) -> Result<(), SetupError> {
    let what = || format!("attaching an idmapped mount at {}", target.display());
    let c_target = CString::new(target.as_os_str().as_bytes()).ctx(what)?;
    // SAFETY: move_mount reads two NUL-terminated paths that outlive the call; the tree descriptor is open.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_fd().as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            c_target.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    Errno::result(rc).ctx(what).map(drop)
}
