//! One build step (pip, npm, a build script, collectstatic) run inside the stack in a build container, its
//! output streamed to the push as indented lines and its last lines kept for the error.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Duration;

use build_sandbox::BuildSandbox;
use container::{BindMount, ContainerSpec, IdMap, Output};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;

use crate::cache::cache_err;
use crate::BuildError;

/// The stack's `PATH` in build containers.
pub const BUILD_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub struct StepRun<'a> {
    /// Names the step in errors: `pip install`, `npm ci`.
    pub name: String,
    pub init_program: &'a Path,
    pub stack_rootfs: &'a Path,
    /// Bound in order (a bind inside an earlier one's target comes after it).
    pub binds: Vec<BindMount>,
    pub cwd: &'a str,
    /// Added to `PATH`, `HOME=/tmp` and `LANG`.
    pub env: &'a [(&'a str, &'a str)],
    pub argv: Vec<String>,
    /// Holds the overlay upper/work dirs and the mount point.
    pub scratch: &'a Path,
    pub timeout: Duration,
    /// Bound over the stack's CA bundle (see `BuilderConfig::build_ca_bundle`).
    pub ca_bundle: Option<&'a Path>,
    /// The build's cgroup and network.
    pub sandbox: &'a BuildSandbox,
    /// Run as root of a user namespace with this mapping (see `ContainerSpec::user_namespace`).
    pub user_namespace: Option<IdMap>,
}

pub fn bind(source: &Path, target: &str, read_only: bool) -> BindMount {
    BindMount {
        source: source.to_owned(),
        target: PathBuf::from(target),
        read_only,
    }
}

/// Runs the step to its end; a non-zero exit is [`BuildError::Step`] (or [`BuildError::Limit`] when the OOM
/// killer struck in the build's cgroup meanwhile), running past the timeout [`BuildError::StepTimeout`].
pub async fn run(step: StepRun<'_>, log: &mpsc::Sender<String>) -> Result<(), BuildError> {
    let upper = step.scratch.join("upper");
    let work = step.scratch.join("work");
    for dir in [&upper, &work] {
        // A fresh upper dir per step: what one step wrote outside its binds is not seen by the next.
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).map_err(cache_err(dir))?;
    }
    let mut binds = step.binds;
    // Package managers need DNS; the stack's own resolv.conf is whatever debootstrap's host had.
    if let Some(resolv_conf) = step.sandbox.resolv_conf() {
        binds.push(bind(resolv_conf, "/etc/resolv.conf", true));
    }
    if let Some(bundle) = step.ca_bundle {
        binds.push(bind(bundle, "/etc/ssl/certs/ca-certificates.crt", true));
    }
    let env: BTreeMap<String, String> = [("PATH", BUILD_PATH), ("HOME", "/tmp"), ("LANG", "C.UTF-8")]
        .iter()
        .chain(step.env)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let spec = ContainerSpec {
        hostname: "build".to_owned(),
        layers: vec![step.stack_rootfs.to_owned()],
        upper_dir: upper,
        work_dir: work,
        rootfs: step.scratch.join("rootfs"),
        binds,
        network: step.sandbox.network(),
        cwd: PathBuf::from(step.cwd),
        env,
        argv: step.argv,
        cgroup_dirs: step.sandbox.cgroup_dirs(),
        security: container::Security::default(),
        user_namespace: step.user_namespace,
    };
    let timeout = || BuildError::StepTimeout {
        step: step.name.clone(),
        seconds: step.timeout.as_secs(),
    };

    let oom_before = step.sandbox.oom_kills();
    let mut container = container::spawn(step.init_program, &spec, Output::Piped)
        .await
        .map_err(BuildError::Container)?;
    let (tx, mut rx) = mpsc::channel::<String>(64);
    forward_lines(container.child.stdout.take(), tx.clone());
    forward_lines(container.child.stderr.take(), tx);

    let mut tail: VecDeque<String> = VecDeque::with_capacity(20);
    let deadline = tokio::time::Instant::now() + step.timeout;
    let copy_output = async {
        while let Some(line) = rx.recv().await {
            let _ = log.send(format!("       {line}")).await;
            if tail.len() == 20 {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    };
    if tokio::time::timeout_at(deadline, copy_output).await.is_err() {
        let _ = container.signal(nix::sys::signal::Signal::SIGKILL);
        let _ = container.wait().await;
        return Err(timeout());
    }
    let status = match tokio::time::timeout_at(deadline, container.wait()).await {
        Ok(status) => status.map_err(BuildError::Container)?,
        Err(_) => {
            let _ = container.signal(nix::sys::signal::Signal::SIGKILL);
            let _ = container.wait().await;
            return Err(timeout());
        }
    };
    if !status.success() {
        if let Some(limit) = step.sandbox.out_of_memory(&step.name, oom_before) {
            return Err(BuildError::Limit(limit));
        }
        let tail: Vec<String> = tail.into();
        return Err(BuildError::Step {
            step: step.name,
            status: status.to_string(),
            tail: tail.join("\n"),
        });
    }
    Ok(())
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
