//! Heroku's classic buildpacks: a tenant names buildpacks (the `BUILDPACK_URL` config var, or a
//! `.buildpacks` file listing several in order) and each runs with the classic contract inside the stack, in
//! a build container: `bin/detect BUILD_DIR`, `bin/compile BUILD_DIR CACHE_DIR ENV_DIR`, `bin/release
//! BUILD_DIR`. A buildpack may leave an `export` file in its own directory; it is sourced before every later
//! step. The compiled `/app` becomes the app layer; `.profile.d/*.sh` scripts it holds are sourced when a
//! process starts ([`with_profile_d`]).
//!
//! Several buildpacks behave as with heroku-buildpack-multi: each one whose `bin/detect` says yes compiles,
//! in order; one that says no is skipped; the build fails when none says yes. Process types and config vars
//! from `bin/release` are merged, a later buildpack's winning.
//!
//! In the container: `BUILD_DIR` is `/app` (a writable copy of the pushed tree without `.git`), `CACHE_DIR`
//! is `/cache` (the caller's per-app directory, kept between builds), `ENV_DIR` is `/env` (read-only, one file
//! per config var; config vars are not in the scripts' environment, as on Heroku), buildpacks are at
//! `/buildpacks/N`. The scripts' environment is `PATH`, `HOME=/app`, `LANG`, `STACK`, `SOURCE_VERSION` (when
//! known) and what earlier `export` files set. Git buildpacks are fetched on the host with `git fetch --depth 1`.

mod fetch;
mod launch;
mod release;
mod source;
mod step;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use build_sandbox::BuildSandbox;
use image_store::{ImageStore, ImageStoreError, LayerInfo, LayerMode, LayerOptions};
use tokio::sync::mpsc;
use tokio::time::Instant;
use vocabulary::ProcessType;

pub use fetch::copy_tree;
pub use launch::{launch_argv, with_profile_d};
pub use release::{parse_release, Release};
pub use source::{
    parse_buildpack_url, parse_buildpacks_file, requested_buildpacks, BuildpackSource, SourcePolicy,
    BUILDPACKS_FILE, BUILDPACK_URL_VAR,
};
pub use step::{push_line, Script, BUILD_DIR, CACHE_DIR, ENV_DIR};

use fetch::GitFetch;
use step::{buildpack_dir, Sandbox};

/// One classic build.
pub struct ClassicRun {
    /// In order; see [`requested_buildpacks`].
    pub buildpacks: Vec<BuildpackSource>,
    /// The pushed tree; it is copied, never changed.
    pub source_dir: PathBuf,
    /// The app's buildpack cache (`CACHE_DIR`), created if missing, kept between builds.
    pub cache_dir: PathBuf,
    /// Written to `ENV_DIR`, one file per var; never logged.
    pub config_vars: BTreeMap<String, String>,
    /// The unpacked stack, the read-only base of the build container.
    pub stack_rootfs: PathBuf,
    /// `STACK` in the scripts' environment.
    pub stack_name: String,
    /// `SOURCE_VERSION` in the scripts' environment (the pushed commit), as on Heroku.
    pub source_version: Option<String>,
    /// The program that acts as container init (see `BuilderConfig::init_program`).
    pub init_program: PathBuf,
    /// Where the build's scratch directory is made (it holds the compiled app until the output is dropped).
    pub scratch_parent: PathBuf,
    /// For the whole run: fetching, and every detect, compile and release.
    pub timeout: Duration,
    /// Bound over the stack's CA bundle during the build (see `BuilderConfig::build_ca_bundle`).
    pub ca_bundle: Option<PathBuf>,
    /// The host's git, for git buildpacks.
    pub git_program: PathBuf,
    /// Which URLs git may fetch (checked again by git itself through `GIT_ALLOW_PROTOCOL`).
    pub policy: SourcePolicy,
    /// Run the scripts as root of a user namespace with this mapping (see `ContainerSpec::user_namespace`).
    pub user_namespace: Option<container::IdMap>,
}

impl fmt::Debug for ClassicRun {
    /// Config var names only: their values stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClassicRun")
            .field(
                "buildpacks",
                &self
                    .buildpacks
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
            )
            .field("source_dir", &self.source_dir)
            .field("cache_dir", &self.cache_dir)
            .field("config_vars", &self.config_vars.keys().collect::<Vec<_>>())
            .field("stack_rootfs", &self.stack_rootfs)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A buildpack that detected the app and compiled it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RanBuildpack {
    pub source: BuildpackSource,
    /// What its `bin/detect` printed (its first line), such as `Ruby`.
    pub name: String,
    /// The commit fetched, for git buildpacks.
    pub commit: Option<String>,
}

/// The compiled app, kept in a scratch directory that is removed when this is dropped.
#[derive(Debug)]
pub struct ClassicOutput {
    scratch: tempfile::TempDir,
    /// `default_process_types` of the buildpacks' `bin/release`, merged (a Procfile should win over them).
    pub processes: BTreeMap<ProcessType, String>,
    /// `config_vars` of the buildpacks' `bin/release`, merged: defaults under the app's own config vars.
    pub config_vars: BTreeMap<String, String>,
    pub buildpacks: Vec<RanBuildpack>,
}

impl ClassicOutput {
    /// The compiled `/app`.
    pub fn app_dir(&self) -> PathBuf {
        self.scratch.path().join("app")
    }

    /// Writes the compiled app as the image's app layer (`app/...`, reproducible).
    pub fn write_app_layer(&self, store: &ImageStore) -> Result<LayerInfo, ImageStoreError> {
        store.write_layer(
            &self.app_dir(),
            &LayerOptions::new("app", LayerMode::Reproducible),
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClassicError {
    #[error("buildpack URL {url} cannot be used: {reason}")]
    BadBuildpackUrl { url: String, reason: String },
    #[error("{}: {reason}", if *line == 0 { BUILDPACKS_FILE.to_owned() } else { format!("{BUILDPACKS_FILE} line {line}") })]
    BuildpacksFile { line: usize, reason: String },
    #[error("config var name {name:?} cannot be given to buildpacks: use letters, digits and _")]
    BadConfigVarName { name: String },
    #[error("no buildpack given")]
    NoBuildpacks,
    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("fetching buildpack {buildpack} failed: {detail}")]
    Fetch { buildpack: String, detail: String },
    #[error("buildpack {buildpack} has no {script}")]
    MissingScript { buildpack: String, script: &'static str },
    #[error("app not compatible with buildpack {buildpacks}: bin/detect said no")]
    NotDetected { buildpacks: String },
    #[error("starting the build container")]
    Container(#[source] container::ContainerError),
    #[error(transparent)]
    Limit(#[from] build_sandbox::LimitExceeded),
    #[error("{script} of buildpack {buildpack} failed ({status}); its last lines:\n{tail}")]
    StepFailed {
        buildpack: String,
        script: &'static str,
        status: String,
        tail: String,
    },
    #[error("{step} did not finish within the build's time limit of {seconds} s")]
    Timeout { step: &'static str, seconds: u64 },
    #[error("bin/release of buildpack {buildpack} printed an unusable release: {reason}")]
    Release { buildpack: String, reason: String },
    #[error("a build task failed: {0}")]
    Task(String),
}

impl ClassicError {
    pub(crate) fn io<'a>(what: &'static str, path: &'a Path) -> impl Fn(std::io::Error) -> ClassicError + 'a {
        move |source| ClassicError::Io {
            what,
            path: path.to_owned(),
            source,
        }
    }
}

/// Config var names become file names in `ENV_DIR`.
fn valid_var_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= 255
        && bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Runs the buildpacks of `run` over a copy of its source, announcing each step on `log` and streaming the
/// scripts' output (see [`push_line`]).
/// Every script runs in `build`'s cgroup and network.
pub async fn run(
    run: ClassicRun,
    build: &BuildSandbox,
    log: &mpsc::Sender<String>,
) -> Result<ClassicOutput, ClassicError> {
    let deadline = Instant::now() + run.timeout;
    let say = |line: String| async move {
        let _ = log.send(line).await;
    };
    if run.buildpacks.is_empty() {
        return Err(ClassicError::NoBuildpacks);
    }
    if let Some(name) = run.config_vars.keys().find(|n| !valid_var_name(n)) {
        return Err(ClassicError::BadConfigVarName { name: name.clone() });
    }

    std::fs::create_dir_all(&run.scratch_parent)
        .map_err(ClassicError::io("creating", &run.scratch_parent))?;
    // Removed on every return path; on success it moves into the output.
    let scratch = tempfile::Builder::new()
        .prefix("classic-")
        .tempdir_in(&run.scratch_parent)
        .map_err(ClassicError::io("creating a directory in", &run.scratch_parent))?;
    let dir = |name: &str| scratch.path().join(name);
    let (app_dir, env_dir, buildpacks_dir) = (dir("app"), dir("env"), dir("buildpacks"));
    for d in [
        &env_dir,
        &buildpacks_dir,
        &dir("upper"),
        &dir("work"),
        &run.cache_dir,
    ] {
        std::fs::create_dir_all(d).map_err(ClassicError::io("creating", d))?;
    }
    {
        let (source, app_dir) = (run.source_dir.clone(), app_dir.clone());
        tokio::task::spawn_blocking(move || copy_tree(&source, &app_dir))
            .await
            .map_err(|e| ClassicError::Task(e.to_string()))??;
    }
    for (name, value) in &run.config_vars {
        let path = env_dir.join(name);
        std::fs::write(&path, value).map_err(ClassicError::io("writing", &path))?;
    }

    // Fetch every buildpack before running any, so a bad URL fails fast.
    let git = GitFetch {
        program: &run.git_program,
        policy: run.policy,
        deadline,
    };
    let mut commits = Vec::new();
    for (i, source) in run.buildpacks.iter().enumerate() {
        if let BuildpackSource::Git { .. } = source {
            say(format!("-----> Fetching buildpack {source}")).await;
        }
        let commit = fetch::fetch(source, &buildpacks_dir.join(i.to_string()), &git).await?;
        if let Some(commit) = &commit {
            say(format!("       at commit {}", &commit[..commit.len().min(12)])).await;
        }
        commits.push(commit);
    }

    let mut sandbox = Sandbox {
        run: &run,
        app_dir: &app_dir,
        env_dir: &env_dir,
        buildpacks_dir: &buildpacks_dir,
        scratch: scratch.path(),
        deadline,
        exports: Vec::new(),
        build,
    };
    let mut ran = Vec::new();
    let mut release = Release::default();
    for ((i, source), commit) in run.buildpacks.iter().enumerate().zip(commits) {
        let failed = |script: Script, outcome: &step::StepOutcome| ClassicError::StepFailed {
            buildpack: source.to_string(),
            script: script.path(),
            status: outcome.status.to_string(),
            tail: outcome.tail.join("\n"),
        };

        let detect = sandbox.run(i, Script::Detect, log).await?;
        if !detect.status.success() {
            if run.buildpacks.len() > 1 {
                say(format!("-----> Skipping buildpack {source}: bin/detect said no")).await;
            }
            continue;
        }
        let name = detect.stdout.lines().next().unwrap_or("").trim();
        let name = if name.is_empty() { "Custom" } else { name }.to_owned();
        say(format!("-----> {name} app detected")).await;

        let compile = sandbox.run(i, Script::Compile, log).await?;
        if !compile.status.success() {
            return Err(failed(Script::Compile, &compile));
        }
        let host_dir = buildpacks_dir.join(i.to_string());
        if std::fs::symlink_metadata(host_dir.join("export")).is_ok() {
            sandbox.exports.push(format!("{}/export", buildpack_dir(i)));
        }
        if host_dir.join("bin/release").is_file() {
            let out = sandbox.run(i, Script::Release, log).await?;
            if !out.status.success() {
                return Err(failed(Script::Release, &out));
            }
            let parsed = parse_release(&out.stdout).map_err(|reason| ClassicError::Release {
                buildpack: source.to_string(),
                reason,
            })?;
            release.merge(parsed);
        }
        ran.push(RanBuildpack {
            source: source.clone(),
            name,
            commit,
        });
    }
    if ran.is_empty() {
        let all: Vec<String> = run.buildpacks.iter().map(ToString::to_string).collect();
        return Err(ClassicError::NotDetected {
            buildpacks: all.join(", "),
        });
    }
    tracing::info!(
        buildpacks = ?ran.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(),
        "classic buildpacks compiled the app"
    );
    drop(sandbox);
    Ok(ClassicOutput {
        scratch,
        processes: release.default_process_types,
        config_vars: release.config_vars,
        buildpacks: ran,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_var_names() {
        for ok in ["PATH", "_X", "database_url", "A1"] {
            assert!(valid_var_name(ok), "{ok}");
        }
        for bad in ["", "1A", "A-B", "../x", "A B", "A=B", &"A".repeat(256)] {
            assert!(!valid_var_name(bad), "{bad}");
        }
    }

    #[test]
    fn debug_leaves_config_values_out() {
        let run = ClassicRun {
            buildpacks: vec![BuildpackSource::Git {
                url: "https://bob:s3cret@h/bp.git".into(),
                reference: None,
            }],
            source_dir: "/src".into(),
            cache_dir: "/cache".into(),
            config_vars: BTreeMap::from([("DATABASE_URL".to_owned(), "postgres://hunter2@db".to_owned())]),
            stack_rootfs: "/stack".into(),
            stack_name: "bookworm".into(),
            source_version: None,
            init_program: "/berth".into(),
            scratch_parent: "/tmp".into(),
            timeout: Duration::from_secs(1),
            ca_bundle: None,
            git_program: "git".into(),
            policy: SourcePolicy::default(),
            user_namespace: None,
        };
        let debug = format!("{run:?}");
        assert!(debug.contains("DATABASE_URL"), "{debug}");
        assert!(!debug.contains("hunter2") && !debug.contains("s3cret"), "{debug}");
    }

    #[test]
    fn errors_read_well() {
        let line = ClassicError::BuildpacksFile {
            line: 3,
            reason: "x".into(),
        };
        assert_eq!(line.to_string(), ".buildpacks line 3: x");
        let err = ClassicError::NotDetected {
            buildpacks: "https://h/a.git".into(),
        };
        assert_eq!(
            err.to_string(),
            "app not compatible with buildpack https://h/a.git: bin/detect said no"
        );
    }
}
