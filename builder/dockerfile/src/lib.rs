//! Builds a Dockerfile into an OCI image in Berth's image store without a Docker daemon.
//!
//! The parser ([`parse`]) and Docker's word rules ([`words`]) are pure. The executor ([`build`]) starts
//! `FROM` the Berth stack (`berth/bookworm`), an image tagged in the store, or a registry image pulled once
//! with skopeo ([`registry`], shared with the controller's image deploys), runs each `RUN` in a build
//! container (the `container` crate) over the image's unpacked layers with a fresh overlay upper dir, whose
//! contents (deletions as OCI whiteouts) become the step's layer, copies `COPY`/`ADD` sources from the build
//! context into layers of their own (`ADD` unpacks local tar archives; URLs are refused), and writes the
//! metadata steps into the image config ([`state`](crate)). Each step is cached by the chain of the steps
//! before it, its expanded text and, for `COPY`/`ADD`, the checksum of the copied files: an unchanged prefix
//! reuses its layers by digest.
//!
//! It does not run multi-stage builds or limit the build's cgroups (issue 4's sandboxing is the container
//! crate's part). The controller depends on it; it depends on the image store,
//! the stack and the container crate.

mod build;
mod cache;
mod context;
mod error;
pub mod parse;
pub mod registry;
mod run;
mod state;
pub mod words;

pub use build::{DockerfileBuilder, DockerfileConfig, DockerfileOutput, DockerfileRequest, STACK_IMAGE};
pub use error::DockerfileError;
pub use parse::{parse, Command, Dockerfile, Instruction, Kind, ParseError};
pub use state::shell_command;
