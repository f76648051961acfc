//! Read-only views for serving images over the OCI distribution API: a stored manifest as the exact bytes
//! that were written (its digest is over those bytes), its media type, and the blobs it references.

use std::fs::File;

use crate::digest::hex_of;
use crate::{ImageStore, ImageStoreError};

/// The OCI image manifest media type, assumed for a manifest that does not name its own.
pub const OCI_MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// A manifest (or image index) blob as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredManifest {
    pub digest: String,
    /// The document's own `mediaType`, or [`OCI_MANIFEST_MEDIA_TYPE`] when it has none.
    pub media_type: String,
    /// The bytes exactly as stored; they hash to `digest`.
    pub bytes: Vec<u8>,
    /// Every blob the document references: the config and the layers of a manifest, the manifests of an
    /// index. Not transitive.
    pub references: Vec<String>,
}

/// Whether `digest` is `sha256:` and 64 lowercase hex digits: the only form of digest the store holds.
pub fn is_digest(digest: &str) -> bool {
    hex_of(digest).is_ok()
}

impl ImageStore {
    /// Reads a manifest or image index (checked against its digest) with the blobs it references.
    pub fn read_manifest(&self, digest: &str) -> Result<StoredManifest, ImageStoreError> {
        let bytes = self.read_blob(digest)?;
        let (media_type, references) =
            manifest_references(&bytes).map_err(|reason| ImageStoreError::BadImage {
                manifest_digest: digest.to_owned(),
                reason,
            })?;
        Ok(StoredManifest {
            digest: digest.to_owned(),
            media_type,
            bytes,
            references,
        })
    }

    /// Opens a blob for streaming, with its size. The content is not checked here: the reader of a blob
    /// served by digest checks it.
    pub fn open_blob(&self, digest: &str) -> Result<(File, u64), ImageStoreError> {
        let path = self.blob_path(digest)?;
        let wrap = |source: std::io::Error| match source.kind() {
            std::io::ErrorKind::NotFound => ImageStoreError::MissingBlob {
                digest: digest.to_owned(),
            },
            _ => ImageStoreError::ReadBlob {
                digest: digest.to_owned(),
                source,
            },
        };
        let file = File::open(&path).map_err(wrap)?;
        let size = file.metadata().map_err(wrap)?.len();
        Ok((file, size))
    }
}

/// The media type and referenced digests of a manifest or index document (pure).
fn manifest_references(bytes: &[u8]) -> Result<(String, Vec<String>), String> {
    let doc: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| format!("manifest: {e}"))?;
    let media_type = match doc.get("mediaType") {
        None => OCI_MANIFEST_MEDIA_TYPE.to_owned(),
        Some(serde_json::Value::String(m)) => m.clone(),
        Some(other) => return Err(format!("mediaType {other} is not a string")),
    };
    let mut descriptors: Vec<&serde_json::Value> = Vec::new();
    descriptors.extend(doc.get("config"));
    for list in ["layers", "manifests"] {
        if let Some(items) = doc.get(list) {
            let items = items
                .as_array()
                .ok_or_else(|| format!("{list} is not an array"))?;
            descriptors.extend(items);
        }
    }
    let references = descriptors
        .into_iter()
        .map(|d| {
            let digest = d
                .get("digest")
                .and_then(|v| v.as_str())
                .ok_or_else(|| format!("a descriptor has no digest: {d}"))?;
            hex_of(digest).map_err(|e| e.to_string())?;
            Ok(digest.to_owned())
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok((media_type, references))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_of_documents() {
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        let c = format!("sha256:{}", "c".repeat(64));
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
               "config":{{"digest":"{a}","size":1}},"layers":[{{"digest":"{b}"}},{{"digest":"{c}"}}]}}"#
        );
        let no_media_type = format!(r#"{{"schemaVersion":2,"config":{{"digest":"{a}"}},"layers":[]}}"#);
        let index = format!(
            r#"{{"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"digest":"{c}"}}]}}"#
        );
        type Want<'a> = Result<(&'a str, Vec<&'a String>), &'a str>;
        let cases: Vec<(String, Want)> = vec![
            (manifest, Ok((OCI_MANIFEST_MEDIA_TYPE, vec![&a, &b, &c]))),
            (no_media_type, Ok((OCI_MANIFEST_MEDIA_TYPE, vec![&a]))),
            (index, Ok(("application/vnd.oci.image.index.v1+json", vec![&c]))),
            ("not json".into(), Err("manifest:")),
            (r#"{"layers":{}}"#.into(), Err("layers is not an array")),
            (r#"{"layers":[{"size":1}]}"#.into(), Err("has no digest")),
            (
                r#"{"config":{"digest":"sha256:../../etc/passwd"}}"#.into(),
                Err("not valid"),
            ),
            (r#"{"mediaType":7}"#.into(), Err("not a string")),
        ];
        for (doc, want) in cases {
            match (manifest_references(doc.as_bytes()), want) {
                (Ok((media, refs)), Ok((want_media, want_refs))) => {
                    assert_eq!(media, want_media, "{doc}");
                    assert_eq!(refs.iter().collect::<Vec<_>>(), want_refs, "{doc}");
                }
                (Err(e), Err(want)) => assert!(e.contains(want), "{doc}: {e}"),
                (got, want) => panic!("{doc}: got {got:?}, want {want:?}"),
            }
        }
    }
}
