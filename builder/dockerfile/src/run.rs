//! A `RUN` step: the command in a build container over the image's layers, with a fresh overlay upper dir.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Duration;

use build_sandbox::BuildSandbox;
use container::{BindMount, ContainerSpec, IdMap, Output};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;

use crate::error::{cache_err, DockerfileError};
use crate::Command;

/// Sets up the working directory, the user and (unless the image sets it) `HOME` from the user's passwd entry,
/// then execs the command (`$@`). Arguments, not environment
/// variables, so the command's environment is the image's.
const WRAPPER: &str = r#"wd=$1; user=$2; shift 2
mkdir -p -- "$wd" && cd -- "$wd" || exit 1
u=${user%%:*}
if [ -z "${HOME+set}" ]; then
  HOME=$(getent passwd "${u:-root}" 2>/dev/null | cut -d: -f6); export HOME="${HOME:-/}"
fi
[ -z "$user" ] && exec "$@"
case $user in
  *:*) g=${user#*:} ;;
  *) g=$(id -g -- "$u" 2>/dev/null || echo 0) ;;
esac
if id -- "$u" >/dev/null 2>&1; then groups=--init-groups; else groups=--clear-groups; fi
exec setpriv --reuid="$u" --regid="$g" $groups -- "$@""#;

/// Host files bound read-only into build containers; their mount points are not part of the step's layer.
pub const BIND_TARGETS: [&str; 2] = ["/etc/resolv.conf", "/etc/ssl/certs/ca-certificates.crt"];

pub struct RunStep<'a> {
    pub line: usize,
    pub init_program: &'a Path,
    pub layer_dirs: Vec<PathBuf>,
    /// Holds `upper`, `work` and the mount point.
    pub scratch: &'a Path,
    pub command: &'a Command,
    pub env: BTreeMap<String, String>,
    pub workdir: &'a str,
    pub user: &'a str,
    pub timeout: Duration,
    pub ca_bundle: Option<&'a Path>,
    /// The build's cgroup and network.
    pub sandbox: &'a BuildSandbox,
    /// Run as root of a user namespace with this mapping (see `ContainerSpec::user_namespace`).
    pub user_namespace: Option<IdMap>,
}

/// Runs the step; its changes are left in `scratch/upper`.
pub async fn run(step: RunStep<'_>, log: &mpsc::Sender<String>) -> Result<PathBuf, DockerfileError> {
    let upper = step.scratch.join("upper");
    let work = step.scratch.join("work");
    for dir in [&upper, &work] {
        std::fs::create_dir_all(dir).map_err(cache_err(dir))?;
    }
    let mut binds = Vec::new();
    // Package managers need DNS; the image's own resolv.conf is whatever its builder's host had.
    if let Some(resolv_conf) = step.sandbox.resolv_conf() {
        binds.push(bind(resolv_conf, BIND_TARGETS[0]));
    }
    if let Some(bundle) = step.ca_bundle {
        binds.push(bind(bundle, BIND_TARGETS[1]));
    }
    let command = match step.command {
        Command::Shell(text) => vec!["/bin/sh".to_owned(), "-c".to_owned(), text.clone()],
        Command::Exec(argv) => argv.clone(),
    };
    let argv = ["/bin/sh", "-c", WRAPPER, "berth-run", step.workdir, step.user]
        .into_iter()
        .map(str::to_owned)
        .chain(command)
        .collect();
    let spec = ContainerSpec {
        hostname: "build".to_owned(),
        layers: step.layer_dirs,
        upper_dir: upper.clone(),
        work_dir: work,
        rootfs: step.scratch.join("rootfs"),
        binds,
        network: step.sandbox.network(),
        cwd: PathBuf::from("/"),
        env: step.env,
        argv,
        cgroup_dirs: step.sandbox.cgroup_dirs(),
        security: container::Security::default(),
        user_namespace: step.user_namespace,
    };
    let oom_before = step.sandbox.oom_kills();
    let line = step.line;
    let mut container = container::spawn(step.init_program, &spec, Output::Piped)
        .await
        .map_err(|source| DockerfileError::Container { line, source })?;
    let (tx, mut rx) = mpsc::channel::<String>(64);
    forward_lines(container.child.stdout.take(), tx.clone());
    forward_lines(container.child.stderr.take(), tx);

    let mut tail: VecDeque<String> = VecDeque::with_capacity(20);
    let deadline = tokio::time::Instant::now() + step.timeout;
    let copy_output = async {
        while let Some(out) = rx.recv().await {
            let _ = log.send(format!("       {out}")).await;
            if tail.len() == 20 {
                tail.pop_front();
            }
            tail.push_back(out);
        }
    };
    let timed_out = tokio::time::timeout_at(deadline, copy_output).await.is_err();
    let status = match timed_out {
        false => tokio::time::timeout_at(deadline, container.wait()).await.ok(),
        true => None,
    };
    let Some(status) = status else {
        let _ = container.signal(nix::sys::signal::Signal::SIGKILL);
        let _ = container.wait().await;
        return Err(DockerfileError::RunTimeout {
            line,
            seconds: step.timeout.as_secs(),
        });
    };
    let status = status.map_err(|source| DockerfileError::Container { line, source })?;
    if !status.success() {
        if let Some(limit) = step.sandbox.out_of_memory(&step_name(step.command), oom_before) {
            return Err(DockerfileError::Limit(limit));
        }
        let tail: Vec<String> = tail.into();
        return Err(DockerfileError::RunFailed {
            line,
            status: status.to_string(),
            tail: tail.join("\n"),
        });
    }
    // Mount points made for the bind mounts above are not the step's doing.
    for target in BIND_TARGETS {
        let path = upper.join(target.trim_start_matches('/'));
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            std::fs::remove_file(&path).map_err(cache_err(&path))?;
        }
    }
    Ok(upper)
}

/// How a `RUN` step is named in an out-of-memory message: its command, cut to a readable length.
fn step_name(command: &Command) -> String {
    let text = match command {
        Command::Shell(text) => text.clone(),
        Command::Exec(argv) => argv.join(" "),
    };
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

fn bind(source: &Path, target: &str) -> BindMount {
    BindMount {
        source: source.to_owned(),
        target: PathBuf::from(target),
        read_only: true,
    }
}

fn forward_lines(stream: Option<impl AsyncRead + Unpin + Send + 'static>, tx: mpsc::Sender<String>) {
    let Some(stream) = stream else { return };
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if tx.send(line).await.is_err() {
                break;
            }
        }
    });
}
