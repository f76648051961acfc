//! Importing a layer blob made elsewhere (a stack pulled from a registry), with both its digests checked.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read};
use std::path::Path;

use flate2::read::GzDecoder;

use crate::digest::{HashingReader, HashingWriter};
use crate::{ImageStore, ImageStoreError, LayerInfo};

impl ImageStore {
    /// Copies the gzip layer at `blob` into the store as `layer.digest`, checking that it hashes to it and
    /// that its tar hashes to `layer.diff_id`. Returns the content of the regular file `wanted` in the layer
    /// (such as `var/lib/dpkg/status`, with or without a leading `./`), if it has one.
    pub fn import_layer(
        &self,
        blob: &Path,
        layer: &LayerInfo,
        wanted: &str,
    ) -> Result<Option<Vec<u8>>, ImageStoreError> {
        let dest = self.blob_path(&layer.digest)?;
        let wrap = |source| ImageStoreError::WriteBlob {
            digest: layer.digest.clone(),
            source,
        };
        if !dest.exists() {
            let mut source = File::open(blob).map_err(|source| ImageStoreError::ReadSource {
                path: blob.to_owned(),
                source,
            })?;
            let tmp = tempfile::NamedTempFile::new_in(self.tmp_dir()).map_err(wrap)?;
            let mut writer = HashingWriter::new(BufWriter::with_capacity(1 << 20, tmp.as_file()));
            io::copy(&mut source, &mut writer).map_err(wrap)?;
            let (inner, actual, _) = writer.finish();
            inner.into_inner().map_err(|e| wrap(e.into_error()))?;
            if actual != layer.digest {
                return Err(ImageStoreError::CorruptBlob {
                    digest: layer.digest.clone(),
                    actual,
                });
            }
            tmp.as_file().sync_all().map_err(wrap)?;
            tmp.persist(&dest).map_err(|e| wrap(e.error))?;
        }

        let read = |source| ImageStoreError::ReadBlob {
            digest: layer.digest.clone(),
            source,
        };
        let file = File::open(&dest).map_err(read)?;
        let tar_stream = HashingReader::new(GzDecoder::new(BufReader::with_capacity(1 << 20, file)));
        let mut archive = tar::Archive::new(tar_stream);
        let wanted = wanted.trim_start_matches("./");
        let mut found = None;
        for entry in archive.entries().map_err(read)? {
            let mut entry = entry.map_err(read)?;
            let path = entry.path().map_err(read)?.to_string_lossy().into_owned();
            if found.is_none()
                && path.trim_start_matches("./") == wanted
                && entry.header().entry_type().is_file()
            {
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).map_err(read)?;
                found = Some(bytes);
            }
        }
        let (_, actual) = archive.into_inner().drain_and_finish().map_err(read)?;
        if actual != layer.diff_id {
            return Err(ImageStoreError::CorruptLayer {
                digest: layer.digest.clone(),
                diff_id: layer.diff_id.clone(),
                actual,
            });
        }
        Ok(found)
    }
}
