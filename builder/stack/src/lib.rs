//! The stack: Berth's base root filesystem, Debian bookworm made by `debootstrap --variant=minbase` with
//! python3, pip, venv, Node.js with npm, and CA certificates. It is built once (the first deploy, or `berth
//! stack build`), written into the image store as one OCI layer, and recorded in `STACKS_DIR/bookworm.json`
//! so later builds reuse it as long as its blob exists.
//!
//! A stack can also be pulled from a registry (`pull_stack`, with `skopeo`): a single-layer gzip image whose
//! dpkg database lists every package of [`all_packages`], recorded in the same file as a built one.
//!
//! Either way the stack is tagged [`stack_tag`] (`berth/bookworm`) in the image store as a one-layer image,
//! so OCI tools and Dockerfile `FROM berth/bookworm` see it like any store image. Its layer is always gzip.
//!
//! It does not keep an unpacked copy (the builder and the node agent unpack layers themselves), and builds
//! one stack only. Only the `buildpacks` crate and `berth stack`
//! depend on it.

mod build;
mod pull;
mod sources;

use std::path::{Path, PathBuf};

use image_store::{ImageConfig, ImageStore, LayerInfo};
use serde::{Deserialize, Serialize};

pub use build::{ensure_stack, rebuild_stack};
pub use pull::{pull_stack, PullOptions};
pub use sources::{host_mirror, installed_packages, mirror_from_deb822, mirror_from_list, DEFAULT_MIRROR};

/// The one stack Berth builds today.
pub const STACK_NAME: &str = "bookworm";

/// Packages added to debootstrap's minbase, then [`APT_PACKAGES`]. `python-is-python3` because many
/// Procfiles say `python app.py`.
pub const STACK_PACKAGES: &[&str] = &[
    "python3",
    "python3-pip",
    "python3-venv",
    "python-is-python3",
    "ca-certificates",
];

/// Packages installed with `apt-get` inside the debootstrapped tree: debootstrap's own resolver does not
/// follow virtual packages (`Provides`), and npm depends on several. Debian's `nodejs` comes without npm,
/// hence `npm`. Yarn (`yarnpkg`) is left out: it pulls in many more node packages, and the Node.js
/// buildpack falls back to npm with a warning.
pub const APT_PACKAGES: &[&str] = &["nodejs", "npm"];

/// Everything asked for, as recorded in a stack's `includes`.
pub fn all_packages() -> impl Iterator<Item = &'static str> {
    STACK_PACKAGES.iter().chain(APT_PACKAGES).copied()
}

/// Where and how the stack is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackConfig {
    /// Holds `bookworm.json`, its lock, and the temporary debootstrap tree while building.
    pub stacks_dir: PathBuf,
    /// The Debian mirror; `None` uses the host's ([`host_mirror`]).
    pub mirror: Option<String>,
    /// The debootstrap program (looked up in `PATH`, `/usr/sbin` and `/sbin` when not a path).
    pub debootstrap: PathBuf,
    /// gzip level of the stack layer: 1 is several times faster than 6 for a few percent more bytes.
    pub gzip_level: u32,
}

impl StackConfig {
    pub fn new(stacks_dir: impl Into<PathBuf>) -> Self {
        Self {
            stacks_dir: stacks_dir.into(),
            mirror: None,
            debootstrap: "debootstrap".into(),
            gzip_level: 1,
        }
    }

    fn record_path(&self) -> PathBuf {
        self.stacks_dir.join(format!("{STACK_NAME}.json"))
    }
}

/// A built stack, as recorded in `STACKS_DIR/bookworm.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackLayer {
    pub name: String,
    pub layer: LayerInfo,
    /// The packages asked for ([`all_packages`] when it was built); a stack built with another
    /// list is rebuilt.
    #[serde(default)]
    pub includes: Vec<String>,
    /// `name=version` of every installed Debian package, sorted.
    pub packages: Vec<String>,
    pub mirror: String,
    /// RFC 3339.
    pub created: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("debootstrap is not installed: run apt-get install debootstrap")]
    DebootstrapMissing,
    #[error("building the stack needs root (debootstrap creates device nodes and chowns files)")]
    NotRoot,
    #[error("preparing the stack directory {path}")]
    Prepare {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("running debootstrap")]
    SpawnDebootstrap(#[source] std::io::Error),
    #[error("debootstrap failed ({status}); its last lines:\n{tail}")]
    Debootstrap { status: String, tail: String },
    #[error("apt-get {what} in the stack failed ({status}); its last lines:\n{tail}")]
    Apt {
        what: &'static str,
        status: String,
        tail: String,
    },
    #[error("cleaning the apt caches of the stack in {path}")]
    Clean {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the package list of the stack at {path}")]
    Packages {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing the stack layer")]
    WriteLayer(#[source] image_store::ImageStoreError),
    #[error("writing the stack record {path}")]
    WriteRecord {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("running skopeo (apt-get install skopeo)")]
    SpawnSkopeo(#[source] std::io::Error),
    #[error("skopeo copy failed ({status}): {stderr}")]
    Skopeo { status: String, stderr: String },
    #[error("{reference} cannot be the stack: {reason}")]
    NotAStack { reference: String, reason: String },
    #[error("tagging the stack image {tag}")]
    TagImage {
        tag: String,
        #[source]
        source: image_store::ImageStoreError,
    },
    #[error("the stack build task failed: {0}")]
    Task(String),
}

/// The image store tag of the stack named `name`: `berth/bookworm`, what Dockerfiles name in `FROM`.
pub fn stack_tag(name: &str) -> String {
    format!("berth/{name}")
}

/// The `PATH` of the stack image (Debian's default for root).
pub const STACK_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Tags `stack` in `store` as a one-layer image [`stack_tag`] (`skopeo inspect oci:STORE:berth/bookworm`
/// works) and returns its manifest digest. The operator's stack is not held to the builds' image size limit.
pub fn tag_stack_image(store: &ImageStore, stack: &StackLayer) -> Result<String, StackError> {
    let tag = stack_tag(&stack.name);
    let config = ImageConfig {
        env: [("PATH".to_owned(), STACK_PATH.to_owned())].into(),
        history: vec![format!("berth stack {} (debootstrap minbase)", stack.name)],
        ..ImageConfig::default()
    };
    store
        .clone()
        .with_max_image_size(u64::MAX)
        .put_image(&tag, std::slice::from_ref(&stack.layer), &config)
        .map_err(|source| StackError::TagImage { tag, source })
}

/// [`tag_stack_image`] unless the tag already exists (a stack recorded before stacks were tagged).
fn ensure_tagged(store: &ImageStore, stack: StackLayer) -> Result<StackLayer, StackError> {
    let tag = stack_tag(&stack.name);
    let tagged = store.resolve_tag(&tag).map_err(|source| StackError::TagImage {
        tag: tag.clone(),
        source,
    })?;
    if tagged.is_none() {
        tag_stack_image(store, &stack)?;
    }
    Ok(stack)
}

/// The recorded stack, if its record parses and its blob is still in `store`.
pub fn recorded_stack(cfg: &StackConfig, store: &ImageStore) -> Option<StackLayer> {
    let text = std::fs::read_to_string(cfg.record_path()).ok()?;
    let stack: StackLayer = match serde_json::from_str(&text) {
        Ok(stack) => stack,
        Err(error) => {
            tracing::warn!(path = %cfg.record_path().display(), %error, "ignoring an unreadable stack record");
            return None;
        }
    };
    let current = stack.includes.iter().map(String::as_str).eq(all_packages());
    (current && store.has_blob(&stack.layer.digest)).then_some(stack)
}

/// Finds `program` as given when it is a path, else in `PATH` plus the sbin directories (which a non-login
/// root shell may lack).
fn find_program(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return program.is_file().then(|| program.to_owned());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}
