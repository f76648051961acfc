//! The builder's error type. Messages end up in the pushing user's terminal, so they say what to do.

use std::path::PathBuf;

use crate::procfile::ProcfileError;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("no buildpack detected: add a requirements.txt, package.json, index.html or Procfile")]
    NoBuildpack,
    #[error("package.json is not valid: {0}")]
    BadPackageJson(String),
    #[error("pyproject.toml is not valid: {0}")]
    BadPyproject(String),
    #[error(transparent)]
    Procfile(#[from] ProcfileError),
    #[error(transparent)]
    Classic(#[from] crate::classic::ClassicError),
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
    #[error("{step} failed ({status}); its last lines:\n{tail}")]
    Step {
        step: String,
        status: String,
        tail: String,
    },
    #[error(transparent)]
    Limit(#[from] build_sandbox::LimitExceeded),
    #[error("creating the build's sandbox")]
    Sandbox(#[source] build_sandbox::SandboxError),
    #[error("{step} did not finish within {seconds} s")]
    StepTimeout { step: String, seconds: u64 },
    #[error(
        "`python3 manage.py collectstatic --noinput` failed ({status}); its last lines:\n{tail}\n\
         Django apps need STATIC_ROOT set for collectstatic; fix the settings and push again"
    )]
    Collectstatic { status: String, tail: String },
    #[error("yarn.lock is out of date with package.json: run `yarn install` and commit yarn.lock")]
    YarnLockOutdated,
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

impl build_sandbox::BuildFailure for BuildError {
    fn limit(&self) -> Option<&build_sandbox::LimitExceeded> {
        match self {
            Self::Limit(limit) | Self::Classic(crate::classic::ClassicError::Limit(limit)) => Some(limit),
            _ => None,
        }
    }

    fn sandbox(error: build_sandbox::SandboxError) -> Self {
        Self::Sandbox(error)
    }
}
