//! Unpacking a layer blob into a directory, checking its digest and diff_id on the way.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Component, Path};

use flate2::read::GzDecoder;

use crate::LayerCompression;

use crate::digest::HashingReader;
use crate::whiteout::{self, Name, Target};
use crate::{ImageStore, ImageStoreError};

impl ImageStore {
    /// Extracts the layer `digest` (whose uncompressed tar must hash to `diff_id`) into `dest`, keeping
    /// owners, modes and mtimes (run as root for owners to stick). `dest` should be a fresh directory that the
    /// caller renames into place once this returns: on error it holds a partial tree.
    ///
    /// The layer is unpacked on its own, to be one of an overlay's lower dirs: its OCI whiteouts become
    /// overlayfs whiteouts (`.wh.NAME` a 0/0 character device `NAME`, `.wh..wh..opq` the xattr
    /// `trusted.overlay.opaque=y` on its directory), which needs root.
    ///
    /// Entries that would land outside `dest` (absolute or `..` paths, links through symlinks) are refused by
    /// the `tar` crate's `unpack_in`, and whiteouts are never carried out through a symlink.
    pub fn unpack_layer(&self, digest: &str, diff_id: &str, dest: &Path) -> Result<(), ImageStoreError> {
        self.unpack(digest, diff_id, dest, Target::OverlayLower)
    }

    /// Applies the layer `digest` onto `dest`, which holds the layers below it unpacked into one tree: its
    /// whiteouts delete what they name in `dest` (never what this layer itself adds). Otherwise as
    /// [`ImageStore::unpack_layer`].
    pub fn apply_layer(&self, digest: &str, diff_id: &str, dest: &Path) -> Result<(), ImageStoreError> {
        self.unpack(digest, diff_id, dest, Target::Merged)
    }

    fn unpack(
        &self,
        digest: &str,
        diff_id: &str,
        dest: &Path,
        target: Target,
    ) -> Result<(), ImageStoreError> {
        let path = self.blob_path(digest)?;
        let wrap = |source| ImageStoreError::Unpack {
            digest: digest.to_owned(),
            dest: dest.to_owned(),
            source,
        };
        let compression = self.blob_compression(digest)?;
        let file = File::open(&path).map_err(|source| ImageStoreError::reading_blob(digest, source))?;
        let compressed = HashingReader::new(BufReader::with_capacity(1 << 20, file));
        let decoder = match compression {
            LayerCompression::Gzip => Decoder::Gzip(Box::new(GzDecoder::new(compressed))),
            LayerCompression::Zstd => Decoder::Zstd(zstd::Decoder::new(compressed).map_err(wrap)?),
        };
        let uncompressed = HashingReader::new(decoder);
        let mut archive = tar::Archive::new(uncompressed);
        archive.set_preserve_permissions(true);
        archive.set_preserve_ownerships(true);
        archive.set_preserve_mtime(true);
        archive.set_unpack_xattrs(false);
        archive.set_overwrite(true);

        // What this layer put in place so far: its whiteouts apply to the layers below only.
        let mut added = HashSet::new();
        for entry in archive.entries().map_err(wrap)? {
            let mut entry = entry.map_err(wrap)?;
            let entry_path = entry.path().map_err(wrap)?.into_owned();
            let hostile = |reason| ImageStoreError::HostileEntry {
                digest: digest.to_owned(),
                path: entry_path.display().to_string(),
                reason,
            };
            if entry_path
                .components()
                .any(|c| matches!(c, Component::ParentDir | Component::RootDir))
            {
                return Err(hostile("it leaves the layer's root"));
            }
            let file_name = entry_path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let name = whiteout::classify(file_name).map_err(hostile)?;
            if name != Name::Plain {
                let dir = normalized(entry_path.parent().unwrap_or(Path::new("")));
                whiteout::apply(target, dest, &dir, &name, &added).map_err(wrap)?;
                continue;
            }
            if !entry.unpack_in(dest).map_err(wrap)? {
                return Err(hostile("it leaves the layer's root"));
            }
            added.insert(normalized(&entry_path));
        }

        let uncompressed = archive.into_inner();
        let (gz, actual_diff_id) = uncompressed.drain_and_finish().map_err(wrap)?;
        let (_, actual_digest) = gz.into_inner().drain_and_finish().map_err(wrap)?;
        if actual_digest != digest {
            return Err(ImageStoreError::CorruptBlob {
                digest: digest.to_owned(),
                actual: actual_digest,
            });
        }
        if actual_diff_id != diff_id {
            return Err(ImageStoreError::CorruptLayer {
                digest: digest.to_owned(),
                diff_id: diff_id.to_owned(),
                actual: actual_diff_id,
            });
        }
        Ok(())
    }
}

/// The path without `.` components and trailing slashes, as whiteouts name it.
fn normalized(path: &Path) -> std::path::PathBuf {
    path.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect()
}

/// The decompressor over a layer blob.
pub(crate) enum Decoder<R: Read> {
    Gzip(Box<GzDecoder<R>>),
    Zstd(zstd::Decoder<'static, BufReader<R>>),
}

impl<R: Read> Decoder<R> {
    /// The compressed stream, to read what is left of it.
    pub(crate) fn into_inner(self) -> R {
        match self {
            Decoder::Gzip(d) => d.into_inner(),
            Decoder::Zstd(d) => d.finish().into_inner(),
        }
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Decoder::Gzip(d) => d.read(buf),
            Decoder::Zstd(d) => d.read(buf),
        }
    }
}
