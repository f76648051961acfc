//! The builder's cache directory: the unpacked stack (shared), and per app the dependency-layer record and
//! the package managers' caches (pip, npm, yarn).
//!
//! ```text
//! CACHE_DIR/stack-rootfs/<diff_id hex>/   the stack layer unpacked once, the read-only base of build containers
//! CACHE_DIR/apps/<app>/deps.json          which dependency layer the last build made, and from which inputs
//! CACHE_DIR/apps/<app>/build/             bound at /cache in build containers (pip/, npm/, yarn/)
//! CACHE_DIR/tmp/                          per-build scratch (overlay upper and work dirs, installs' output)
//! ```
//! `deps.json` is outside the directory the build container sees, so a build cannot forge it.

use std::fs::File;
use std::path::{Path, PathBuf};

use image_store::{ImageStore, LayerInfo};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vocabulary::AppName;

use crate::BuildError;

/// Bump when the Python dependency layer's layout or the pip invocation changes: old layers are then rebuilt.
pub const PYTHON_BUILDPACK_VERSION: &str = "python-1";
/// The same for the Node.js buildpack's `node_modules` layer.
pub const NODE_BUILDPACK_VERSION: &str = "nodejs-2";

/// The dependency layer's key: the buildpack's version, the stack, and the inputs (requirements, or
/// package.json and lockfiles), each length-prefixed so that no two input sets collide.
pub fn dependency_key(buildpack_version: &str, stack_diff_id: &str, inputs: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in [buildpack_version.as_bytes(), stack_diff_id.as_bytes()]
        .into_iter()
        .chain(inputs.iter().copied())
    {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DependencyRecord {
    pub key: String,
    /// The image's layer.
    pub layer: LayerInfo,
    /// The tree build steps use, when it differs from the image's (node_modules with devDependencies, which
    /// the image's layer has pruned). Kept in the store beside the image's layers, in no image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_layer: Option<LayerInfo>,
}

pub fn cache_err(path: &Path) -> impl Fn(std::io::Error) -> BuildError + '_ {
    move |source| BuildError::Cache {
        path: path.to_owned(),
        source,
    }
}

pub struct Cache {
    pub root: PathBuf,
}

impl Cache {
    pub fn app_dir(&self, app: &AppName) -> PathBuf {
        self.root.join("apps").join(app.as_str())
    }

    /// Mounted at `/cache` in the app's build containers.
    pub fn app_build_cache(&self, app: &AppName) -> PathBuf {
        self.app_dir(app).join("build")
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// The dependency layers recorded for `key`, if their blobs are still in the store.
    pub fn reusable_dependencies(
        &self,
        app: &AppName,
        key: &str,
        store: &ImageStore,
    ) -> Option<DependencyRecord> {
        let text = std::fs::read_to_string(self.app_dir(app).join("deps.json")).ok()?;
        let record: DependencyRecord = serde_json::from_str(&text).ok()?;
        let present = |layer: &LayerInfo| store.has_blob(&layer.digest);
        (record.key == key && present(&record.layer) && record.build_layer.as_ref().is_none_or(present))
            .then_some(record)
    }

    pub fn record_dependencies(&self, app: &AppName, record: &DependencyRecord) -> Result<(), BuildError> {
        let dir = self.app_dir(app);
        std::fs::create_dir_all(&dir).map_err(cache_err(&dir))?;
        let path = dir.join("deps.json");
        let json = serde_json::to_vec_pretty(record).map_err(|e| cache_err(&path)(e.into()))?;
        let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(cache_err(&path))?;
        std::io::Write::write_all(&mut tmp, &json).map_err(cache_err(&path))?;
        tmp.persist(&path).map_err(|e| cache_err(&path)(e.error))?;
        Ok(())
    }

    /// The stack layer unpacked under `stack-rootfs/`, unpacking it the first time (as root, keeping owners).
    /// Unpacked into a temp dir and renamed, under a lock, so a half-unpacked stack is never used.
    pub fn stack_rootfs(&self, store: &ImageStore, layer: &LayerInfo) -> Result<PathBuf, BuildError> {
        let parent = self.root.join("stack-rootfs");
        let hex = layer.diff_id.trim_start_matches("sha256:");
        let dir = parent.join(hex);
        if dir.is_dir() {
            return Ok(dir);
        }
        std::fs::create_dir_all(&parent).map_err(cache_err(&parent))?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(parent.join(".lock"))
            .map_err(cache_err(&parent))?;
        lock.lock().map_err(cache_err(&parent))?;
        if dir.is_dir() {
            return Ok(dir);
        }
        let tmp = tempfile::Builder::new()
            .prefix(".unpack-")
            .tempdir_in(&parent)
            .map_err(cache_err(&parent))?;
        store
            .unpack_layer(&layer.digest, &layer.diff_id, tmp.path())
            .map_err(|source| BuildError::UnpackStack {
                path: dir.clone(),
                source,
            })?;
        std::fs::rename(tmp.path(), &dir).map_err(cache_err(&dir))?;
        // The temp dir was renamed away; keep TempDir from trying to remove it.
        let _ = tmp.keep();
        Ok(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_changes_with_each_input() {
        let key = |version, stack, inputs: &[&[u8]]| dependency_key(version, stack, inputs);
        let base = key("python-1", "sha256:aa", &[b"six==1.16.0\n"]);
        assert_eq!(base, key("python-1", "sha256:aa", &[b"six==1.16.0\n"]));
        assert_ne!(base, key("python-1", "sha256:aa", &[b"six==1.17.0\n"]));
        assert_ne!(base, key("python-1", "sha256:bb", &[b"six==1.16.0\n"]));
        assert_ne!(base, key("python-2", "sha256:aa", &[b"six==1.16.0\n"]));
        // Moving bytes between inputs, or adding an empty one, changes the key.
        assert_ne!(key("v", "s", &[b"ab", b"c"]), key("v", "s", &[b"a", b"bc"]));
        assert_ne!(key("v", "s", &[b"a"]), key("v", "s", &[b"a", b""]));
    }
}
