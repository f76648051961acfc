//! Images: config and manifest blobs, tags in `index.json`, and reading an image back.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::Write;
use std::path::PathBuf;

use oci_spec::image::{
    ConfigBuilder, Descriptor, DescriptorBuilder, HistoryBuilder, ImageConfiguration,
    ImageConfigurationBuilder, ImageIndex, ImageIndexBuilder, ImageManifest, ImageManifestBuilder, MediaType,
    RootFsBuilder,
};
use serde::Serialize;

use crate::digest::{check_digest, hex_of, sha256_digest};
use crate::{ImageStore, ImageStoreError, LayerCompression, LayerInfo};

/// The annotation that names a tag in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The `created` of images whose caller does not set one: fixed, so that the same layers and config always
/// give the same manifest digest (the same choice as Cloud Native Buildpacks).
pub const FIXED_CREATED: &str = "1980-01-01T00:00:01Z";

/// The runtime part of an image's config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    pub env: BTreeMap<String, String>,
    /// Run as the image's process when no command is given (OCI `Cmd`).
    pub cmd: Vec<String>,
    pub working_dir: String,
    pub labels: BTreeMap<String, String>,
    /// One `created_by` per layer, for the config's history (missing entries say `berth`).
    pub history: Vec<String>,
    /// RFC 3339; [`FIXED_CREATED`] when `None`.
    pub created: Option<String>,
}

/// Parts of an image config that only some builders set (a Dockerfile's `ENTRYPOINT`, `USER`, `EXPOSE`),
/// and a history with an entry per build step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageExtras {
    pub entrypoint: Vec<String>,
    /// `NAME`, `UID`, `NAME:GROUP` or `UID:GID`; empty for root.
    pub user: String,
    /// Such as `8080/tcp`.
    pub exposed_ports: BTreeSet<String>,
    /// When not empty, the history instead of [`ImageConfig::history`]: one entry per step, where exactly the
    /// entries that are not `empty_layer` match the layers, in order.
    pub history: Vec<HistoryEntry>,
}

/// One step of an image's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub created_by: String,
    /// The step changed only the config (no layer).
    pub empty_layer: bool,
}

/// One layer of a stored image, in order from the base up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLayer {
    pub digest: String,
    pub diff_id: String,
    pub size: u64,
    /// The gzip or zstd blob.
    pub path: PathBuf,
    /// As the manifest's media type says.
    pub compression: LayerCompression,
}

/// An image read back from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub manifest_digest: String,
    pub layers: Vec<ImageLayer>,
    pub config: ImageConfig,
}

/// Tags: 1 to 128 characters, components of `[A-Za-z0-9_][A-Za-z0-9._-]*` separated by single `/`s, such
/// as `myapp-build-abc1234` or `berth/bookworm`. The OCI image layout's `org.opencontainers.image.ref.name`
/// allows `/` (skopeo reads `oci:STORE:berth/bookworm`), and tags are only annotations in `index.json`,
/// never file names, so a `/` needs no encoding.
pub(crate) fn check_tag(tag: &str) -> Result<(), ImageStoreError> {
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
            && (c.as_bytes()[0].is_ascii_alphanumeric() || c.as_bytes()[0] == b'_')
    };
    if tag.len() <= 128 && tag.split('/').all(component_ok) {
        Ok(())
    } else {
        Err(ImageStoreError::BadTag(tag.to_owned()))
    }
}

/// JSON with object keys sorted, so that equal documents are equal bytes whatever map types oci-spec uses
/// inside (its labels and annotations are `HashMap`s, whose order changes from run to run).
pub(crate) fn canonical_json<T: Serialize>(
    what: &'static str,
    value: &T,
) -> Result<Vec<u8>, ImageStoreError> {
    fn sort(value: serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<_> = map.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sort(v))).collect())
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.into_iter().map(sort).collect())
            }
            other => other,
        }
    }
    let build = |e: serde_json::Error| ImageStoreError::Build {
        what,
        reason: e.to_string(),
    };
    let value = serde_json::to_value(value).map_err(build)?;
    serde_json::to_vec(&sort(value)).map_err(build)
}

macro_rules! built {
    ($what:literal, $builder:expr) => {
        $builder.build().map_err(|e| ImageStoreError::Build {
            what: $what,
            reason: e.to_string(),
        })
    };
}

/// An image's command (`ENTRYPOINT` followed by `CMD`) as one `/bin/sh -c` line (what a release's process
/// holds), or `None` when empty: a shell form (`/bin/sh -c TEXT`) is kept as written, an exec form is quoted
/// and `exec`ed. The node agent runs a process whose command is exactly this line as the image's argv.
pub fn shell_command(argv: &[String]) -> Option<String> {
    match argv {
        [] => None,
        [sh, c, text] if sh == "/bin/sh" && c == "-c" => Some(text.clone()),
        argv => {
            let quoted: Vec<String> = argv
                .iter()
                .map(|arg| {
                    let plain = !arg.is_empty()
                        && arg
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"/._-=:,+@%".contains(&b));
                    if plain {
                        arg.clone()
                    } else {
                        format!("'{}'", arg.replace('\'', "'\\''"))
                    }
                })
                .collect();
            Some(format!("exec {}", quoted.join(" ")))
        }
    }
}

impl ImageStore {
    /// Writes `bytes` as a blob (no-op when it exists) and returns its digest.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<String, ImageStoreError> {
        let digest = sha256_digest(bytes);
        let dest = self.blob_path(&digest)?;
        if dest.exists() {
            return Ok(digest);
        }
        let wrap = |source| ImageStoreError::WriteBlob {
            digest: digest.clone(),
            source,
        };
        let mut tmp = tempfile::NamedTempFile::new_in(self.tmp_dir()).map_err(wrap)?;
        tmp.write_all(bytes).map_err(wrap)?;
        tmp.as_file().sync_all().map_err(wrap)?;
        tmp.persist(&dest).map_err(|e| wrap(e.error))?;
        Ok(digest)
    }

    /// Reads a whole blob and checks its digest (for configs and manifests; layers are streamed).
    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>, ImageStoreError> {
        let path = self.blob_path(digest)?;
        let bytes = fs::read(&path).map_err(|source| ImageStoreError::reading_blob(digest, source))?;
        check_digest(&bytes, digest)?;
        Ok(bytes)
    }

    /// Writes the config and manifest of an image made of `layers` (base first, all already in the store)
    /// and tags it, replacing any image with the same tag. Returns the manifest digest.
    pub fn put_image(
        &self,
        tag: &str,
        layers: &[LayerInfo],
        config: &ImageConfig,
    ) -> Result<String, ImageStoreError> {
        self.put_image_with(tag, layers, config, &ImageExtras::default())
    }

    /// [`ImageStore::put_image`] with the config's less common parts and a per-step history.
    pub fn put_image_with(
        &self,
        tag: &str,
        layers: &[LayerInfo],
        config: &ImageConfig,
        extras: &ImageExtras,
    ) -> Result<String, ImageStoreError> {
        check_tag(tag)?;
        let mut compressions = Vec::with_capacity(layers.len());
        for layer in layers {
            hex_of(&layer.diff_id)?;
            compressions.push(self.blob_compression(&layer.digest)?);
        }
        let size: u64 = layers.iter().map(|l| l.size).sum();
        if size > self.max_image_bytes {
            return Err(ImageStoreError::ImageOverLimit {
                size,
                limit: self.max_image_bytes,
            });
        }
        let created = config.created.clone().unwrap_or_else(|| FIXED_CREATED.to_owned());

        let mut runtime = ConfigBuilder::default()
            .env(
                config
                    .env
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>(),
            )
            .cmd(config.cmd.clone())
            .working_dir(config.working_dir.clone())
            .labels(config.labels.clone().into_iter().collect::<HashMap<_, _>>());
        // Set only when used, so that images without them keep the config (and digest) they always had.
        if !extras.entrypoint.is_empty() {
            runtime = runtime.entrypoint(extras.entrypoint.clone());
        }
        if !extras.user.is_empty() {
            runtime = runtime.user(extras.user.clone());
        }
        if !extras.exposed_ports.is_empty() {
            runtime = runtime.exposed_ports(extras.exposed_ports.iter().cloned().collect::<Vec<_>>());
        }
        let runtime = built!("image config", runtime)?;
        let rootfs = built!(
            "image rootfs",
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>())
        )?;
        let steps: Vec<HistoryEntry> = if extras.history.is_empty() {
            (0..layers.len())
                .map(|i| HistoryEntry {
                    created_by: config
                        .history
                        .get(i)
                        .cloned()
                        .unwrap_or_else(|| "berth".to_owned()),
                    empty_layer: false,
                })
                .collect()
        } else {
            let with_layers = extras.history.iter().filter(|h| !h.empty_layer).count();
            if with_layers != layers.len() {
                return Err(ImageStoreError::Build {
                    what: "image history",
                    reason: format!("{with_layers} steps with a layer for {} layers", layers.len()),
                });
            }
            extras.history.clone()
        };
        let history = steps
            .iter()
            .map(|step| {
                let mut builder = HistoryBuilder::default()
                    .created(created.clone())
                    .created_by(step.created_by.clone());
                if step.empty_layer {
                    builder = builder.empty_layer(true);
                }
                built!("image history", builder)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let image_config = built!(
            "image configuration",
            ImageConfigurationBuilder::default()
                .created(created.clone())
                .config(runtime)
                .rootfs(rootfs)
                .history(history)
        )?;
        let config_bytes = canonical_json("image configuration", &image_config)?;
        let config_digest = self.put_blob(&config_bytes)?;

        let layer_descriptors = layers
            .iter()
            .zip(compressions)
            .map(|(l, c)| descriptor(MediaType::from(c.media_type()), l.size, &l.digest, None))
            .collect::<Result<Vec<_>, _>>()?;
        let manifest = built!(
            "image manifest",
            ImageManifestBuilder::default()
                .schema_version(2u32)
                .media_type(MediaType::ImageManifest)
                .config(descriptor(
                    MediaType::ImageConfig,
                    config_bytes.len() as u64,
                    &config_digest,
                    None
                )?)
                .layers(layer_descriptors)
        )?;
        let manifest_bytes = canonical_json("image manifest", &manifest)?;
        let manifest_digest = self.put_blob(&manifest_bytes)?;

        self.tag_manifest(tag, &manifest_digest, manifest_bytes.len() as u64)?;
        tracing::info!(tag, %manifest_digest, layers = layers.len(), "stored image");
        Ok(manifest_digest)
    }

    /// Points `tag` at the manifest `manifest_digest` (of `size` bytes) in `index.json`, replacing any image
    /// with the same tag.
    pub(crate) fn tag_manifest(
        &self,
        tag: &str,
        manifest_digest: &str,
        size: u64,
    ) -> Result<(), ImageStoreError> {
        let entry = descriptor(MediaType::ImageManifest, size, manifest_digest, Some(tag))?;
        self.update_index(|manifests| {
            manifests.retain(|d| !has_tag(d, tag));
            manifests.push(entry);
        })
    }

    /// How the layer blob `digest` is compressed, from its first bytes.
    pub fn blob_compression(&self, digest: &str) -> Result<LayerCompression, ImageStoreError> {
        let path = self.blob_path(digest)?;
        let mut magic = Vec::with_capacity(4);
        File::open(&path)
            .and_then(|f| std::io::Read::read_to_end(&mut std::io::Read::take(f, 4), &mut magic))
            .map_err(|source| ImageStoreError::reading_blob(digest, source))?;
        LayerCompression::sniff(&magic).ok_or_else(|| ImageStoreError::UnknownCompression {
            digest: digest.to_owned(),
        })
    }

    /// The manifest digest tagged `tag`, if any.
    pub fn resolve_tag(&self, tag: &str) -> Result<Option<String>, ImageStoreError> {
        let index = self.read_index()?;
        Ok(index
            .manifests()
            .iter()
            .find(|d| has_tag(d, tag))
            .map(|d| d.digest().to_string()))
    }

    /// Every tag with its manifest digest.
    pub fn tags(&self) -> Result<BTreeMap<String, String>, ImageStoreError> {
        let index = self.read_index()?;
        Ok(index
            .manifests()
            .iter()
            .filter_map(|d| {
                let tag = d.annotations().as_ref()?.get(REF_NAME)?;
                Some((tag.clone(), d.digest().to_string()))
            })
            .collect())
    }

    /// The [`ImageExtras`] of a stored image (its history entries with `empty_layer` kept).
    pub fn read_image_extras(&self, manifest_digest: &str) -> Result<ImageExtras, ImageStoreError> {
        let (_, config) = self.read_manifest_and_config(manifest_digest)?;
        let runtime = config.config().clone().unwrap_or_default();
        Ok(ImageExtras {
            entrypoint: runtime.entrypoint().clone().unwrap_or_default(),
            user: runtime.user().clone().unwrap_or_default(),
            exposed_ports: runtime.exposed_ports().iter().flatten().cloned().collect(),
            history: config
                .history()
                .iter()
                .flatten()
                .map(|h| HistoryEntry {
                    created_by: h.created_by().clone().unwrap_or_default(),
                    empty_layer: h.empty_layer().unwrap_or(false),
                })
                .collect(),
        })
    }

    fn read_manifest_and_config(
        &self,
        manifest_digest: &str,
    ) -> Result<(ImageManifest, ImageConfiguration), ImageStoreError> {
        let bad = |reason: String| ImageStoreError::BadImage {
            manifest_digest: manifest_digest.to_owned(),
            reason,
        };
        let manifest: ImageManifest = serde_json::from_slice(&self.read_blob(manifest_digest)?)
            .map_err(|e| bad(format!("manifest: {e}")))?;
        let config_digest = manifest.config().digest().to_string();
        let config: ImageConfiguration = serde_json::from_slice(&self.read_blob(&config_digest)?)
            .map_err(|e| bad(format!("config {config_digest}: {e}")))?;
        Ok((manifest, config))
    }

    /// Reads an image's manifest and config (both checked against their digests).
    pub fn read_image(&self, manifest_digest: &str) -> Result<Image, ImageStoreError> {
        let bad = |reason: String| ImageStoreError::BadImage {
            manifest_digest: manifest_digest.to_owned(),
            reason,
        };
        let (manifest, config) = self.read_manifest_and_config(manifest_digest)?;
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != manifest.layers().len() {
            return Err(bad(format!(
                "{} layers but {} diff_ids",
                manifest.layers().len(),
                diff_ids.len()
            )));
        }
        let mut layers = Vec::with_capacity(diff_ids.len());
        for (descriptor, diff_id) in manifest.layers().iter().zip(diff_ids) {
            let Some(compression) = LayerCompression::from_media_type(descriptor.media_type().as_ref())
            else {
                return Err(bad(format!(
                    "layer media type {} is not supported",
                    descriptor.media_type()
                )));
            };
            let digest = descriptor.digest().to_string();
            hex_of(diff_id)?;
            layers.push(ImageLayer {
                path: self.blob_path(&digest)?,
                digest,
                diff_id: diff_id.clone(),
                size: descriptor.size(),
                compression,
            });
        }

        let runtime = config.config().clone().unwrap_or_default();
        let env = runtime
            .env()
            .iter()
            .flatten()
            .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
            .collect();
        Ok(Image {
            manifest_digest: manifest_digest.to_owned(),
            layers,
            config: ImageConfig {
                env,
                cmd: runtime.cmd().clone().unwrap_or_default(),
                working_dir: runtime.working_dir().clone().unwrap_or_default(),
                labels: runtime.labels().clone().unwrap_or_default().into_iter().collect(),
                history: config
                    .history()
                    .iter()
                    .flatten()
                    .filter(|h| h.empty_layer() != Some(true))
                    .filter_map(|h| h.created_by().clone())
                    .collect(),
                created: config.created().clone(),
            },
        })
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    pub(crate) fn read_index(&self) -> Result<ImageIndex, ImageStoreError> {
        let path = self.index_path();
        let bytes = fs::read(&path).map_err(|source| ImageStoreError::UpdateIndex {
            path: path.clone(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|e| ImageStoreError::BadIndex {
            path,
            source: oci_spec::OciSpecError::SerDe(e),
        })
    }

    /// Read-modify-write of `index.json` under an exclusive lock on `.index.lock`, written to a temp file and
    /// renamed, so concurrent builds (in this process or another) never lose each other's tags and readers
    /// never see half a file.
    pub(crate) fn update_index(
        &self,
        change: impl FnOnce(&mut Vec<Descriptor>),
    ) -> Result<(), ImageStoreError> {
        let path = self.index_path();
        let wrap = |source| ImageStoreError::UpdateIndex {
            path: path.clone(),
            source,
        };
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join(".index.lock"))
            .map_err(wrap)?;
        lock.lock().map_err(wrap)?;

        let mut manifests = self.read_index()?.manifests().clone();
        change(&mut manifests);
        let index = empty_index(manifests)?;
        let bytes = canonical_json("image index", &index)?;
        let mut tmp = tempfile::NamedTempFile::new_in(self.tmp_dir()).map_err(wrap)?;
        tmp.write_all(&bytes).map_err(wrap)?;
        tmp.as_file().sync_all().map_err(wrap)?;
        tmp.persist(&path).map_err(|e| wrap(e.error))?;
        drop(lock);
        Ok(())
    }
}

/// Whether the index entry `d` carries the tag `tag`.
pub(crate) fn has_tag(d: &Descriptor, tag: &str) -> bool {
    d.annotations()
        .as_ref()
        .and_then(|a| a.get(REF_NAME))
        .map(String::as_str)
        == Some(tag)
}

pub(crate) fn empty_index(manifests: Vec<Descriptor>) -> Result<ImageIndex, ImageStoreError> {
    built!(
        "image index",
        ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(manifests)
    )
}

pub(crate) fn index_bytes(manifests: Vec<Descriptor>) -> Result<Vec<u8>, ImageStoreError> {
    canonical_json("image index", &empty_index(manifests)?)
}

pub(crate) fn descriptor(
    media_type: MediaType,
    size: u64,
    digest: &str,
    tag: Option<&str>,
) -> Result<Descriptor, ImageStoreError> {
    let parsed: oci_spec::image::Digest = digest
        .parse()
        .map_err(|_| ImageStoreError::BadDigest(digest.to_owned()))?;
    let mut builder = DescriptorBuilder::default()
        .media_type(media_type)
        .size(size)
        .digest(parsed);
    if let Some(tag) = tag {
        builder = builder.annotations(HashMap::from([(REF_NAME.to_owned(), tag.to_owned())]));
    }
    built!("descriptor", builder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        for ok in [
            "latest",
            "myapp-build-abc1234",
            "v1.2_3",
            "_x",
            "berth/bookworm",
            "a/b/c",
        ] {
            assert!(check_tag(ok).is_ok(), "{ok:?} refused");
        }
        for bad in [
            "",
            "-x",
            ".x",
            "a:b",
            "a b",
            "/a",
            "a/",
            "a//b",
            "a/../b",
            "a/-b",
            &"x".repeat(129),
        ] {
            assert!(check_tag(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let map: HashMap<&str, u32> = (0..50)
            .map(|i| (["a", "b", "c", "d", "e"][i % 5], i as u32))
            .collect();
        let bytes = canonical_json("test", &map).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let positions: Vec<usize> = ["\"a\"", "\"b\"", "\"c\"", "\"d\"", "\"e\""]
            .iter()
            .map(|k| text.find(k).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
    }
}
