//! Turns a pushed source tree into an OCI image in the image store, the way Heroku's classic buildpacks do:
//! detect the language, install dependencies into their own layer on top of the stack, put the app in a
//! layer of its own, and describe the processes from the Procfile.
//!
//! Today there is one buildpack, Python (`requirements.txt`, installed with pip inside the stack in a build
//! container). Detection and Procfile parsing are pure functions with table-driven tests; [`Builder::build`]
//! is the shell around them. The dependency layer is reused, without re-tarring, while `requirements.txt`,
//! the stack and the buildpack version are unchanged.
//!
//! It does not decide releases, run apps, or sandbox builds with cgroup limits yet (issue 4). The controller
//! depends on it (a `git push` becomes a build); it depends on the image store, the stack and the container
//! crate.

mod build;
pub mod cache;
pub mod classic;
mod ctx;
mod detect;
mod error;
mod node;
mod node_build;
mod pip;
mod procfile;
mod pyproject;
mod python_build;
mod slugignore;
mod step;
mod versions;

pub use build::{BuildOutput, BuildRequest, Builder, BuilderConfig, BUILDPACK_LABEL, PROCESSES_LABEL};
pub use cache::{NODE_BUILDPACK_VERSION, PYTHON_BUILDPACK_VERSION};
pub use detect::{command_runs_python, detect, static_root, Buildpack, SourceFacts};
pub use error::BuildError;
pub use procfile::{parse_procfile, strip_shell_comment, ProcfileError};
