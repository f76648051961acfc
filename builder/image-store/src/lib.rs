//! Berth's image store: one OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/…`) shared
//! by every app, so identical layers (the stack, unchanged dependencies) are stored once.
//!
//! It writes layers from directory trees (tar + gzip, or zstd when asked, digest and diff_id computed in one streaming pass),
//! writes image configs and manifests, tags images in `index.json`, reads images back for the node agent, and
//! unpacks layers with their digests checked. It carries OCI whiteouts both ways: a layer written from an
//! overlayfs upper dir records its deletions as `.wh.` entries, and unpacking turns them back into overlayfs
//! whiteouts (a layer's own directory, for overlay lower dirs) or deletes what they name (`apply_layer`).
//! Everything it writes is accepted by `skopeo` and `umoci`. For the API's OCI distribution (pull) routes it
//! gives read-only views: a manifest's exact bytes with the blobs it references, and a blob opened for
//! streaming. `rebase_image` swaps an image's first layer (a Berth stack) for another stack's, editing the
//! config and manifest as JSON so everything else is kept. It imports an image from another OCI layout (one
//! `skopeo` pulled) with every digest and diff_id checked and a size limit, keeping the image's manifest
//! digest (`import_from_layout`), and a single layer blob with both its digests checked (`import_layer`).
//!
//! It does not build anything (the `buildpacks` and `stack` crates do), does not run containers, does not
//! talk to registries and does not garbage-collect blobs yet. The builder crates, the node agent and the API
//! depend on it; it depends on nothing of Berth's.

mod digest;
mod distribution;
mod error;
mod image;
mod import;
mod layer;
mod layer_import;
mod rebase;
mod unpack;
mod whiteout;

use std::fs;
use std::path::{Path, PathBuf};

pub use distribution::{is_digest, StoredManifest, OCI_MANIFEST_MEDIA_TYPE};
pub use error::ImageStoreError;
pub use image::{
    shell_command, HistoryEntry, Image, ImageConfig, ImageExtras, ImageLayer, FIXED_CREATED, REF_NAME,
};
pub use import::{ImportOptions, ImportedImage};
pub use layer::{LayerCompression, LayerInfo, LayerMode, LayerOptions};
pub use rebase::{Rebase, RebaseRefusal, STACK_HISTORY_PREFIX};

const OCI_LAYOUT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// An OCI image layout on disk. Cheap to clone; safe to use from several threads and processes at once
/// (blobs are content-addressed and renamed into place, `index.json` is updated under a file lock).
///
/// All methods block on disk IO: call them from `tokio::task::spawn_blocking` in async code.
#[derive(Debug, Clone)]
pub struct ImageStore {
    root: PathBuf,
    /// For layers whose [`LayerOptions::compression`] is `None`.
    layer_compression: LayerCompression,
    /// The most an image written by [`ImageStore::put_image`] may weigh (its compressed layers).
    max_image_bytes: u64,
}

/// The default of [`ImageStore::with_max_image_size`]: 4 GiB, as for imports.
pub const DEFAULT_MAX_IMAGE_BYTES: u64 = 4 << 30;

impl ImageStore {
    /// Opens the layout at `root`, creating it (and its parents) when missing.
    pub fn open(root: &Path) -> Result<ImageStore, ImageStoreError> {
        let create = |source| ImageStoreError::CreateLayout {
            path: root.to_owned(),
            source,
        };
        let store = ImageStore {
            root: root.to_owned(),
            layer_compression: LayerCompression::Gzip,
            max_image_bytes: DEFAULT_MAX_IMAGE_BYTES,
        };
        fs::create_dir_all(root.join("blobs/sha256")).map_err(create)?;
        fs::create_dir_all(store.tmp_dir()).map_err(create)?;

        let layout = root.join("oci-layout");
        match fs::read_to_string(&layout) {
            Ok(text) => {
                let value: serde_json::Value =
                    serde_json::from_str(&text).map_err(|e| ImageStoreError::NotALayout {
                        path: root.to_owned(),
                        reason: format!("oci-layout: {e}"),
                    })?;
                if value.get("imageLayoutVersion").and_then(|v| v.as_str()) != Some("1.0.0") {
                    return Err(ImageStoreError::NotALayout {
                        path: root.to_owned(),
                        reason: format!("unsupported oci-layout {text}"),
                    });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                write_new(&store, "oci-layout", OCI_LAYOUT.as_bytes()).map_err(create)?;
            }
            Err(e) => return Err(create(e)),
        }
        if !root.join("index.json").exists() {
            write_new(&store, "index.json", &image::index_bytes(Vec::new())?).map_err(create)?;
        }
        store.read_index()?;
        Ok(store)
    }

    /// This handle (and its clones) writes layers with `compression` unless a layer's options name one.
    pub fn with_layer_compression(mut self, compression: LayerCompression) -> ImageStore {
        self.layer_compression = compression;
        self
    }

    /// This handle (and its clones) refuses in [`ImageStore::put_image`] an image whose layers' compressed
    /// sizes add up to more than `bytes` ([`ImageStoreError::ImageOverLimit`]).
    pub fn with_max_image_size(mut self, bytes: u64) -> ImageStore {
        self.max_image_bytes = bytes;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob `digest` (`sha256:<hex>`) lives, whether or not it exists. Refuses anything that is not
    /// a well-formed sha256 digest, so the result is always inside `blobs/sha256/`.
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf, ImageStoreError> {
        Ok(self.root.join("blobs/sha256").join(digest::hex_of(digest)?))
    }

    /// Whether the blob `digest` is in the store (false for a malformed digest).
    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).is_ok_and(|p| p.is_file())
    }

    /// Temp files being written; on the same filesystem as the blobs so that renames are atomic. Outside
    /// `blobs/` so that OCI tools never see half-written files.
    fn tmp_dir(&self) -> PathBuf {
        self.root.join(".tmp")
    }
}

/// Creates `name` in the layout atomically (temp file + rename); two processes opening a fresh layout at once
/// both write the same bytes.
fn write_new(store: &ImageStore, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = tempfile::NamedTempFile::new_in(store.tmp_dir())?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(store.root.join(name)).map_err(|e| e.error)?;
    Ok(())
}
