//! The seccomp profile of hardened containers: Docker's default profile for the capability set we keep
//! (see [`crate::security`]), compiled to BPF once per process and shipped to the init as bytes.
//!
//! An allowlist: every system call not listed fails with `EPERM`, as in Docker. What stays out, on purpose:
//! the key store (`keyctl`, `add_key`, `request_key`), `bpf`, `perf_event_open`, `userfaultfd`, `io_uring_*`,
//! mounting and namespaces (`mount`, `umount2`, `pivot_root`, `unshare`, `setns`, the new mount API,
//! `clone` with a namespace flag), `chroot`, `ptrace` and reading other processes' memory, kernel modules,
//! `kexec`, `reboot`, `swapon`, setting the clock (`settimeofday`, `clock_settime`; `adjtimex` stays, as in
//! Docker: changing the clock with it needs `CAP_SYS_TIME`, which no container has), `sethostname`,
//! `acct`, `syslog`, `quotactl`, raw I/O ports, and unusual `personality` values. `clone3` answers `ENOSYS`
//! so that the C library falls back to `clone`, whose flags a filter can inspect.
//!
//! x86_64 only: on other architectures [`hardened`] returns an error instead of a filter that would be wrong.
//! A 32-bit (i386) system call from inside kills the process (seccompiler's architecture check); x32 numbers
//! are not in the allowlist and get `EPERM`.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// Compiled seccomp filters, installed in order. Each instruction is a `sock_filter` packed in a `u64`
/// (`code << 48 | jt << 40 | jf << 32 | k`), which keeps the spec plain JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeccompProgram {
    pub filters: Vec<Vec<u64>>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp profiles exist for x86_64 only, not {0}")]
    UnsupportedArch(&'static str),
    #[error("compiling the seccomp profile: {0}")]
    Compile(String),
}

/// The hardened profile, compiled on first use and shared afterwards (compiling costs milliseconds; a start
/// must not pay it).
pub fn hardened() -> Result<&'static SeccompProgram, SeccompError> {
    static PROGRAM: OnceLock<Result<SeccompProgram, SeccompError>> = OnceLock::new();
    PROGRAM
        .get_or_init(compile_hardened)
        .as_ref()
        .map_err(Clone::clone)
}

impl SeccompProgram {
    /// The filters as the kernel takes them.
    pub fn to_bpf(&self) -> Vec<Vec<seccompiler::sock_filter>> {
        self.filters
            .iter()
            .map(|filter| {
                filter
                    .iter()
                    .map(|&i| seccompiler::sock_filter {
                        code: (i >> 48) as u16,
                        jt: (i >> 40) as u8,
                        jf: (i >> 32) as u8,
                        k: i as u32,
                    })
                    .collect()
            })
            .collect()
    }

    fn from_bpf(filters: Vec<seccompiler::BpfProgram>) -> Self {
        let pack = |i: &seccompiler::sock_filter| {
            (u64::from(i.code) << 48) | (u64::from(i.jt) << 40) | (u64::from(i.jf) << 32) | u64::from(i.k)
        };
        SeccompProgram {
            filters: filters.iter().map(|f| f.iter().map(pack).collect()).collect(),
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn compile_hardened() -> Result<SeccompProgram, SeccompError> {
    Err(SeccompError::UnsupportedArch(std::env::consts::ARCH))
}

#[cfg(target_arch = "x86_64")]
fn compile_hardened() -> Result<SeccompProgram, SeccompError> {
    use std::collections::BTreeMap;

    use seccompiler::{
        SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition as Cond, SeccompFilter,
        SeccompRule, TargetArch,
    };

    let err = |e: seccompiler::Error| SeccompError::Compile(e.to_string());
    let backend = |e: seccompiler::BackendError| SeccompError::Compile(e.to_string());
    let rule = |conditions: Vec<Result<Cond, seccompiler::BackendError>>| {
        let conditions = conditions.into_iter().collect::<Result<Vec<_>, _>>()?;
        SeccompRule::new(conditions)
    };

    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        x86_64::ALLOWED.iter().map(|&nr| (nr, Vec::new())).collect();
    // clone without any namespace flag (threads, fork); clone3 is let through here and answered by the
    // second filter.
    rules.insert(
        libc::SYS_clone,
        vec![rule(vec![Cond::new(0, Len::Qword, Op::MaskedEq(NAMESPACE_FLAGS), 0)]).map_err(backend)?],
    );
    rules.insert(libc::SYS_clone3, Vec::new());
    // personality: only the values Docker allows (query, Linux, UNAME26, their 32-bit variants).
    rules.insert(
        libc::SYS_personality,
        PERSONALITIES
            .iter()
            .map(|&p| rule(vec![Cond::new(0, Len::Dword, Op::Eq, p)]))
            .collect::<Result<_, _>>()
            .map_err(backend)?,
    );
    // Every socket family but AF_VSOCK, as in Docker (raw sockets need CAP_NET_RAW, which nobody keeps).
    rules.insert(
        libc::SYS_socket,
        vec![rule(vec![Cond::new(0, Len::Dword, Op::Ne, libc::AF_VSOCK as u64)]).map_err(backend)?],
    );
    let allowlist = SeccompFilter::new(
        rules,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        TargetArch::x86_64,
    )
    .map_err(backend)?;
    // With two filters the kernel takes the stricter action, and of equal ones the last installed: clone3
    // gets ENOSYS rather than the allowlist's EPERM.
    let clone3 = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        TargetArch::x86_64,
    )
    .map_err(backend)?;
    let compiled = [allowlist, clone3]
        .into_iter()
        .map(|f| seccompiler::BpfProgram::try_from(f).map_err(|e| err(e.into())))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SeccompProgram::from_bpf(compiled))
}

/// `CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
/// CLONE_NEWNET`.
#[cfg(target_arch = "x86_64")]
const NAMESPACE_FLAGS: u64 = 0x7E02_0000;

#[cfg(target_arch = "x86_64")]
const PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

#[cfg(target_arch = "x86_64")]
mod x86_64 {
    /// Docker's default allowlist for x86_64 without the capability-gated extras (`CAP_SYS_ADMIN`,
    /// `CAP_SYS_PTRACE`, `CAP_SYS_TIME`, `CAP_SYS_NICE`, ...) and without `ptrace`, `process_vm_*` and
    /// `kcmp`. `clone`, `clone3`, `personality` and `socket` have rules of their own.
    pub const ALLOWED: &[i64] = &[
        libc::SYS_accept,
        libc::SYS_accept4,
        libc::SYS_access,
        libc::SYS_adjtimex,
        libc::SYS_alarm,
        libc::SYS_arch_prctl,
        libc::SYS_bind,
        libc::SYS_brk,
        libc::SYS_capget,
        libc::SYS_capset,
        libc::SYS_chdir,
        libc::SYS_chmod,
        libc::SYS_chown,
        libc::SYS_clock_adjtime,
        libc::SYS_clock_getres,
        libc::SYS_clock_gettime,
        libc::SYS_clock_nanosleep,
        libc::SYS_close,
        libc::SYS_close_range,
        libc::SYS_connect,
        libc::SYS_copy_file_range,
        libc::SYS_creat,
        libc::SYS_dup,
        libc::SYS_dup2,
        libc::SYS_dup3,
        libc::SYS_epoll_create,
        libc::SYS_epoll_create1,
        libc::SYS_epoll_ctl,
        libc::SYS_epoll_ctl_old,
        libc::SYS_epoll_pwait,
        libc::SYS_epoll_pwait2,
        libc::SYS_epoll_wait,
        libc::SYS_epoll_wait_old,
        libc::SYS_eventfd,
        libc::SYS_eventfd2,
        libc::SYS_execve,
        libc::SYS_execveat,
        libc::SYS_exit,
        libc::SYS_exit_group,
        libc::SYS_faccessat,
        libc::SYS_faccessat2,
        libc::SYS_fadvise64,
        libc::SYS_fallocate,
        libc::SYS_fanotify_mark,
        libc::SYS_fchdir,
        libc::SYS_fchmod,
        libc::SYS_fchmodat,
        libc::SYS_fchown,
        libc::SYS_fchownat,
        libc::SYS_fcntl,
        libc::SYS_fdatasync,
        libc::SYS_fgetxattr,
        libc::SYS_flistxattr,
        libc::SYS_flock,
        libc::SYS_fork,
        libc::SYS_fremovexattr,
        libc::SYS_fsetxattr,
        libc::SYS_fstat,
        libc::SYS_fstatfs,
        libc::SYS_fsync,
        libc::SYS_ftruncate,
        libc::SYS_futex,
        libc::SYS_futex_waitv,
        libc::SYS_futimesat,
        libc::SYS_getcpu,
        libc::SYS_getcwd,
        libc::SYS_getdents,
        libc::SYS_getdents64,
        libc::SYS_getegid,
        libc::SYS_geteuid,
        libc::SYS_getgid,
        libc::SYS_getgroups,
        libc::SYS_getitimer,
        libc::SYS_getpeername,
        libc::SYS_getpgid,
        libc::SYS_getpgrp,
        libc::SYS_getpid,
        libc::SYS_getppid,
        libc::SYS_getpriority,
        libc::SYS_getrandom,
        libc::SYS_getresgid,
        libc::SYS_getresuid,
        libc::SYS_getrlimit,
        libc::SYS_get_robust_list,
        libc::SYS_getrusage,
        libc::SYS_getsid,
        libc::SYS_getsockname,
        libc::SYS_getsockopt,
        libc::SYS_get_thread_area,
        libc::SYS_gettid,
        libc::SYS_gettimeofday,
        libc::SYS_getuid,
        libc::SYS_getxattr,
        libc::SYS_inotify_add_watch,
        libc::SYS_inotify_init,
        libc::SYS_inotify_init1,
        libc::SYS_inotify_rm_watch,
        libc::SYS_io_cancel,
        libc::SYS_ioctl,
        libc::SYS_io_destroy,
        libc::SYS_io_getevents,
        libc::SYS_ioprio_get,
        libc::SYS_ioprio_set,
        libc::SYS_io_setup,
        libc::SYS_io_submit,
        libc::SYS_kill,
        libc::SYS_landlock_add_rule,
        libc::SYS_landlock_create_ruleset,
        libc::SYS_landlock_restrict_self,
        libc::SYS_lchown,
        libc::SYS_lgetxattr,
        libc::SYS_link,
        libc::SYS_linkat,
        libc::SYS_listen,
        libc::SYS_listxattr,
        libc::SYS_llistxattr,
        libc::SYS_lremovexattr,
        libc::SYS_lseek,
        libc::SYS_lsetxattr,
        libc::SYS_lstat,
        libc::SYS_madvise,
        libc::SYS_membarrier,
        libc::SYS_memfd_create,
        libc::SYS_memfd_secret,
        libc::SYS_mincore,
        libc::SYS_mkdir,
        libc::SYS_mkdirat,
        // Device nodes need CAP_MKNOD, which nobody keeps; FIFOs and sockets are made with mknod too.
        libc::SYS_mknod,
        libc::SYS_mknodat,
        libc::SYS_mlock,
        libc::SYS_mlock2,
        libc::SYS_mlockall,
        libc::SYS_mmap,
        libc::SYS_mprotect,
        libc::SYS_mq_getsetattr,
        libc::SYS_mq_notify,
        libc::SYS_mq_open,
        libc::SYS_mq_timedreceive,
        libc::SYS_mq_timedsend,
        libc::SYS_mq_unlink,
        libc::SYS_mremap,
        libc::SYS_msgctl,
        libc::SYS_msgget,
        libc::SYS_msgrcv,
        libc::SYS_msgsnd,
        libc::SYS_msync,
        libc::SYS_munlock,
        libc::SYS_munlockall,
        libc::SYS_munmap,
        libc::SYS_name_to_handle_at,
        libc::SYS_nanosleep,
        libc::SYS_newfstatat,
        libc::SYS_open,
        libc::SYS_openat,
        libc::SYS_openat2,
        libc::SYS_pause,
        libc::SYS_pidfd_open,
        libc::SYS_pidfd_send_signal,
        libc::SYS_pipe,
        libc::SYS_pipe2,
        libc::SYS_pkey_alloc,
        libc::SYS_pkey_free,
        libc::SYS_pkey_mprotect,
        libc::SYS_poll,
        libc::SYS_ppoll,
        libc::SYS_prctl,
        libc::SYS_pread64,
        libc::SYS_preadv,
        libc::SYS_preadv2,
        libc::SYS_prlimit64,
        libc::SYS_process_mrelease,
        libc::SYS_pselect6,
        libc::SYS_pwrite64,
        libc::SYS_pwritev,
        libc::SYS_pwritev2,
        libc::SYS_read,
        libc::SYS_readahead,
        libc::SYS_readlink,
        libc::SYS_readlinkat,
        libc::SYS_readv,
        libc::SYS_recvfrom,
        libc::SYS_recvmmsg,
        libc::SYS_recvmsg,
        libc::SYS_remap_file_pages,
        libc::SYS_removexattr,
        libc::SYS_rename,
        libc::SYS_renameat,
        libc::SYS_renameat2,
        libc::SYS_restart_syscall,
        libc::SYS_rmdir,
        libc::SYS_rseq,
        libc::SYS_rt_sigaction,
        libc::SYS_rt_sigpending,
        libc::SYS_rt_sigprocmask,
        libc::SYS_rt_sigqueueinfo,
        libc::SYS_rt_sigreturn,
        libc::SYS_rt_sigsuspend,
        libc::SYS_rt_sigtimedwait,
        libc::SYS_rt_tgsigqueueinfo,
        libc::SYS_sched_getaffinity,
        libc::SYS_sched_getattr,
        libc::SYS_sched_getparam,
        libc::SYS_sched_get_priority_max,
        libc::SYS_sched_get_priority_min,
        libc::SYS_sched_getscheduler,
        libc::SYS_sched_rr_get_interval,
        libc::SYS_sched_setaffinity,
        libc::SYS_sched_setattr,
        libc::SYS_sched_setparam,
        libc::SYS_sched_setscheduler,
        libc::SYS_sched_yield,
        libc::SYS_seccomp,
        libc::SYS_select,
        libc::SYS_semctl,
        libc::SYS_semget,
        libc::SYS_semop,
        libc::SYS_semtimedop,
        libc::SYS_sendfile,
        libc::SYS_sendmmsg,
        libc::SYS_sendmsg,
        libc::SYS_sendto,
        libc::SYS_setfsgid,
        libc::SYS_setfsuid,
        libc::SYS_setgid,
        libc::SYS_setgroups,
        libc::SYS_setitimer,
        libc::SYS_setpgid,
        libc::SYS_setpriority,
        libc::SYS_setregid,
        libc::SYS_setresgid,
        libc::SYS_setresuid,
        libc::SYS_setreuid,
        libc::SYS_setrlimit,
        libc::SYS_set_robust_list,
        libc::SYS_setsid,
        libc::SYS_setsockopt,
        libc::SYS_set_thread_area,
        libc::SYS_set_tid_address,
        libc::SYS_setuid,
        libc::SYS_setxattr,
        libc::SYS_shmat,
        libc::SYS_shmctl,
        libc::SYS_shmdt,
        libc::SYS_shmget,
        libc::SYS_shutdown,
        libc::SYS_sigaltstack,
        libc::SYS_signalfd,
        libc::SYS_signalfd4,
        libc::SYS_socketpair,
        libc::SYS_splice,
        libc::SYS_stat,
        libc::SYS_statfs,
        libc::SYS_statx,
        libc::SYS_symlink,
        libc::SYS_symlinkat,
        libc::SYS_sync,
        libc::SYS_sync_file_range,
        libc::SYS_syncfs,
        libc::SYS_sysinfo,
        libc::SYS_tee,
        libc::SYS_tgkill,
        libc::SYS_time,
        libc::SYS_timer_create,
        libc::SYS_timer_delete,
        libc::SYS_timer_getoverrun,
        libc::SYS_timer_gettime,
        libc::SYS_timer_settime,
        libc::SYS_timerfd_create,
        libc::SYS_timerfd_gettime,
        libc::SYS_timerfd_settime,
        libc::SYS_times,
        libc::SYS_tkill,
        libc::SYS_truncate,
        libc::SYS_umask,
        libc::SYS_uname,
        libc::SYS_unlink,
        libc::SYS_unlinkat,
        libc::SYS_utime,
        libc::SYS_utimensat,
        libc::SYS_utimes,
        libc::SYS_vfork,
        libc::SYS_vmsplice,
        libc::SYS_wait4,
        libc::SYS_waitid,
        libc::SYS_write,
        libc::SYS_writev,
        // Missing from this libc's constants: io_pgetevents, cachestat, fchmodat2, map_shadow_stack.
        333,
        451,
        452,
        453,
    ];
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    #[test]
    fn compiles_once_and_round_trips() {
        let program = hardened().unwrap();
        assert!(std::ptr::eq(program, hardened().unwrap()), "compiled once");
        assert_eq!(program.filters.len(), 2);
        println!(
            "filter sizes: {:?} instructions",
            program.filters.iter().map(Vec::len).collect::<Vec<_>>()
        );
        // The kernel's limit is 4096 instructions per filter.
        assert!(program.filters.iter().all(|f| !f.is_empty() && f.len() < 4096));
        let json = serde_json::to_string(program).unwrap();
        let back: SeccompProgram = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, program);
        let bpf = back.to_bpf();
        assert_eq!(SeccompProgram::from_bpf(bpf), back);
    }

    #[test]
    fn dangerous_calls_are_not_allowed() {
        let denied = [
            libc::SYS_keyctl,
            libc::SYS_add_key,
            libc::SYS_request_key,
            libc::SYS_bpf,
            libc::SYS_perf_event_open,
            libc::SYS_userfaultfd,
            libc::SYS_io_uring_setup,
            libc::SYS_io_uring_enter,
            libc::SYS_io_uring_register,
            libc::SYS_mount,
            libc::SYS_umount2,
            libc::SYS_pivot_root,
            libc::SYS_unshare,
            libc::SYS_setns,
            libc::SYS_chroot,
            libc::SYS_ptrace,
            libc::SYS_process_vm_readv,
            libc::SYS_process_vm_writev,
            libc::SYS_kexec_load,
            libc::SYS_init_module,
            libc::SYS_finit_module,
            libc::SYS_delete_module,
            libc::SYS_reboot,
            libc::SYS_swapon,
            libc::SYS_swapoff,
            libc::SYS_settimeofday,
            libc::SYS_clock_settime,
            libc::SYS_sethostname,
            libc::SYS_setdomainname,
            libc::SYS_open_by_handle_at,
            libc::SYS_fsopen,
            libc::SYS_move_mount,
            libc::SYS_open_tree,
            libc::SYS_acct,
            libc::SYS_syslog,
            libc::SYS_iopl,
            libc::SYS_ioperm,
            libc::SYS_kcmp,
            libc::SYS_pidfd_getfd,
        ];
        for nr in denied {
            assert!(!x86_64::ALLOWED.contains(&nr), "syscall {nr} must not be allowed");
        }
        let mut sorted = x86_64::ALLOWED.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), x86_64::ALLOWED.len(), "no duplicates");
    }
}
