//! Turns a pushed source tree into an OCI image in the image store, the way Heroku's buildpacks do: detect
//! the language, install dependencies into their own layer on top of the stack, put the app in a layer of
//! its own, and describe the processes from the Procfile.
//!
//! Built-in buildpacks, detected in this order: Python (`requirements.txt` or `pyproject.toml`, pip in a
//! build container), Node.js (`package.json`, `npm ci`/`npm install`, a `build` script), a static site
//! (`index.html`), Procfile-only. Detection, Procfile, `.slugignore`, `package.json`, `pyproject.toml` and
//! version ranges are pure functions with table-driven tests; [`Builder::build`] is the shell around them.
//! A dependency layer is reused, without re-tarring, while its inputs, the stack and the buildpack version
//! are unchanged. An app that names buildpacks (`.buildpacks`) is built by them instead, with Heroku's classic
//! contract ([`classic`]). Dockerfile builds are another crate's (`dockerfile`), chosen by the caller.
//!
//! Each build runs in a `build_sandbox::BuildSandbox` (its cgroup's limits and a time limit over the whole
//! build); a step the OOM killer stopped fails with that reason. It does not decide releases or run apps.
//! The controller depends on it (a `git push` becomes a build); it depends on the image store, the stack, the
//! container crate and the build sandbox.

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
