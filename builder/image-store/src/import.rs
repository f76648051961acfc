//! Importing an image from another OCI layout (such as one `skopeo copy docker://REF oci:DIR:TAG` wrote) into
//! the store: every blob is checked against its digest (and each layer's uncompressed tar against its diff_id)
//! before it is renamed into place, and the manifest and config keep their exact bytes, so the image keeps
//! its digest. The source layout's `index.json` is only read; the store's own is updated under its lock.

use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest, MediaType};

use crate::digest::{check_digest, hex_of, HashingReader, HashingWriter};
use crate::image::{check_tag, has_tag};
use crate::unpack::Decoder;
use crate::{ImageStore, ImageStoreError, LayerCompression};

/// How to import an image.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The tag of the image in the source layout's `index.json`.
    pub source_tag: String,
    /// The tag to give it in the store.
    pub tag: String,
    /// The most bytes of layers, compressed or uncompressed, that the image may hold.
    pub max_bytes: u64,
}

/// What an import stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedImage {
    pub manifest_digest: String,
    pub layers: usize,
    /// The layers' compressed size.
    pub bytes: u64,
}

fn refused(reason: impl Into<String>) -> ImageStoreError {
    ImageStoreError::ImportRefused {
        reason: reason.into(),
    }
}

/// Why a layer's media type cannot be imported, or `None` when it can (gzip or zstd tar layers: what the
/// node agent unpacks).
pub(crate) fn layer_media_type_problem(media_type: &MediaType) -> Option<String> {
    match media_type {
        MediaType::ImageLayerGzip | MediaType::ImageLayerZstd => None,
        MediaType::ImageLayer => Some(
            "it has uncompressed layers: push it with gzip layers (skopeo copy --dest-compress --dest-compress-format gzip)"
                .to_owned(),
        ),
        other => Some(format!("it has a layer of media type {other}, not a gzip or zstd tar")),
    }
}

impl ImageStore {
    /// Imports the image tagged `options.source_tag` in the OCI layout at `layout` and tags it
    /// `options.tag` (replacing any image with that tag). Refuses image indexes (several platforms), layers
    /// that are not gzip tars, and images whose layers exceed `options.max_bytes`.
    pub fn import_from_layout(
        &self,
        layout: &Path,
        options: &ImportOptions,
    ) -> Result<ImportedImage, ImageStoreError> {
        check_tag(&options.tag)?;
        let read_json =
            |path: PathBuf| fs::read(&path).map_err(|source| ImageStoreError::ReadImport { path, source });
        let index: ImageIndex = serde_json::from_slice(&read_json(layout.join("index.json"))?)
            .map_err(|e| refused(format!("its index.json is not valid: {e}")))?;
        let entry = index
            .manifests()
            .iter()
            .find(|d| has_tag(d, &options.source_tag))
            .ok_or_else(|| refused(format!("the layout has no image tagged {:?}", options.source_tag)))?;
        if *entry.media_type() != MediaType::ImageManifest {
            return Err(refused(format!(
                "it is a {}, not a single-platform OCI image manifest",
                entry.media_type()
            )));
        }

        let source_blob = |digest: &str| -> Result<PathBuf, ImageStoreError> {
            Ok(layout.join("blobs/sha256").join(hex_of(digest)?))
        };
        let read_checked = |digest: &str| -> Result<Vec<u8>, ImageStoreError> {
            let bytes = read_json(source_blob(digest)?)?;
            check_digest(&bytes, digest)?;
            Ok(bytes)
        };

        let manifest_digest = entry.digest().to_string();
        let manifest_bytes = read_checked(&manifest_digest)?;
        let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| refused(format!("its manifest is not an OCI image manifest: {e}")))?;
        if *manifest.config().media_type() != MediaType::ImageConfig {
            return Err(refused(format!(
                "its config has media type {}, not an OCI image config",
                manifest.config().media_type()
            )));
        }
        for layer in manifest.layers() {
            if let Some(problem) = layer_media_type_problem(layer.media_type()) {
                return Err(refused(problem));
            }
        }
        let declared: u64 = manifest.layers().iter().map(|l| l.size()).sum();
        if declared > options.max_bytes {
            return Err(ImageStoreError::ImageTooLarge {
                bytes: declared,
                limit: options.max_bytes,
            });
        }
        let config_digest = manifest.config().digest().to_string();
        let config_bytes = read_checked(&config_digest)?;
        let config: ImageConfiguration = serde_json::from_slice(&config_bytes)
            .map_err(|e| refused(format!("its config is not an OCI image config: {e}")))?;
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != manifest.layers().len() {
            return Err(refused(format!(
                "{} layers but {} diff_ids",
                manifest.layers().len(),
                diff_ids.len()
            )));
        }

        let mut uncompressed_total = 0u64;
        for (layer, diff_id) in manifest.layers().iter().zip(diff_ids) {
            let digest = layer.digest().to_string();
            hex_of(diff_id)?;
            let budget = options.max_bytes - uncompressed_total;
            let compression = LayerCompression::from_media_type(layer.media_type().as_ref())
                .ok_or_else(|| refused(format!("layer {digest} is not a gzip or zstd tar")))?;
            uncompressed_total +=
                self.import_layer_blob(&source_blob(&digest)?, &digest, diff_id, compression, budget)?;
        }
        self.put_blob(&config_bytes)?;
        self.put_blob(&manifest_bytes)?;
        self.tag_manifest(&options.tag, &manifest_digest, manifest_bytes.len() as u64)?;
        // What the node agent will read: fail here, not at the first start.
        self.read_image(&manifest_digest)?;
        tracing::info!(tag = %options.tag, %manifest_digest, layers = manifest.layers().len(), "imported image");
        Ok(ImportedImage {
            manifest_digest,
            layers: manifest.layers().len(),
            bytes: declared,
        })
    }

    /// Copies one gzip or zstd layer (as its media type says) into the store after checking its digest, its diff_id and that it holds at most
    /// `budget` uncompressed bytes; returns its uncompressed size. A layer already in the store is still read
    /// for its size.
    fn import_layer_blob(
        &self,
        source: &Path,
        digest: &str,
        diff_id: &str,
        compression: LayerCompression,
        budget: u64,
    ) -> Result<u64, ImageStoreError> {
        let read_err = |source_err| ImageStoreError::ReadImport {
            path: source.to_owned(),
            source: source_err,
        };
        let write_err = |source| ImageStoreError::WriteBlob {
            digest: digest.to_owned(),
            source,
        };
        let file = File::open(source).map_err(read_err)?;
        let mut tmp = tempfile::NamedTempFile::new_in(self.tmp_dir()).map_err(write_err)?;
        // One pass: the compressed bytes are hashed and copied to the temp file as the decoder reads them;
        // the uncompressed bytes are hashed and counted.
        let tee = Tee {
            inner: BufReader::with_capacity(1 << 20, file),
            copy: HashingWriter::new(tmp.as_file_mut()),
        };
        let decoder = match compression {
            LayerCompression::Gzip => Decoder::Gzip(Box::new(GzDecoder::new(tee))),
            LayerCompression::Zstd => Decoder::Zstd(zstd::Decoder::new(tee).map_err(read_err)?),
        };
        let mut uncompressed = HashingReader::new(decoder.take(budget + 1));
        let size = io::copy(&mut uncompressed, &mut io::sink()).map_err(|e| {
            refused(format!(
                "layer {digest} is not a valid {compression} stream ({e})"
            ))
        })?;
        if size > budget {
            return Err(ImageStoreError::ImageTooLarge {
                bytes: size,
                limit: budget,
            });
        }
        let (decoder, actual_diff_id) = uncompressed.drain_and_finish().map_err(read_err)?;
        let mut tee = decoder.into_inner().into_inner();
        // Bytes after the compressed stream's end are still part of the blob.
        io::copy(&mut tee, &mut io::sink()).map_err(read_err)?;
        let (_, actual, _) = tee.copy.finish();
        if actual != digest {
            return Err(ImageStoreError::CorruptBlob {
                digest: digest.to_owned(),
                actual,
            });
        }
        if actual_diff_id != diff_id {
            return Err(ImageStoreError::CorruptLayer {
                digest: digest.to_owned(),
                diff_id: diff_id.to_owned(),
                actual: actual_diff_id,
            });
        }
        if !self.has_blob(digest) {
            tmp.as_file().sync_all().map_err(write_err)?;
            tmp.persist(self.blob_path(digest)?)
                .map_err(|e| write_err(e.error))?;
        }
        Ok(size)
    }
}

/// Reads from `inner` and writes what it read to `copy`.
struct Tee<R, W: io::Write> {
    inner: R,
    copy: HashingWriter<W>,
}

impl<R: Read, W: io::Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        io::Write::write_all(&mut self.copy, &buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_media_types() {
        let cases: &[(MediaType, Option<&str>)] = &[
            (MediaType::ImageLayerGzip, None),
            (MediaType::ImageLayerZstd, None),
            (MediaType::ImageLayer, Some("uncompressed")),
            (
                MediaType::Other("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip".to_owned()),
                Some("foreign"),
            ),
        ];
        for (media_type, expected) in cases {
            let problem = layer_media_type_problem(media_type);
            match expected {
                None => assert_eq!(problem, None, "{media_type}"),
                Some(word) => assert!(
                    problem.as_deref().is_some_and(|p| p.contains(word)),
                    "{media_type}: {problem:?}"
                ),
            }
        }
    }
}
