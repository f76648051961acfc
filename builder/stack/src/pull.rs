//! `berth stack pull REF`: a stack image from a registry (copied by `skopeo`) made the current stack.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use image_store::{ImageStore, LayerInfo};
use tokio::process::Command;

use crate::sources::installed_packages;
use crate::{all_packages, StackConfig, StackError, StackLayer, STACK_NAME};

/// How to pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullOptions {
    /// The image, as `docker://` would take it: `registry.example.com/berth/bookworm:2026-11`.
    pub reference: String,
    /// `false` for a plain-HTTP (or self-signed) registry.
    pub src_tls_verify: bool,
    /// The skopeo program.
    pub skopeo: PathBuf,
}

/// The dpkg database in a stack image: its packages must include every one of [`all_packages`].
const DPKG_STATUS: &str = "var/lib/dpkg/status";

/// Copies `opts.reference` with skopeo into a temporary layout, checks that it is one gzip layer holding
/// Debian with every package of [`all_packages`], imports the layer and records it as the current stack
/// (`STACKS_DIR/bookworm.json`, as a built one), so later builds and rebases use it.
pub async fn pull_stack(
    cfg: &StackConfig,
    store: &ImageStore,
    opts: &PullOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<StackLayer, StackError> {
    let reference = opts
        .reference
        .strip_prefix("docker://")
        .unwrap_or(&opts.reference);
    if reference.is_empty()
        || reference.starts_with('-')
        || reference.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(not_a_stack(
            reference,
            "not an image reference such as registry.example.com/stack:tag",
        ));
    }
    let prepare = |source| StackError::Prepare {
        path: cfg.stacks_dir.clone(),
        source,
    };
    std::fs::create_dir_all(&cfg.stacks_dir).map_err(prepare)?;
    let work = tempfile::Builder::new()
        .prefix("pull-")
        .tempdir_in(&cfg.stacks_dir)
        .map_err(prepare)?;
    let layout = work.path().join("layout");

    progress(&format!("-----> Pulling the stack {reference} with skopeo"));
    let mut skopeo = Command::new(&opts.skopeo);
    skopeo.arg("copy");
    if !opts.src_tls_verify {
        skopeo.arg("--src-tls-verify=false");
    }
    let output = skopeo
        .arg(format!("docker://{reference}"))
        .arg(format!("oci:{}:stack", layout.display()))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(StackError::SpawnSkopeo)?;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        progress(&format!("       {line}"));
    }
    if !output.status.success() {
        return Err(StackError::Skopeo {
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }

    progress("-----> Checking and importing its layer");
    let (store2, reference2) = (store.clone(), reference.to_owned());
    let (layer, status) = tokio::task::spawn_blocking(move || import(&store2, &layout, &reference2))
        .await
        .map_err(|e| StackError::Task(e.to_string()))??;
    let packages = installed_packages(&status);
    let missing: Vec<&str> = all_packages()
        .filter(|p| {
            !packages
                .iter()
                .any(|installed| installed.split_once('=').is_some_and(|(n, _)| n == *p))
        })
        .collect();
    if !missing.is_empty() {
        return Err(not_a_stack(
            reference,
            &format!("builds need packages it lacks: {}", missing.join(", ")),
        ));
    }
    // The lock `ensure_stack` takes: a build waiting on it then finds this record and uses it, and a build
    // running now finishes before this record replaces its own.
    let lock_path = cfg.stacks_dir.join(format!("{STACK_NAME}.lock"));
    let lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(prepare)?;
    if lock.try_lock().is_err() {
        progress("-----> Waiting for a build of the stack to finish");
    }
    let _lock = tokio::task::spawn_blocking(move || lock.lock().map(|()| lock))
        .await
        .map_err(|e| StackError::Task(e.to_string()))?
        .map_err(prepare)?;
    let stack = StackLayer {
        name: STACK_NAME.to_owned(),
        layer,
        includes: all_packages().map(str::to_owned).collect(),
        packages,
        mirror: format!("pulled from {reference}"),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    record(cfg, &stack)?;
    crate::tag_stack_image(store, &stack)?;
    progress(&format!(
        "-----> Stack {STACK_NAME} is now {reference}: {} packages, layer {}",
        stack.packages.len(),
        stack.layer.digest
    ));
    tracing::info!(reference, digest = %stack.layer.digest, "pulled the stack");
    Ok(stack)
}

/// Reads the pulled layout's image, checks it is one gzip layer, imports the layer into `store` and returns
/// it with its dpkg status.
fn import(store: &ImageStore, layout: &Path, reference: &str) -> Result<(LayerInfo, String), StackError> {
    let bad = |e: image_store::ImageStoreError| not_a_stack(reference, &e.to_string());
    let pulled = ImageStore::open(layout).map_err(bad)?;
    let digest = pulled
        .resolve_tag("stack")
        .map_err(bad)?
        .ok_or_else(|| not_a_stack(reference, "skopeo wrote no image"))?;
    // Refuses other media types than gzip layers.
    let image = pulled.read_image(&digest).map_err(bad)?;
    let [layer] = image.layers.as_slice() else {
        return Err(not_a_stack(
            reference,
            &format!("a stack is one layer, this image has {}", image.layers.len()),
        ));
    };
    let info = LayerInfo {
        digest: layer.digest.clone(),
        diff_id: layer.diff_id.clone(),
        size: layer.size,
    };
    let status = store
        .import_layer(&layer.path, &info, DPKG_STATUS)
        .map_err(bad)?
        .ok_or_else(|| {
            not_a_stack(
                reference,
                "it has no /var/lib/dpkg/status: not a Debian root filesystem",
            )
        })?;
    Ok((info, String::from_utf8_lossy(&status).into_owned()))
}

fn not_a_stack(reference: &str, reason: &str) -> StackError {
    StackError::NotAStack {
        reference: reference.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Writes the record atomically, like a built stack's.
fn record(cfg: &StackConfig, stack: &StackLayer) -> Result<(), StackError> {
    let path = cfg.record_path();
    let wrap = |source| StackError::WriteRecord {
        path: path.clone(),
        source,
    };
    let json = serde_json::to_vec_pretty(stack).map_err(|e| wrap(e.into()))?;
    let tmp = tempfile::NamedTempFile::new_in(&cfg.stacks_dir).map_err(wrap)?;
    std::fs::write(tmp.path(), &json).map_err(wrap)?;
    tmp.as_file().sync_all().map_err(wrap)?;
    tmp.persist(&path).map_err(|e| wrap(e.error))?;
    Ok(())
}
