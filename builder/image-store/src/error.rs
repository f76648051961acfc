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
    #[error(
        "tag {0:?} is not valid: use 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit \
         (and '/' between such names)"
    )]
    BadTag(String),
    #[error(
        "the image is {}, more than the limit of {}; add large files to .slugignore or ask the operator",
        human_size(*size),
        human_size(*limit)
    )]
    ImageOverLimit { size: u64, limit: u64 },
    #[error("layer {digest} is neither gzip nor zstd")]
    UnknownCompression { digest: String },
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

impl ImageStoreError {
    /// A blob that could not be opened or read: missing, or another IO error.
    pub(crate) fn reading_blob(digest: &str, source: std::io::Error) -> ImageStoreError {
        match source.kind() {
            std::io::ErrorKind::NotFound => ImageStoreError::MissingBlob {
                digest: digest.to_owned(),
            },
            _ => ImageStoreError::ReadBlob {
                digest: digest.to_owned(),
                source,
            },
        }
    }
}

/// `4.0 GiB`, `12.5 MiB` or `300 bytes`.
pub(crate) fn human_size(bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;
    match bytes {
        b if b >= GIB => format!("{:.1} GiB", b as f64 / GIB as f64),
        b if b >= MIB => format!("{:.1} MiB", b as f64 / MIB as f64),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        for (bytes, want) in [
            (0, "0 bytes"),
            (1023, "1023 bytes"),
            (1 << 20, "1.0 MiB"),
            (3 << 19, "1.5 MiB"),
            (4 << 30, "4.0 GiB"),
            ((9 << 30) / 2, "4.5 GiB"),
        ] {
            assert_eq!(human_size(bytes), want, "{bytes}");
        }
    }
}
