//! Image layers unpacked once per digest under `DATA_DIR/layers/<hex>/`, shared read-only by every instance.

use std::path::{Path, PathBuf};

use image_store::{ImageLayer, ImageStore};

use crate::AgentError;

/// The directory of a layer: the digest's hex (overlay options cannot hold the `:` of `sha256:`).
pub fn layer_dir(layers_dir: &Path, digest: &str) -> PathBuf {
    layers_dir.join(digest.strip_prefix("sha256:").unwrap_or(digest))
}

/// Unpacks every layer that is not unpacked yet and returns the directories, base first. Blocking: run it in
/// `spawn_blocking`, one call at a time (the caller holds a lock), so two instances never unpack the same
/// layer at once.
pub fn ensure(
    store: &ImageStore,
    layers_dir: &Path,
    layers: &[ImageLayer],
) -> Result<Vec<PathBuf>, AgentError> {
    let mut dirs = Vec::with_capacity(layers.len());
    for layer in layers {
        let dest = layer_dir(layers_dir, &layer.digest);
        if !dest.is_dir() {
            // Unpacked next to the destination and renamed into place, so a crash never leaves a half layer
            // that looks complete.
            let tmp = layers_dir.join(format!(
                ".tmp-{}",
                dest.file_name().unwrap_or_default().to_string_lossy()
            ));
            let io = |source| AgentError::Io {
                path: tmp.clone(),
                source,
            };
            if tmp.exists() {
                std::fs::remove_dir_all(&tmp).map_err(io)?;
            }
            std::fs::create_dir_all(&tmp).map_err(io)?;
            let started = std::time::Instant::now();
            store
                .unpack_layer(&layer.digest, &layer.diff_id, &tmp)
                .map_err(|source| {
                    let _ = std::fs::remove_dir_all(&tmp);
                    AgentError::Unpack {
                        digest: layer.digest.clone(),
                        source,
                    }
                })?;
            std::fs::rename(&tmp, &dest).map_err(io)?;
            tracing::info!(digest = %layer.digest, elapsed_ms = started.elapsed().as_millis() as u64, "layer unpacked");
        }
        dirs.push(dest);
    }
    Ok(dirs)
}

/// Removes half-unpacked layers of a previous run.
pub fn remove_leftovers(layers_dir: &Path) -> Result<(), AgentError> {
    let Ok(entries) = std::fs::read_dir(layers_dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(".tmp-") {
            let path = entry.path();
            std::fs::remove_dir_all(&path).map_err(|source| AgentError::Io { path, source })?;
        }
    }
    Ok(())
}
