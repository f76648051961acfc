//! The one error type of the image store.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ImageStoreError {
    #[error("creating the image layout at {path}")]
    CreateLayout {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not an OCI image layout: {reason}")]
    NotALayout { path: PathBuf, reason: String },
    #[error("reading {path} for a layer")]
    ReadSource {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing a layer from {dir}")]
    WriteLayer {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("layer prefix {0:?} is not valid: use a relative path of plain names, like \"layers/python\"")]
    BadPrefix(String),
    #[error("digest {0:?} is not valid: expected sha256:<64 lowercase hex digits>")]
    BadDigest(String),
    #[error("tag {0:?} is not valid: use 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit")]
    BadTag(String),
    #[error("blob {digest} is missing from the image store")]
    MissingBlob { digest: String },
    #[error("blob {digest} is corrupt: its content hashes to {actual}")]
    CorruptBlob { digest: String, actual: String },
    #[error(
        "layer {digest} is corrupt: its uncompressed content hashes to {actual}, not its diff_id {diff_id}"
    )]
    CorruptLayer {
        digest: String,
        diff_id: String,
        actual: String,
    },
    #[error("image {manifest_digest} is not valid: {reason}")]
    BadImage { manifest_digest: String, reason: String },
    #[error("image {manifest_digest} cannot be rebased: {refusal}")]
    Rebase {
        manifest_digest: String,
        refusal: crate::rebase::RebaseRefusal,
    },
    #[error("reading blob {digest}")]
    ReadBlob {
        digest: String,
        #[source]
        source: std::io::Error,
    },
    #[error("writing blob {digest}")]
    WriteBlob {
        digest: String,
        #[source]
        source: std::io::Error,
    },
    #[error("serializing {what}")]
    Serialize {
        what: &'static str,
        #[source]
        source: oci_spec::OciSpecError,
    },
    #[error("building {what}: {reason}")]
    Build { what: &'static str, reason: String },
    #[error("updating the index of {path}")]
    UpdateIndex {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the index of {path} is not valid")]
    BadIndex {
        path: PathBuf,
        #[source]
        source: oci_spec::OciSpecError,
    },
    #[error("unpacking layer {digest} into {dest}")]
    Unpack {
        digest: String,
        dest: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("layer {digest} has an entry {path:?} that is not allowed: {reason}")]
    HostileEntry {
        digest: String,
        path: String,
        reason: &'static str,
    },
    #[error("reading {path} of the image to import")]
    ReadImport {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the image to import is not supported: {reason}")]
    ImportRefused { reason: String },
    #[error("the image is too large: {bytes} bytes of layers, more than the limit of {limit}")]
    ImageTooLarge { bytes: u64, limit: u64 },
}
