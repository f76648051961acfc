//! Writing a directory tree as a gzip or zstd layer blob, hashing the compressed and uncompressed streams in one pass.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;
use serde::{Deserialize, Serialize};
use tar::{EntryType, Header, HeaderMode};

use crate::digest::HashingWriter;
use crate::whiteout;
use crate::{ImageStore, ImageStoreError};

/// How file metadata goes into a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerMode {
    /// For trees made by a build (app sources, installed dependencies): owner root, a fixed mtime, modes
    /// normalized to 0755/0644 (keeping the execute bit), so the same files always give the same digest.
    /// Hard links are stored as separate files; sockets, FIFOs and device nodes are left out.
    Reproducible,
    /// For a root filesystem: owners, modes (with setuid bits) and mtimes kept, hard links kept as links.
    /// Sockets and device nodes are left out (containers get their own `/dev`).
    Rootfs,
}

/// How a layer's tar is compressed. Readers tell the two apart by the blob's first bytes, so the same
/// unpacking code takes both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerCompression {
    /// `application/vnd.oci.image.layer.v1.tar+gzip`: what every tool reads.
    #[default]
    Gzip,
    /// `application/vnd.oci.image.layer.v1.tar+zstd`: faster to unpack, smaller; umoci 0.4 cannot unpack it.
    Zstd,
}

impl LayerCompression {
    /// The OCI layer media type.
    pub fn media_type(self) -> &'static str {
        match self {
            LayerCompression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            LayerCompression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    /// The compression of a layer of media type `media_type`, if Berth can unpack it.
    pub fn from_media_type(media_type: &str) -> Option<LayerCompression> {
        [LayerCompression::Gzip, LayerCompression::Zstd]
            .into_iter()
            .find(|c| c.media_type() == media_type)
    }

    /// The compression a blob starting with `magic` uses (gzip `1f 8b`, zstd `28 b5 2f fd`).
    pub fn sniff(magic: &[u8]) -> Option<LayerCompression> {
        if magic.starts_with(&[0x1f, 0x8b]) {
            Some(LayerCompression::Gzip)
        } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(LayerCompression::Zstd)
        } else {
            None
        }
    }
}

impl std::str::FromStr for LayerCompression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "gzip" => Ok(LayerCompression::Gzip),
            "zstd" => Ok(LayerCompression::Zstd),
            other => Err(format!("unknown layer compression {other:?}: use gzip or zstd")),
        }
    }
}

impl std::fmt::Display for LayerCompression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LayerCompression::Gzip => "gzip",
            LayerCompression::Zstd => "zstd",
        })
    }
}

/// A written layer blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// `sha256:` of the compressed blob, which is also its file name under `blobs/sha256/`.
    pub digest: String,
    /// `sha256:` of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub diff_id: String,
    /// Size of the compressed blob in bytes.
    pub size: u64,
}

/// What to put in a layer and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerOptions {
    /// Where the tree appears in the image, such as `layers/python` (empty for the image root).
    pub prefix: String,
    pub mode: LayerMode,
    /// Relative paths left out with everything beneath them, such as `.git`.
    pub exclude: Vec<PathBuf>,
    /// Relative directories kept, but empty, such as `proc` and `dev` of a root filesystem.
    pub empty_dirs: Vec<PathBuf>,
    /// gzip level, 0–9. 1 is several times faster than 6 for a few percent more bytes. zstd uses its level 3
    /// (its default) whatever this says.
    pub gzip_level: u32,
    /// `None` for the store's default ([`ImageStore::with_layer_compression`], gzip unless set).
    pub compression: Option<LayerCompression>,
    /// The tree is an overlayfs upper dir: its deletions (0/0 character devices) become `.wh.NAME` entries
    /// and its opaque directories (`trusted.overlay.opaque`) get a `.wh..wh..opq` entry (reading that
    /// xattr needs root).
    pub overlay_upper: bool,
    /// In [`LayerMode::Reproducible`], the owner (uid, gid) of every entry of the tree instead of root (a
    /// Dockerfile's `COPY --chown`).
    pub owner: Option<(u64, u64)>,
}

impl LayerOptions {
    pub fn new(prefix: &str, mode: LayerMode) -> Self {
        Self {
            prefix: prefix.to_owned(),
            mode,
            exclude: Vec::new(),
            empty_dirs: Vec::new(),
            gzip_level: 6,
            compression: None,
            overlay_upper: false,
            owner: None,
        }
    }
}

/// Splits a prefix such as `layers/python` into its names, refusing anything that could escape the root.
fn prefix_components(prefix: &str) -> Result<Vec<&str>, ImageStoreError> {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    let parts: Vec<&str> = trimmed.split('/').collect();
    let plain = Path::new(trimmed)
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    if !plain || parts.iter().any(|p| p.is_empty() || *p == "." || *p == "..") {
        return Err(ImageStoreError::BadPrefix(prefix.to_owned()));
    }
    Ok(parts)
}

impl ImageStore {
    /// Writes `dir` as a layer placed at `prefix_in_image`, with default options for `mode`.
    pub fn write_layer_from_dir(
        &self,
        dir: &Path,
        prefix_in_image: &str,
        mode: LayerMode,
    ) -> Result<LayerInfo, ImageStoreError> {
        self.write_layer(dir, &LayerOptions::new(prefix_in_image, mode))
    }

    /// Writes `dir` as a tar+gzip (or tar+zstd) layer blob. Entries are sorted by name; symlinks are stored, never
    /// followed. The blob is streamed into a temp file in the store while both digests are computed, then
    /// renamed into `blobs/sha256/`, so a crash never leaves a blob whose name lies about its content.
    pub fn write_layer(&self, dir: &Path, options: &LayerOptions) -> Result<LayerInfo, ImageStoreError> {
        let prefix = prefix_components(&options.prefix)?;
        let wrap = |source| ImageStoreError::WriteLayer {
            dir: dir.to_owned(),
            source,
        };
        let tmp = tempfile::NamedTempFile::new_in(self.tmp_dir()).map_err(wrap)?;

        let compressed = HashingWriter::new(BufWriter::with_capacity(1 << 20, tmp.as_file()));
        let compression = options.compression.unwrap_or(self.layer_compression);
        let encoder = match compression {
            LayerCompression::Gzip => Encoder::Gzip(GzEncoder::new(
                compressed,
                Compression::new(options.gzip_level.min(9)),
            )),
            LayerCompression::Zstd => Encoder::Zstd(zstd::Encoder::new(compressed, 0).map_err(wrap)?),
        };
        let mut tar = tar::Builder::new(HashingWriter::new(encoder));
        tar.follow_symlinks(false);

        // The directories of the prefix itself, so tools that unpack see them with sane modes.
        let mut path_so_far = PathBuf::new();
        for part in &prefix {
            path_so_far.push(part);
            let mut header = fixed_header(EntryType::Directory, 0o755);
            tar.append_data(&mut header, &path_so_far, io::empty())
                .map_err(wrap)?;
        }
        let base: PathBuf = prefix.iter().collect();
        append_tree(&mut tar, dir, &base, options)?;

        let uncompressed = tar.into_inner().map_err(wrap)?;
        let (encoder, diff_id, _) = uncompressed.finish();
        let compressed = encoder.finish().map_err(wrap)?;
        let (mut buffered, digest, size) = compressed.finish();
        buffered.flush().map_err(wrap)?;
        drop(buffered);
        tmp.as_file().sync_all().map_err(wrap)?;

        let dest = self.blob_path(&digest)?;
        tmp.persist(&dest).map_err(|e| ImageStoreError::WriteBlob {
            digest: digest.clone(),
            source: e.error,
        })?;
        tracing::debug!(dir = %dir.display(), %digest, %diff_id, size, %compression, "wrote layer");
        Ok(LayerInfo {
            digest,
            diff_id,
            size,
        })
    }
}

/// The compressor under the tar stream.
enum Encoder<W: Write> {
    Gzip(GzEncoder<W>),
    Zstd(zstd::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }
}

fn append_tree<W: Write>(
    tar: &mut tar::Builder<W>,
    dir: &Path,
    base: &Path,
    options: &LayerOptions,
) -> Result<(), ImageStoreError> {
    let read_err = |path: &Path, source: io::Error| ImageStoreError::ReadSource {
        path: path.to_owned(),
        source,
    };
    // The first archive path of each multiply-linked inode, for hard links in Rootfs mode.
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();

    let walker = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| {
            let Ok(rel) = entry.path().strip_prefix(dir) else {
                return true;
            };
            let excluded = options.exclude.iter().any(|e| rel == e);
            let inside_empty = rel
                .parent()
                .is_some_and(|p| options.empty_dirs.iter().any(|e| p == e));
            !excluded && !inside_empty
        });

    for entry in walker {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(dir).to_owned();
            read_err(&path, e.into())
        })?;
        let path = entry.path();
        let rel = path
            .strip_prefix(dir)
            .expect("walkdir yields paths under its root");
        let name = base.join(rel);
        let meta = entry.metadata().map_err(|e| read_err(path, e.into()))?;
        let file_type = meta.file_type();
        let file_name = rel.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if file_name.starts_with(whiteout::PREFIX) {
            return Err(read_err(
                path,
                io::Error::other("names starting with .wh. are reserved for OCI whiteouts"),
            ));
        }

        if options.overlay_upper && file_type.is_char_device() && meta.rdev() == 0 {
            let mut header = whiteout_header();
            let name = name.with_file_name(format!("{}{file_name}", whiteout::PREFIX));
            tar.append_data(&mut header, &name, io::empty())
                .map_err(|e| read_err(path, e))?;
            continue;
        }
        let mut opaque = false;
        if options.overlay_upper {
            if file_type.is_dir() {
                opaque = whiteout::upper_dir_is_opaque(path).map_err(|e| read_err(path, e))?;
            } else if file_type.is_file() {
                whiteout::check_upper_file(path).map_err(|e| read_err(path, e))?;
            }
        }

        if file_type.is_socket() || file_type.is_block_device() || file_type.is_char_device() {
            continue;
        }
        if file_type.is_fifo() && options.mode == LayerMode::Reproducible {
            continue;
        }

        let mut header = Header::new_gnu();
        match options.mode {
            LayerMode::Reproducible => {
                header.set_metadata_in_mode(&meta, HeaderMode::Deterministic);
                if let Some((uid, gid)) = options.owner {
                    header.set_uid(uid);
                    header.set_gid(gid);
                }
            }
            LayerMode::Rootfs => {
                header.set_metadata_in_mode(&meta, HeaderMode::Complete);
                header.set_mode(meta.mode() & 0o7777);
            }
        }

        if file_type.is_symlink() {
            let target = std::fs::read_link(path).map_err(|e| read_err(path, e))?;
            header.set_entry_type(EntryType::Symlink);
            header.set_size(0);
            tar.append_link(&mut header, &name, &target)
                .map_err(|e| read_err(path, e))?;
        } else if file_type.is_dir() {
            header.set_entry_type(EntryType::Directory);
            header.set_size(0);
            tar.append_data(&mut header, &name, io::empty())
                .map_err(|e| read_err(path, e))?;
            if opaque {
                // Right after its directory, before anything this layer puts inside it.
                tar.append_data(&mut whiteout_header(), name.join(whiteout::OPAQUE), io::empty())
                    .map_err(|e| read_err(path, e))?;
            }
        } else if file_type.is_fifo() {
            header.set_entry_type(EntryType::Fifo);
            header.set_size(0);
            tar.append_data(&mut header, &name, io::empty())
                .map_err(|e| read_err(path, e))?;
        } else {
            if options.mode == LayerMode::Rootfs && meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = links.get(&key) {
                    header.set_entry_type(EntryType::Link);
                    header.set_size(0);
                    tar.append_link(&mut header, &name, first)
                        .map_err(|e| read_err(path, e))?;
                    continue;
                }
                links.insert(key, name.clone());
            }
            let file = File::open(path).map_err(|e| read_err(path, e))?;
            // The size comes from the open file, so a file that changed since the walk stays consistent.
            let size = file.metadata().map_err(|e| read_err(path, e))?.len();
            header.set_entry_type(EntryType::Regular);
            header.set_size(size);
            tar.append_data(&mut header, &name, io::Read::take(file, size))
                .map_err(|e| read_err(path, e))?;
        }
    }
    Ok(())
}

/// An empty regular file owned by root with a fixed mtime, as whiteouts are written.
fn whiteout_header() -> Header {
    fixed_header(EntryType::Regular, 0o644)
}

/// An empty entry owned by root with a fixed mtime.
fn fixed_header(entry_type: EntryType, mode: u32) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(entry_type);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(tar::DETERMINISTIC_TIMESTAMP);
    header.set_size(0);
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let ok: &[(&str, &[&str])] = &[
            ("", &[]),
            ("/", &[]),
            ("app", &["app"]),
            ("/layers/python/", &["layers", "python"]),
        ];
        for (prefix, parts) in ok {
            assert_eq!(prefix_components(prefix).unwrap(), *parts, "{prefix:?}");
        }
        for bad in ["..", "a/../b", "a//b", "./a", "a/."] {
            assert!(prefix_components(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn compressions_by_name_media_type_and_magic() {
        for (name, compression, media_type, magic) in [
            (
                "gzip",
                LayerCompression::Gzip,
                "application/vnd.oci.image.layer.v1.tar+gzip",
                &[0x1f, 0x8b, 8, 0][..],
            ),
            (
                "zstd",
                LayerCompression::Zstd,
                "application/vnd.oci.image.layer.v1.tar+zstd",
                &[0x28, 0xb5, 0x2f, 0xfd][..],
            ),
        ] {
            assert_eq!(name.parse::<LayerCompression>(), Ok(compression));
            assert_eq!(compression.to_string(), name);
            assert_eq!(compression.media_type(), media_type);
            assert_eq!(LayerCompression::from_media_type(media_type), Some(compression));
            assert_eq!(LayerCompression::sniff(magic), Some(compression));
        }
        assert!("lz4".parse::<LayerCompression>().is_err());
        assert_eq!(
            LayerCompression::from_media_type("application/vnd.oci.image.layer.v1.tar"),
            None
        );
        for magic in [&b""[..], b"\x1f", b"ustar", b"\x28\xb5\x2f"] {
            assert_eq!(LayerCompression::sniff(magic), None, "{magic:?}");
        }
    }
}
