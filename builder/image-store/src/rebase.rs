//! Rebasing: an image whose first layer is a Berth stack gets that layer replaced by another stack's layer,
//! without rebuilding anything above it. The config and manifest are edited as JSON, so every field the image
//! had (env, cmd, labels, entrypoint, user, ports, annotations) is kept as it was; only the first layer, its
//! diff_id and a new history entry change.

use oci_spec::image::MediaType;
use serde_json::{json, Value};

use crate::image::{canonical_json, FIXED_CREATED};
use crate::{ImageStore, ImageStoreError, LayerInfo};

/// How Berth's builders describe the stack layer in an image's history (`berth stack bookworm (...)`): an
/// image whose first layer's history entry starts with this was built on a Berth stack.
pub const STACK_HISTORY_PREFIX: &str = "berth stack ";

/// What [`ImageStore::rebase_image`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rebase {
    /// The image's first layer already is the stack's: nothing written.
    AlreadyOnStack,
    /// A new image was written and tagged.
    Rebased {
        manifest_digest: String,
        /// The digest of the stack layer the image had before.
        old_stack_digest: String,
    },
}

/// Why an image cannot be rebased (pure checks of its documents).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RebaseRefusal {
    #[error("the image has no layers")]
    NoLayers,
    #[error("the image was not built on a Berth stack (its first layer is {created_by:?})")]
    NotOnStack { created_by: String },
    #[error("the image's first layer has media type {0}; only gzip layers can be rebased")]
    UnsupportedLayer(String),
    #[error("the image's documents are malformed: {0}")]
    Malformed(String),
}

/// The config and manifest of the rebased image, before the new config's digest is known.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rebased {
    pub(crate) config: Value,
    /// The manifest without its `config` descriptor, which [`with_config`] fills in.
    pub(crate) manifest: Value,
    pub(crate) old_stack_digest: String,
}

/// Replaces the first layer of `manifest`/`config` by `stack` (pure). `Ok(None)` when it already is `stack`.
pub(crate) fn rebase_documents(
    manifest: &Value,
    config: &Value,
    stack: &LayerInfo,
) -> Result<Option<Rebased>, RebaseRefusal> {
    let malformed = |what: &str| RebaseRefusal::Malformed(what.to_owned());
    let layers = manifest
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("the manifest has no layers array"))?;
    let first = layers.first().ok_or(RebaseRefusal::NoLayers)?;
    let old_digest = first
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("the first layer has no digest"))?;
    if old_digest == stack.digest {
        return Ok(None);
    }
    let media_type = first.get("mediaType").and_then(Value::as_str).unwrap_or_default();
    if media_type != MediaType::ImageLayerGzip.to_string() {
        return Err(RebaseRefusal::UnsupportedLayer(media_type.to_owned()));
    }
    let diff_ids = config
        .pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("the config has no rootfs.diff_ids"))?;
    if diff_ids.len() != layers.len() {
        return Err(malformed(
            "the config's diff_ids do not match the manifest's layers",
        ));
    }
    let history = config
        .get("history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let stack_step = history
        .iter()
        .find(|h| h.get("empty_layer").and_then(Value::as_bool) != Some(true))
        .and_then(|h| h.get("created_by").and_then(Value::as_str))
        .unwrap_or_default();
    if !stack_step.starts_with(STACK_HISTORY_PREFIX) {
        return Err(RebaseRefusal::NotOnStack {
            created_by: stack_step.to_owned(),
        });
    }

    let mut config = config.clone();
    config["rootfs"]["diff_ids"][0] = json!(stack.diff_id);
    // Same `created` as the image, so rebasing one image onto one stack always gives one digest.
    let created = config
        .get("created")
        .and_then(Value::as_str)
        .unwrap_or(FIXED_CREATED)
        .to_owned();
    let mut history = history;
    history.push(json!({
        "created": created,
        "created_by": format!("rebased onto stack {}", stack.digest),
        "empty_layer": true,
    }));
    config["history"] = Value::Array(history);

    let mut manifest = manifest.clone();
    manifest["layers"][0] = json!({
        "mediaType": media_type,
        "digest": stack.digest,
        "size": stack.size,
    });
    if let Some(m) = manifest.as_object_mut() {
        m.remove("config");
    }
    Ok(Some(Rebased {
        config,
        manifest,
        old_stack_digest: old_digest.to_owned(),
    }))
}

impl ImageStore {
    /// Writes the image `manifest_digest` with its first layer replaced by `stack` (already in the store) and
    /// tags it `tag`. Refuses images not built on a Berth stack ([`ImageStoreError::Rebase`]).
    pub fn rebase_image(
        &self,
        manifest_digest: &str,
        stack: &LayerInfo,
        tag: &str,
    ) -> Result<Rebase, ImageStoreError> {
        let bad = |reason: String| ImageStoreError::BadImage {
            manifest_digest: manifest_digest.to_owned(),
            reason,
        };
        let manifest: Value =
            serde_json::from_slice(&self.read_blob(manifest_digest)?).map_err(|e| bad(e.to_string()))?;
        let config_digest = manifest
            .pointer("/config/digest")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("the manifest has no config digest".to_owned()))?;
        let config: Value =
            serde_json::from_slice(&self.read_blob(config_digest)?).map_err(|e| bad(e.to_string()))?;
        let rebased =
            rebase_documents(&manifest, &config, stack).map_err(|refusal| ImageStoreError::Rebase {
                manifest_digest: manifest_digest.to_owned(),
                refusal,
            })?;
        let Some(rebased) = rebased else {
            return Ok(Rebase::AlreadyOnStack);
        };
        if !self.has_blob(&stack.digest) {
            return Err(ImageStoreError::MissingBlob {
                digest: stack.digest.clone(),
            });
        }
        let config_bytes = canonical_json("image config", &rebased.config)?;
        let config_digest = self.put_blob(&config_bytes)?;
        let manifest = with_config(rebased.manifest, &config_digest, config_bytes.len() as u64);
        let manifest_bytes = canonical_json("image manifest", &manifest)?;
        let new_digest = self.put_blob(&manifest_bytes)?;
        crate::image::check_tag(tag)?;
        self.tag_manifest(tag, &new_digest, manifest_bytes.len() as u64)?;
        tracing::info!(tag, old = manifest_digest, new = %new_digest, stack = %stack.digest, "rebased image");
        Ok(Rebase::Rebased {
            manifest_digest: new_digest,
            old_stack_digest: rebased.old_stack_digest,
        })
    }
}

fn with_config(mut manifest: Value, digest: &str, size: u64) -> Value {
    manifest["config"] = json!({
        "mediaType": MediaType::ImageConfig.to_string(),
        "digest": digest,
        "size": size,
    });
    manifest
}

#[cfg(test)]
mod tests {
    use super::*;

    const BERTH_STEP: &str = "berth stack bookworm (debootstrap minbase)";

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn stack_layer(d: char, diff_id: char, size: u64) -> LayerInfo {
        LayerInfo {
            digest: digest(d),
            diff_id: digest(diff_id),
            size,
        }
    }

    fn layer(digest: &str) -> Value {
        json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": 10})
    }

    fn image(first_step: &str) -> (Value, Value) {
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest('c'), "size": 5},
            "layers": [layer(&digest('1')), layer(&digest('2'))],
        });
        let config = json!({
            "created": "2026-01-02T03:04:05Z",
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["A=1"], "Cmd": ["/bin/sh", "-c", "web"], "Labels": {"berth.buildpack": "python"}},
            "rootfs": {"type": "layers", "diff_ids": [digest('a'), digest('b')]},
            "history": [
                {"created": "2026-01-02T03:04:05Z", "created_by": first_step},
                {"created": "2026-01-02T03:04:05Z", "created_by": "ENV X=1", "empty_layer": true},
                {"created": "2026-01-02T03:04:05Z", "created_by": "berth app source"},
            ],
        });
        (manifest, config)
    }

    #[test]
    fn rebase_documents_table() {
        let stack = stack_layer('9', '8', 77);
        let current = LayerInfo {
            digest: digest('1'),
            ..stack.clone()
        };
        let berth = BERTH_STEP;
        let (no_layers, _) = image(berth);
        let no_layers = {
            let mut m = no_layers;
            m["layers"] = json!([]);
            m
        };
        let (zstd, _) = image(berth);
        let zstd = {
            let mut m = zstd;
            m["layers"][0]["mediaType"] = json!("application/vnd.oci.image.layer.v1.tar+zstd");
            m
        };
        let (m, c) = image(berth);
        type Want = Result<Option<()>, RebaseRefusal>;
        let cases: Vec<(&str, Value, Value, &LayerInfo, Want)> = vec![
            ("berth image", m.clone(), c.clone(), &stack, Ok(Some(()))),
            ("already on the stack", m.clone(), c.clone(), &current, Ok(None)),
            (
                "Dockerfile FROM debian",
                image("ADD file:abc in /").0,
                image("ADD file:abc in /").1,
                &stack,
                Err(RebaseRefusal::NotOnStack {
                    created_by: "ADD file:abc in /".into(),
                }),
            ),
            (
                "no history",
                m.clone(),
                {
                    let mut c = c.clone();
                    c.as_object_mut().unwrap().remove("history");
                    c
                },
                &stack,
                Err(RebaseRefusal::NotOnStack {
                    created_by: String::new(),
                }),
            ),
            (
                "no layers",
                no_layers,
                c.clone(),
                &stack,
                Err(RebaseRefusal::NoLayers),
            ),
            (
                "zstd",
                zstd,
                c.clone(),
                &stack,
                Err(RebaseRefusal::UnsupportedLayer(
                    "application/vnd.oci.image.layer.v1.tar+zstd".into(),
                )),
            ),
            (
                "diff_ids do not match",
                m.clone(),
                {
                    let mut c = c.clone();
                    c["rootfs"]["diff_ids"] = json!([digest('a')]);
                    c
                },
                &stack,
                Err(RebaseRefusal::Malformed(
                    "the config's diff_ids do not match the manifest's layers".into(),
                )),
            ),
        ];
        for (name, manifest, config, stack, want) in cases {
            let got = rebase_documents(&manifest, &config, stack);
            match (got, want) {
                (Ok(None), Ok(None)) => {}
                (Ok(Some(rebased)), Ok(Some(()))) => {
                    assert_eq!(rebased.old_stack_digest, digest('1'), "{name}");
                    // The stack layer and its diff_id are replaced; the app layer is kept.
                    assert_eq!(
                        rebased.manifest["layers"],
                        json!([
                            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest('9'), "size": 77},
                            layer(&digest('2')),
                        ]),
                        "{name}"
                    );
                    assert_eq!(
                        rebased.config["rootfs"]["diff_ids"],
                        json!([digest('8'), digest('b')]),
                        "{name}"
                    );
                    assert!(rebased.manifest.get("config").is_none(), "{name}");
                    // Env, cmd, labels and the rest untouched; one empty-layer history entry added.
                    assert_eq!(rebased.config["config"], config["config"], "{name}");
                    assert_eq!(rebased.config["created"], config["created"], "{name}");
                    let history = rebased.config["history"].as_array().unwrap();
                    assert_eq!(history.len(), 4, "{name}");
                    assert_eq!(history[..3], config["history"].as_array().unwrap()[..], "{name}");
                    assert_eq!(
                        history[3],
                        json!({
                            "created": "2026-01-02T03:04:05Z",
                            "created_by": format!("rebased onto stack {}", digest('9')),
                            "empty_layer": true,
                        }),
                        "{name}"
                    );
                }
                (Err(got), Err(want)) => assert_eq!(got, want, "{name}"),
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn a_rebased_image_rebases_again() {
        let berth = BERTH_STEP;
        let (m, c) = image(berth);
        let (first, second) = (stack_layer('9', '8', 1), stack_layer('7', '6', 2));
        let once = rebase_documents(&m, &c, &first).unwrap().unwrap();
        let manifest = with_config(once.manifest, &digest('c'), 1);
        let twice = rebase_documents(&manifest, &once.config, &second)
            .unwrap()
            .unwrap();
        assert_eq!(twice.old_stack_digest, digest('9'));
        assert_eq!(twice.config["history"].as_array().unwrap().len(), 5);
        assert!(rebase_documents(&manifest, &once.config, &first)
            .unwrap()
            .is_none());
    }
}
