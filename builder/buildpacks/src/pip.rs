//! Installing requirements with pip inside the stack, in a build container.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Duration;

use container::{BindMount, ContainerSpec, Network, Output};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;

use crate::cache::cache_err;
use crate::BuildError;

/// Where pip's output directory is bound in the build container; also the layer's prefix in the image.
pub const DEPS_DIR: &str = "/layers/python";

pub struct PipRun<'a> {
    pub init_program: &'a Path,
    pub stack_rootfs: &'a Path,
    pub source_dir: &'a Path,
    /// Becomes `/layers/python`; pip installs into its `site-packages`.
    pub output_dir: &'a Path,
    /// Per-app, bound at `/cache`.
    pub build_cache: &'a Path,
    /// Holds the overlay upper/work dirs and the mount point.
    pub scratch: &'a Path,
    pub timeout: Duration,
    /// Bound over the stack's CA bundle (see `BuilderConfig::build_ca_bundle`).
    pub ca_bundle: Option<&'a Path>,
}

pub async fn install(run: PipRun<'_>, log: &mpsc::Sender<String>) -> Result<(), BuildError> {
    let upper = run.scratch.join("upper");
    let work = run.scratch.join("work");
    for dir in [
        &upper,
        &work,
        &run.output_dir.to_owned(),
        &run.build_cache.to_owned(),
    ] {
        std::fs::create_dir_all(dir).map_err(cache_err(dir))?;
    }
    let mut binds = vec![
        bind(run.source_dir, "/workspace", true),
        bind(run.output_dir, DEPS_DIR, false),
        bind(run.build_cache, "/cache", false),
    ];
    // pip needs DNS; the stack's own resolv.conf is whatever debootstrap's host had.
    if Path::new("/etc/resolv.conf").exists() {
        binds.push(bind(Path::new("/etc/resolv.conf"), "/etc/resolv.conf", true));
    }
    if let Some(bundle) = run.ca_bundle {
        binds.push(bind(bundle, "/etc/ssl/certs/ca-certificates.crt", true));
    }
    let env: BTreeMap<String, String> = [
        (
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ),
        ("HOME", "/tmp"),
        ("LANG", "C.UTF-8"),
        ("PYTHONUNBUFFERED", "1"),
        ("PIP_CACHE_DIR", "/cache/pip"),
        ("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
        ("PIP_BREAK_SYSTEM_PACKAGES", "1"),
        ("PIP_NO_INPUT", "1"),
        ("PIP_PROGRESS_BAR", "off"),
        ("PIP_ROOT_USER_ACTION", "ignore"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let spec = ContainerSpec {
        hostname: "build".to_owned(),
        layers: vec![run.stack_rootfs.to_owned()],
        upper_dir: upper,
        work_dir: work,
        rootfs: run.scratch.join("rootfs"),
        binds,
        network: Network::Host,
        cwd: PathBuf::from("/workspace"),
        env,
        argv: [
            "python3",
            "-m",
            "pip",
            "install",
            "--target",
            "/layers/python/site-packages",
            "--no-warn-script-location",
            "-r",
            "/workspace/requirements.txt",
        ]
        .map(str::to_owned)
        .to_vec(),
        cgroup_dirs: Vec::new(),
    };

    let mut container = container::spawn(run.init_program, &spec, Output::Piped)
        .await
        .map_err(BuildError::Container)?;
    let (tx, mut rx) = mpsc::channel::<String>(64);
    forward_lines(container.child.stdout.take(), tx.clone());
    forward_lines(container.child.stderr.take(), tx);

    let mut tail: VecDeque<String> = VecDeque::with_capacity(20);
    let deadline = tokio::time::Instant::now() + run.timeout;
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
        return Err(BuildError::PipTimeout {
            seconds: run.timeout.as_secs(),
        });
    }
    let status = match tokio::time::timeout_at(deadline, container.wait()).await {
        Ok(status) => status.map_err(BuildError::Container)?,
        Err(_) => {
            let _ = container.signal(nix::sys::signal::Signal::SIGKILL);
            let _ = container.wait().await;
            return Err(BuildError::PipTimeout {
                seconds: run.timeout.as_secs(),
            });
        }
    };
    if !status.success() {
        let tail: Vec<String> = tail.into();
        return Err(BuildError::Pip {
            status: status.to_string(),
            tail: tail.join("\n"),
        });
    }
    Ok(())
}

fn bind(source: &Path, target: &str, read_only: bool) -> BindMount {
    BindMount {
        source: source.to_owned(),
        target: PathBuf::from(target),
        read_only,
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
