//! Running debootstrap and turning its tree into the stack layer.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use image_store::{ImageStore, LayerMode, LayerOptions};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;

use crate::sources::{host_mirror, installed_packages, mounts_under};
use crate::{
    all_packages, ensure_tagged, find_program, recorded_stack, tag_stack_image, StackConfig, StackError,
    StackLayer, APT_PACKAGES, STACK_NAME, STACK_PACKAGES,
};

/// Directories of the tree kept empty in the layer: containers mount their own.
const EMPTY_DIRS: &[&str] = &["dev", "proc", "sys", "run", "tmp"];

/// Returns the recorded stack when its blob is in `store`, else builds it (taking about two minutes) while
/// sending readable progress lines to `progress`. Only one build runs at a time, across processes: a second
/// caller waits for the first and then reuses its stack.
pub async fn ensure_stack(
    cfg: &StackConfig,
    store: &ImageStore,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<StackLayer, StackError> {
    if let Some(stack) = recorded_stack(cfg, store) {
        return ensure_tagged(store, stack);
    }
    let _lock = lock(cfg, progress).await?;
    if let Some(stack) = recorded_stack(cfg, store) {
        return ensure_tagged(store, stack);
    }
    build(cfg, store, progress).await
}

/// Builds the stack even when one is recorded (`berth stack build`), replacing the record.
pub async fn rebuild_stack(
    cfg: &StackConfig,
    store: &ImageStore,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<StackLayer, StackError> {
    let _lock = lock(cfg, progress).await?;
    build(cfg, store, progress).await
}

async fn lock(cfg: &StackConfig, progress: &(dyn Fn(&str) + Sync)) -> Result<File, StackError> {
    let prepare = |source| StackError::Prepare {
        path: cfg.stacks_dir.clone(),
        source,
    };
    std::fs::create_dir_all(&cfg.stacks_dir).map_err(prepare)?;
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(cfg.stacks_dir.join(format!("{STACK_NAME}.lock")))
        .map_err(prepare)?;
    match file.try_lock() {
        Ok(()) => return Ok(file),
        Err(std::fs::TryLockError::Error(e)) => return Err(prepare(e)),
        Err(std::fs::TryLockError::WouldBlock) => {}
    }
    progress("-----> Waiting for another build of the stack to finish");
    tokio::task::spawn_blocking(move || file.lock().map(|()| file))
        .await
        .map_err(|e| StackError::Task(e.to_string()))?
        .map_err(prepare)
}

async fn build(
    cfg: &StackConfig,
    store: &ImageStore,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<StackLayer, StackError> {
    let debootstrap = find_program(&cfg.debootstrap).ok_or(StackError::DebootstrapMissing)?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err(StackError::NotRoot);
    }
    let mirror = cfg.mirror.clone().unwrap_or_else(host_mirror);
    let work = BuildDir::new(&cfg.stacks_dir)?;
    let rootfs = work.path().join("rootfs");

    progress(&format!(
        "-----> Building the {STACK_NAME} stack with debootstrap (first deploy only, about 2 minutes)"
    ));
    progress(&format!(
        "       Debian {STACK_NAME} minbase with {} from {mirror}",
        all_packages().collect::<Vec<_>>().join(", ")
    ));
    let started = std::time::Instant::now();
    run_debootstrap(&debootstrap, &rootfs, &mirror, progress).await?;
    progress(&format!(
        "       debootstrap finished in {} s",
        started.elapsed().as_secs()
    ));
    apt_install(&rootfs, progress).await?;

    let (store2, rootfs2, level) = (store.clone(), rootfs.clone(), cfg.gzip_level);
    let (layer, packages) = tokio::task::spawn_blocking(move || {
        clean_apt(&rootfs2)?;
        let status_path = rootfs2.join("var/lib/dpkg/status");
        let status = std::fs::read_to_string(&status_path).map_err(|source| StackError::Packages {
            path: status_path,
            source,
        })?;
        let mut options = LayerOptions::new("", LayerMode::Rootfs);
        options.empty_dirs = EMPTY_DIRS.iter().map(PathBuf::from).collect();
        options.gzip_level = level;
        // The stack stays gzip whatever the store default: rebase and umoci read only gzip first layers.
        options.compression = Some(image_store::LayerCompression::Gzip);
        let layer = store2
            .write_layer(&rootfs2, &options)
            .map_err(StackError::WriteLayer)?;
        Ok::<_, StackError>((layer, installed_packages(&status)))
    })
    .await
    .map_err(|e| StackError::Task(e.to_string()))??;

    let stack = StackLayer {
        name: STACK_NAME.to_owned(),
        layer,
        includes: all_packages().map(str::to_owned).collect(),
        packages,
        mirror,
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    write_record(cfg, &stack)?;
    tag_stack_image(store, &stack)?;
    progress(&format!(
        "-----> Stack {STACK_NAME} ready: {} packages, {} MB layer {}",
        stack.packages.len(),
        stack.layer.size / 1_000_000,
        short(&stack.layer.digest)
    ));
    tracing::info!(digest = %stack.layer.digest, packages = stack.packages.len(), "built the stack");
    Ok(stack)
}

fn short(digest: &str) -> &str {
    &digest[..digest.len().min("sha256:".len() + 12)]
}

async fn run_debootstrap(
    program: &Path,
    rootfs: &Path,
    mirror: &str,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), StackError> {
    let mut command = Command::new(program);
    command
        .arg("--variant=minbase")
        .arg(format!("--include={}", STACK_PACKAGES.join(",")))
        .arg(STACK_NAME)
        .arg(rootfs)
        .arg(mirror);
    let (status, tail) = run_logged(command, progress)
        .await
        .map_err(StackError::SpawnDebootstrap)?;
    if !status.success() {
        return Err(StackError::Debootstrap {
            status: status.to_string(),
            tail,
        });
    }
    Ok(())
}

/// `apt-get update` and `apt-get install APT_PACKAGES` chrooted into the tree, with the host's resolver
/// configuration for the time being (the tree's own is put back).
async fn apt_install(rootfs: &Path, progress: &(dyn Fn(&str) + Sync)) -> Result<(), StackError> {
    let resolv = rootfs.join("etc/resolv.conf");
    let prepare = |source| StackError::Prepare {
        path: resolv.clone(),
        source,
    };
    // Kept as it is: a symlink is put back as the same symlink (never read through, it points into the host).
    enum Original {
        Missing,
        Link(PathBuf),
        File(Vec<u8>),
    }
    let original = match std::fs::symlink_metadata(&resolv) {
        Ok(meta) if meta.file_type().is_symlink() => {
            Original::Link(std::fs::read_link(&resolv).map_err(prepare)?)
        }
        Ok(_) => Original::File(std::fs::read(&resolv).map_err(prepare)?),
        Err(_) => Original::Missing,
    };
    let _ = std::fs::remove_file(&resolv);
    if let Ok(host) = std::fs::read("/etc/resolv.conf") {
        std::fs::write(&resolv, host).map_err(prepare)?;
    }
    progress(&format!(
        "-----> Installing {} with apt-get",
        APT_PACKAGES.join(", ")
    ));
    let mut result = Ok(());
    for (what, args) in [
        ("update", vec!["update", "-q"]),
        (
            "install",
            ["install", "-q", "-y", "--no-install-recommends"]
                .into_iter()
                .chain(APT_PACKAGES.iter().copied())
                .collect(),
        ),
    ] {
        let mut command = Command::new("chroot");
        command.arg(rootfs).arg("apt-get").args(args);
        match run_logged(command, progress).await {
            Ok((status, _)) if status.success() => {}
            Ok((status, tail)) => {
                result = Err(StackError::Apt {
                    what,
                    status: status.to_string(),
                    tail,
                });
                break;
            }
            Err(source) => {
                result = Err(StackError::Prepare {
                    path: rootfs.to_owned(),
                    source,
                });
                break;
            }
        }
    }
    let _ = std::fs::remove_file(&resolv);
    match original {
        Original::Missing => {}
        Original::Link(target) => std::os::unix::fs::symlink(target, &resolv).map_err(prepare)?,
        Original::File(bytes) => std::fs::write(&resolv, bytes).map_err(prepare)?,
    }
    result
}

/// Runs `command`, sending its output lines to `progress`; returns its status and its last 20 lines.
async fn run_logged(
    mut command: Command,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(std::process::ExitStatus, String), std::io::Error> {
    let mut child = command
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;

    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(64);
    forward_lines(child.stdout.take().expect("stdout is piped"), tx.clone());
    forward_lines(child.stderr.take().expect("stderr is piped"), tx);
    let mut tail = VecDeque::with_capacity(20);
    while let Some(line) = rx.recv().await {
        progress(&format!("       {line}"));
        if tail.len() == 20 {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    let status = child.wait().await?;
    let tail: Vec<String> = tail.into();
    Ok((status, tail.join("\n")))
}

fn forward_lines(stream: impl AsyncRead + Unpin + Send + 'static, tx: tokio::sync::mpsc::Sender<String>) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if tx.send(line).await.is_err() {
                break;
            }
        }
    });
}

/// Removes downloaded packages and package lists: they are a quarter of the tree and apps never need them
/// (a build that wants apt runs `apt-get update` first).
fn clean_apt(rootfs: &Path) -> Result<(), StackError> {
    for dir in ["var/cache/apt/archives", "var/lib/apt/lists", "var/cache/apt"] {
        let dir = rootfs.join(dir);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(StackError::Clean { path: dir, source }),
        };
        for entry in entries {
            let entry = entry.map_err(|source| StackError::Clean {
                path: dir.clone(),
                source,
            })?;
            let path = entry.path();
            let name = entry.file_name();
            let keep = name == "partial" || name == "lock" || name == "archives";
            let is_file = entry.file_type().map(|t| !t.is_dir()).unwrap_or(false);
            if !keep && is_file {
                std::fs::remove_file(&path).map_err(|source| StackError::Clean { path, source })?;
            }
        }
    }
    Ok(())
}

fn write_record(cfg: &StackConfig, stack: &StackLayer) -> Result<(), StackError> {
    let path = cfg.record_path();
    let wrap = |source| StackError::WriteRecord {
        path: path.clone(),
        source,
    };
    let json = serde_json::to_vec_pretty(stack).map_err(|e| wrap(e.into()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(&cfg.stacks_dir).map_err(wrap)?;
    std::io::Write::write_all(&mut tmp, &json).map_err(wrap)?;
    tmp.as_file().sync_all().map_err(wrap)?;
    tmp.persist(&path).map_err(|e| wrap(e.error))?;
    Ok(())
}

/// The debootstrap work directory. Removed on drop, also after a failure or a cancelled build; anything
/// debootstrap left mounted inside it (`proc`, `sys`) is detached first so removal never reaches the host's
/// `/proc` or `/sys`.
struct BuildDir {
    dir: Option<tempfile::TempDir>,
}

impl BuildDir {
    fn new(stacks_dir: &Path) -> Result<Self, StackError> {
        let dir = tempfile::Builder::new()
            .prefix("build-")
            .tempdir_in(stacks_dir)
            .map_err(|source| StackError::Prepare {
                path: stacks_dir.to_owned(),
                source,
            })?;
        Ok(Self { dir: Some(dir) })
    }

    fn path(&self) -> &Path {
        self.dir.as_ref().expect("present until drop").path()
    }
}

impl Drop for BuildDir {
    fn drop(&mut self) {
        let Some(dir) = self.dir.take() else { return };
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mounts = mounts_under(&mountinfo, dir.path());
        for mount in &mounts {
            let Ok(c) = std::ffi::CString::new(mount.as_os_str().as_encoded_bytes()) else {
                continue;
            };
            // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
            let rc = unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            if rc != 0 {
                tracing::warn!(mount = %mount.display(), error = %std::io::Error::last_os_error(), "unmounting");
            }
        }
        if !mounts.is_empty()
            && !mounts_under(
                &std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default(),
                dir.path(),
            )
            .is_empty()
        {
            // Never delete through a mount we could not detach: leave the directory for an operator.
            tracing::error!(dir = %dir.path().display(), "mounts remain in the stack build directory; not removing it");
            let _ = dir.keep();
            return;
        }
        if let Err(error) = dir.close() {
            tracing::warn!(%error, "removing the stack build directory");
        }
    }
}
