//! The app's last steps before `execve`, in the forked app process: resource limits, the bounding set, the
//! switch to the image's user (which empties the permitted and effective sets of a non-root user), the other
//! capability sets, `no_new_privs`, then the seccomp filter (last, because the steps before it use calls it
//! forbids).

use caps::{CapSet, CapsHashSet};

use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};

use super::{Context, SetupError};
use crate::security::{Resource, Security};
use crate::user::Credentials;

/// Applies `security` to the calling (single-threaded) process, and switches to `user` when given.
pub fn apply(security: &Security, user: Option<&Credentials>) -> Result<(), SetupError> {
    for limit in &security.rlimits {
        let resource = match limit.resource {
            Resource::NoFile => libc::RLIMIT_NOFILE,
            Resource::Core => libc::RLIMIT_CORE,
            Resource::SigPending => libc::RLIMIT_SIGPENDING,
            Resource::MsgQueue => libc::RLIMIT_MSGQUEUE,
        };
        let mut current = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes the struct we pass and nothing else.
        if unsafe { libc::getrlimit(resource, &mut current) } != 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| format!("reading {:?}", limit.resource));
        }
        // Limits only ever go down: raising one needs CAP_SYS_RESOURCE, which the agent may not have (it does
        // not here), and an agent started with lower limits wants them kept.
        let hard = limit.hard.min(current.rlim_max);
        let value = libc::rlimit {
            rlim_cur: limit.soft.min(hard),
            rlim_max: hard,
        };
        // SAFETY: setrlimit reads the struct we pass and nothing else.
        if unsafe { libc::setrlimit(resource, &value) } != 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| format!("setting {:?}", limit.resource));
        }
    }

    let keep: CapsHashSet = security.capabilities.iter().copied().collect();
    // The bounding set first: dropping from it needs CAP_SETPCAP, which the sets below may not keep.
    let bounding = caps::read(None, CapSet::Bounding).ctx(|| "reading the bounding capabilities".into())?;
    for cap in bounding.difference(&keep) {
        caps::drop(None, CapSet::Bounding, *cap).ctx(|| format!("dropping {cap} from the bounding set"))?;
    }
    if let Some(user) = user {
        // After the bounding set (dropping from it needs CAP_SETPCAP, which a non-root uid loses) and groups
        // before ids (setting them needs CAP_SETGID, lost with the uid).
        let groups: Vec<Gid> = user.groups.iter().copied().map(Gid::from_raw).collect();
        setgroups(&groups).ctx(|| format!("setting the groups {:?}", user.groups))?;
        let gid = Gid::from_raw(user.gid);
        setresgid(gid, gid, gid).ctx(|| format!("setting gid {}", user.gid))?;
        let uid = Uid::from_raw(user.uid);
        setresuid(uid, uid, uid).ctx(|| format!("setting uid {}", user.uid))?;
    }
    caps::clear(None, CapSet::Ambient).ctx(|| "clearing the ambient capabilities".into())?;
    caps::clear(None, CapSet::Inheritable).ctx(|| "clearing the inheritable capabilities".into())?;
    // Permitted can only shrink, and effective must stay within it: shrink effective first.
    let permitted =
        caps::read(None, CapSet::Permitted).ctx(|| "reading the permitted capabilities".into())?;
    let kept: CapsHashSet = permitted.intersection(&keep).copied().collect();
    caps::set(None, CapSet::Effective, &kept).ctx(|| "setting the effective capabilities".into())?;
    caps::set(None, CapSet::Permitted, &kept).ctx(|| "setting the permitted capabilities".into())?;

    nix::sys::prctl::set_no_new_privs().ctx(|| "setting no_new_privs".into())?;
    for filter in security.seccomp.to_bpf() {
        seccompiler::apply_filter(&filter).ctx(|| "installing the seccomp filter".into())?;
    }
    Ok(())
}
