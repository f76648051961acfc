//! The Dockerfile builder's error type. Messages end up in the pushing user's terminal, so they say what is
//! wrong and where (the Dockerfile line).

use std::path::PathBuf;

use crate::ParseError;

#[derive(Debug, thiserror::Error)]
pub enum DockerfileError {
    #[error("reading the Dockerfile {path}")]
    ReadDockerfile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("reading {path}")]
    ReadDockerignore {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An instruction that parsed but cannot be carried out as written (a bad port, a missing source).
    #[error("Dockerfile line {line}: {message}")]
    Instruction { line: usize, message: String },
    #[error("Dockerfile line {line}: FROM {image}")]
    Pull {
        line: usize,
        image: String,
        #[source]
        source: crate::registry::PullError,
    },
    #[error("Dockerfile line {line}: FROM {image}: no such image in Berth's store (use FROM berth/bookworm for the stack)")]
    NoSuchImage { line: usize, image: String },
    #[error("preparing the stack")]
    Stack(#[source] stack::StackError),
    #[error("reading the base image {image}")]
    BaseImage {
        image: String,
        #[source]
        source: image_store::ImageStoreError,
    },
    #[error("Dockerfile line {line}: copying {path}")]
    Copy {
        line: usize,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the build cache at {path}")]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("unpacking layer {digest} for a build step")]
    Unpack {
        digest: String,
        #[source]
        source: image_store::ImageStoreError,
    },
    #[error("Dockerfile line {line}: starting the build container")]
    Container {
        line: usize,
        #[source]
        source: container::ContainerError,
    },
    #[error("Dockerfile line {line}: the command failed ({status}); its last lines:\n{tail}")]
    RunFailed {
        line: usize,
        status: String,
        tail: String,
    },
    #[error(transparent)]
    Limit(#[from] build_sandbox::LimitExceeded),
    #[error("creating the build's sandbox")]
    Sandbox(#[source] build_sandbox::SandboxError),
    #[error("Dockerfile line {line}: the command did not finish within {seconds} s")]
    RunTimeout { line: usize, seconds: u64 },
    #[error("Dockerfile line {line}: writing the step's layer")]
    WriteLayer {
        line: usize,
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

pub(crate) fn cache_err(path: &std::path::Path) -> impl Fn(std::io::Error) -> DockerfileError + '_ {
    move |source| DockerfileError::Cache {
        path: path.to_owned(),
        source,
    }
}

impl build_sandbox::BuildFailure for DockerfileError {
    fn limit(&self) -> Option<&build_sandbox::LimitExceeded> {
        match self {
            Self::Limit(limit) => Some(limit),
            _ => None,
        }
    }

    fn sandbox(error: build_sandbox::SandboxError) -> Self {
        Self::Sandbox(error)
    }
}
