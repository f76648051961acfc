//! The Dockerfile builder's cache directory:
//!
//! ```text
//! CACHE_DIR/layers/<diff_id hex>/        a layer unpacked once (overlayfs whiteouts), a lower dir of RUN steps
//! CACHE_DIR/steps/<app>/<key hex>.json   the layer a step made, by its key (see `step_key`)
//! CACHE_DIR/tmp/                         per-step scratch (overlay upper and work dirs, COPY staging)
//! ```
//! Step records are per app, so one tenant's build never reuses a layer that another tenant's RUN made.

use std::fs::File;
use std::path::{Path, PathBuf};

use image_store::{ImageStore, LayerInfo};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vocabulary::AppName;

use crate::error::{cache_err, DockerfileError};

/// Bump when what a step's layer holds for the same key changes: old records are then ignored.
const CACHE_VERSION: &str = "dockerfile-1";

/// A step's cache key: the key of the step before it (which covers every step before), the step's text after
/// substitution, and, for `COPY`/`ADD`, the checksum of the copied files. Each part is length-prefixed so that
/// no two inputs collide.
pub fn step_key(parent: &str, text: &str, files: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [CACHE_VERSION, parent, text, files] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    pub key: String,
    pub layer: LayerInfo,
}

#[derive(Debug, Clone)]
pub struct Cache {
    pub root: PathBuf,
}

impl Cache {
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    pub fn layer_dir(&self, layer: &LayerInfo) -> PathBuf {
        self.layers_dir()
            .join(layer.diff_id.trim_start_matches("sha256:"))
    }

    fn step_path(&self, app: &AppName, key: &str) -> PathBuf {
        self.root
            .join("steps")
            .join(app.as_str())
            .join(format!("{}.json", key.trim_start_matches("sha256:")))
    }

    /// The layer recorded for `key`, if its blob is still in the store.
    pub fn step(&self, app: &AppName, key: &str, store: &ImageStore) -> Option<LayerInfo> {
        let text = std::fs::read_to_string(self.step_path(app, key)).ok()?;
        let record: StepRecord = serde_json::from_str(&text).ok()?;
        (record.key == key && store.has_blob(&record.layer.digest)).then_some(record.layer)
    }

    pub fn record_step(&self, app: &AppName, key: &str, layer: &LayerInfo) -> Result<(), DockerfileError> {
        let path = self.step_path(app, key);
        let dir = path.parent().expect("a step path has a parent");
        std::fs::create_dir_all(dir).map_err(cache_err(dir))?;
        let record = StepRecord {
            key: key.to_owned(),
            layer: layer.clone(),
        };
        let json = serde_json::to_vec_pretty(&record).map_err(|e| cache_err(&path)(e.into()))?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(cache_err(&path))?;
        std::io::Write::write_all(&mut tmp, &json).map_err(cache_err(&path))?;
        tmp.persist(&path).map_err(|e| cache_err(&path)(e.error))?;
        Ok(())
    }

    /// The directories of `layers` (base first), unpacking those not unpacked yet, under a lock so that two
    /// builds never unpack the same layer at once. Blocking.
    pub fn layer_dirs(
        &self,
        store: &ImageStore,
        layers: &[LayerInfo],
    ) -> Result<Vec<PathBuf>, DockerfileError> {
        let parent = self.layers_dir();
        std::fs::create_dir_all(&parent).map_err(cache_err(&parent))?;
        let _lock = self.lock()?;
        let mut dirs = Vec::with_capacity(layers.len());
        for layer in layers {
            let dir = self.layer_dir(layer);
            if !dir.is_dir() {
                let tmp = tempfile::Builder::new()
                    .prefix(".unpack-")
                    .tempdir_in(&parent)
                    .map_err(cache_err(&parent))?;
                store
                    .unpack_layer(&layer.digest, &layer.diff_id, tmp.path())
                    .map_err(|source| DockerfileError::Unpack {
                        digest: layer.digest.clone(),
                        source,
                    })?;
                std::fs::rename(tmp.path(), &dir).map_err(cache_err(&dir))?;
                // Renamed away: keep TempDir from removing it.
                let _ = tmp.keep();
            }
            dirs.push(dir);
        }
        Ok(dirs)
    }

    /// Keeps `upper`, the overlay upper dir a RUN step's layer was written from, as that layer's unpacked
    /// directory (it already holds overlayfs whiteouts), unless one is there. Blocking.
    pub fn adopt_layer_dir(&self, upper: &Path, layer: &LayerInfo) -> Result<(), DockerfileError> {
        let parent = self.layers_dir();
        std::fs::create_dir_all(&parent).map_err(cache_err(&parent))?;
        let _lock = self.lock()?;
        let dir = self.layer_dir(layer);
        if !dir.exists() {
            std::fs::rename(upper, &dir).map_err(cache_err(&dir))?;
        }
        Ok(())
    }

    fn lock(&self) -> Result<File, DockerfileError> {
        let path = self.layers_dir().join(".lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(cache_err(&path))?;
        lock.lock().map_err(cache_err(&path))?;
        Ok(lock)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_changes_with_each_input() {
        let base = step_key("sha256:aa", "RUN echo hi", "");
        assert_eq!(base, step_key("sha256:aa", "RUN echo hi", ""));
        assert_ne!(base, step_key("sha256:bb", "RUN echo hi", ""));
        assert_ne!(base, step_key("sha256:aa", "RUN echo ho", ""));
        assert_ne!(base, step_key("sha256:aa", "RUN echo hi", "sha256:cc"));
        assert_ne!(step_key("a", "bc", ""), step_key("ab", "c", ""));
    }
}
