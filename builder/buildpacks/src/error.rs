//! The builder's error type. Messages end up in the pushing user's terminal, so they say what to do.

use std::path::PathBuf;

use crate::procfile::ProcfileError;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("no buildpack detected: add a requirements.txt, or a Procfile whose command runs python")]
    NoBuildpack,
    #[error(transparent)]
    Procfile(#[from] ProcfileError),
    #[error("{name} must be a regular file of at most {max} bytes")]
    BadSourceFile { name: &'static str, max: u64 },
    #[error("reading {path}")]
    ReadSource {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("preparing the stack")]
    Stack(#[source] stack::StackError),
    #[error("unpacking the stack layer into {path}")]
    UnpackStack {
        path: PathBuf,
        #[source]
        source: image_store::ImageStoreError,
    },
    #[error("preparing the build cache at {path}")]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("starting the build container")]
    Container(#[source] container::ContainerError),
    #[error("pip install failed ({status}); its last lines:\n{tail}")]
    Pip { status: String, tail: String },
    #[error("pip install did not finish within {seconds} s")]
    PipTimeout { seconds: u64 },
    #[error("writing the {what} layer")]
    WriteLayer {
        what: &'static str,
        #[source]
        source: image_store::ImageStoreError,
    },
    #[error("storing image {tag}")]
    PutImage {
        tag: String,
        #[source]
        source: image_store::ImageStoreError,
    },
    #[error("a build task failed: {0}")]
    Task(String),
}
