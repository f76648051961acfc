//! Classic buildpacks run with the classic contract inside the stack, with the sample buildpacks in
//! `tests/fixtures/classic`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use build_sandbox::{BuildSandbox, SandboxConfig};
use buildpacks::cache::Cache;
use buildpacks::classic::{
    self, requested_buildpacks, with_profile_d, BuildpackSource, ClassicError, ClassicOutput, ClassicRun,
    SourcePolicy,
};
use container::{BindMount, ContainerSpec, Network, Output};
use image_store::ImageStore;
use stack::StackConfig;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use vocabulary::ProcessType;

use crate::support::cgroup_parent;
use crate::{shared_cache, Needs, Test};

fn sandbox_config() -> SandboxConfig {
    SandboxConfig {
        cgroup_parent: cgroup_parent(),
        ..SandboxConfig::default()
    }
}

pub const TESTS: &[Test] = &[
    (
        "classic_buildpack_from_a_directory",
        Needs::RootAndTools,
        classic_buildpack_from_a_directory,
    ),
    (
        "classic_buildpack_from_a_git_url",
        Needs::RootAndTools,
        classic_buildpack_from_a_git_url,
    ),
    (
        "classic_buildpacks_file_runs_each_in_order",
        Needs::RootAndTools,
        classic_buildpacks_file_runs_each_in_order,
    ),
    (
        "classic_failing_compile_shows_its_output",
        Needs::RootAndTools,
        classic_failing_compile_shows_its_output,
    ),
    (
        "classic_compile_past_the_time_limit_is_stopped",
        Needs::RootAndTools,
        classic_compile_past_the_time_limit_is_stopped,
    ),
    (
        "classic_detect_that_says_no",
        Needs::RootAndTools,
        classic_detect_that_says_no,
    ),
];

const LOCAL: SourcePolicy = SourcePolicy {
    allow_file_urls: true,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/classic")
        .join(name)
}

fn write(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// The shared stack (built once, kept across runs) unpacked for build containers.
fn stack_rootfs() -> PathBuf {
    let shared = shared_cache();
    let store = ImageStore::open(&shared.join("images")).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let stack = runtime
        .block_on(stack::ensure_stack(
            &StackConfig::new(shared.join("stacks")),
            &store,
            &|line: &str| println!("  | {line}"),
        ))
        .unwrap();
    Cache {
        root: shared.join("builder-cache"),
    }
    .stack_rootfs(&store, &stack.layer)
    .unwrap()
}

/// A test's directories: the app source, the per-app cache and the scratch parent.
struct Dirs {
    tmp: tempfile::TempDir,
}

impl Dirs {
    fn new() -> Self {
        Self {
            tmp: tempfile::tempdir().unwrap(),
        }
    }
    fn src(&self) -> PathBuf {
        self.tmp.path().join("src")
    }
    fn cache(&self) -> PathBuf {
        self.tmp.path().join("cache")
    }
    fn scratch(&self) -> PathBuf {
        self.tmp.path().join("scratch")
    }
    fn run(&self, buildpacks: Vec<BuildpackSource>, config_vars: &[(&str, &str)]) -> ClassicRun {
        ClassicRun {
            buildpacks,
            source_dir: self.src(),
            cache_dir: self.cache(),
            config_vars: config_vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            stack_rootfs: stack_rootfs(),
            stack_name: "bookworm".to_owned(),
            source_version: None,
            init_program: std::env::current_exe().unwrap(),
            scratch_parent: self.scratch(),
            timeout: Duration::from_secs(300),
            ca_bundle: None,
            git_program: "git".into(),
            policy: LOCAL,
            user_namespace: Some(vocabulary::IdRange::from_slot(9).unwrap().into()),
        }
    }
    /// Nothing is left in the scratch parent once outputs are dropped.
    fn assert_scratch_empty(&self) {
        let left: Vec<_> = std::fs::read_dir(self.scratch()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

/// Runs the buildpacks, collecting the log lines (also printed, so a failing test shows the push output).
fn run(run: ClassicRun) -> (Result<ClassicOutput, ClassicError>, Vec<String>) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (tx, mut rx) = mpsc::channel(16);
        let collector = tokio::spawn(async move {
            let mut lines = Vec::new();
            while let Some(line) = rx.recv().await {
                println!("  | {line}");
                lines.push(line);
            }
            lines
        });
        let sandbox = BuildSandbox::create(&sandbox_config(), "classic", Duration::from_secs(600))
            .await
            .unwrap();
        let result = classic::run(run, &sandbox, &tx).await;
        sandbox.remove().await.unwrap();
        drop(tx);
        (result, collector.await.unwrap())
    })
}

fn has(log: &[String], line: &str) -> bool {
    log.iter().any(|l| l == line)
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=Berth Test",
            "-c",
            "user.email=test@berth.invalid",
        ])
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A bare repository holding `fixture` as its one commit on `main`, tagged `v1`, as a `file://` URL.
fn bare_repo(parent: &Path, fixture_name: &str) -> String {
    bare_repo_of(parent, &fixture(fixture_name), fixture_name)
}

/// A bare repository holding `dir` as its one commit on `main`, tagged `v1`, as a `file://` URL.
pub fn bare_repo_of(parent: &Path, dir: &Path, fixture_name: &str) -> String {
    let work = parent.join(format!("{fixture_name}-work"));
    classic::copy_tree(dir, &work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "sample buildpack"]);
    git(&work, &["tag", "v1"]);
    let bare = parent.join(format!("{fixture_name}.git"));
    git(
        parent,
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    format!("file://{}", bare.display())
}

/// Runs `command` the way an instance of the built app would: `/bin/sh -c` of the launcher, over the stack
/// with the compiled app at `/app`. Returns its standard output.
fn run_process(stack_rootfs: &Path, app_dir: &Path, command: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    for dir in ["upper", "work"] {
        std::fs::create_dir(tmp.path().join(dir)).unwrap();
    }
    let spec = ContainerSpec {
        hostname: "web-1".into(),
        layers: vec![stack_rootfs.to_owned()],
        upper_dir: tmp.path().join("upper"),
        work_dir: tmp.path().join("work"),
        rootfs: tmp.path().join("rootfs"),
        binds: vec![BindMount {
            source: app_dir.to_owned(),
            target: "/app".into(),
            read_only: true,
        }],
        network: Network::Host,
        cwd: "/app".into(),
        env: BTreeMap::from([
            ("PATH".to_owned(), "/usr/bin:/bin".to_owned()),
            ("HOME".to_owned(), "/app".to_owned()),
        ]),
        argv: vec!["/bin/sh".into(), "-c".into(), with_profile_d(command)],
        cgroup_dirs: vec![],
        security: container::Security::default(),
        user_namespace: None,
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let init = std::env::current_exe().unwrap();
        let mut c = container::spawn(&init, &spec, Output::Piped).await.unwrap();
        let mut stdout = c.child.stdout.take().unwrap();
        let mut stderr = c.child.stderr.take().unwrap();
        let (mut out, mut err) = (String::new(), String::new());
        let _ = tokio::join!(stdout.read_to_string(&mut out), stderr.read_to_string(&mut err));
        let status = c.wait().await.unwrap();
        assert!(status.success(), "{status}: {err}");
        out
    })
}

fn marker_app(dirs: &Dirs) {
    write(&dirs.src().join("berth-marker"), "");
    write(&dirs.src().join("index.txt"), "the app\n");
    write(&dirs.src().join(".git/HEAD"), "ref: refs/heads/main\n");
}

fn classic_buildpack_from_a_directory() {
    let dirs = Dirs::new();
    marker_app(&dirs);
    let buildpacks = vec![BuildpackSource::Dir(fixture("marker-buildpack"))];
    let mut first = dirs.run(buildpacks.clone(), &[("GREETING", "bonjour")]);
    first.source_version = Some("0123abcd".to_owned());
    let (out, log) = run(first);
    let out = out.unwrap_or_else(|e| panic!("classic build failed: {e}"));

    // The push output: step lines as they are, other lines indented once.
    for line in [
        "-----> Marker app detected",
        "-----> Compiling the marker app",
        "       compile number 1",
        "       source version 0123abcd",
        "       wrote compiled.txt",
    ] {
        assert!(has(&log, line), "missing {line:?} in {log:#?}");
    }
    assert_eq!(out.buildpacks.len(), 1);
    assert_eq!(out.buildpacks[0].name, "Marker");
    assert_eq!(out.buildpacks[0].commit, None);
    assert_eq!(
        out.processes,
        BTreeMap::from([(
            ProcessType::web(),
            "cat compiled.txt && echo \"home=$MARKER_HOME\"".to_owned()
        )])
    );
    assert_eq!(
        out.config_vars,
        BTreeMap::from([("MARKER".to_owned(), "on".to_owned())])
    );

    // The compiled app: the config var came through ENV_DIR, STACK was set, the source was not touched and
    // .git was left out.
    let app = out.app_dir();
    assert_eq!(
        std::fs::read_to_string(app.join("compiled.txt")).unwrap(),
        "bonjour from the marker buildpack (stack bookworm)\n"
    );
    assert!(app.join("index.txt").is_file());
    assert!(!app.join(".git").exists());
    assert!(!dirs.src().join("compiled.txt").exists());

    // A process of the app starts after .profile.d is sourced.
    let web = &out.processes[&ProcessType::web()];
    assert_eq!(
        run_process(&stack_rootfs(), &app, web),
        "bonjour from the marker buildpack (stack bookworm)\nhome=/app/marker\n"
    );

    // The compiled app makes the app layer.
    let store = ImageStore::open(&dirs.tmp.path().join("images")).unwrap();
    let layer = out.write_app_layer(&store).unwrap();
    let unpacked = dirs.tmp.path().join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    store
        .unpack_layer(&layer.digest, &layer.diff_id, &unpacked)
        .unwrap();
    assert!(unpacked.join("app/compiled.txt").is_file());
    assert!(unpacked.join("app/.profile.d/marker.sh").is_file());
    drop(out);
    dirs.assert_scratch_empty();

    // CACHE_DIR survives between builds.
    let (again, log) = run(dirs.run(buildpacks, &[]));
    let again = again.unwrap_or_else(|e| panic!("second classic build failed: {e}"));
    assert!(has(&log, "       compile number 2"), "{log:#?}");
    assert_eq!(
        std::fs::read_to_string(again.app_dir().join("compiled.txt")).unwrap(),
        "hello from the marker buildpack (stack bookworm)\n"
    );
}

fn classic_buildpack_from_a_git_url() {
    let dirs = Dirs::new();
    marker_app(&dirs);
    let url = bare_repo(dirs.tmp.path(), "marker-buildpack");
    let vars = BTreeMap::from([("BUILDPACK_URL".to_owned(), format!("{url}#v1"))]);
    let buildpacks = requested_buildpacks(&dirs.src(), &vars, LOCAL).unwrap().unwrap();
    assert_eq!(
        buildpacks,
        [BuildpackSource::Git {
            url: url.clone(),
            reference: Some("v1".into())
        }]
    );
    let (out, log) = run(dirs.run(buildpacks, &[("BUILDPACK_URL", &format!("{url}#v1"))]));
    let out = out.unwrap_or_else(|e| panic!("classic build failed: {e}"));
    assert!(
        has(&log, &format!("-----> Fetching buildpack {url}#v1")),
        "{log:#?}"
    );
    let work = dirs.tmp.path().join("marker-buildpack-work");
    let commit = git(&work, &["rev-parse", "HEAD"]);
    assert_eq!(out.buildpacks[0].commit.as_deref(), Some(commit.as_str()));
    assert!(
        has(&log, &format!("       at commit {}", &commit[..12])),
        "{log:#?}"
    );
    assert!(out.app_dir().join("compiled.txt").is_file());
    drop(out);

    // Without a ref, the remote's HEAD; a commit works as a ref too.
    let plain = vec![classic::parse_buildpack_url(&url, LOCAL).unwrap()];
    run(dirs.run(plain, &[])).0.unwrap();
    let by_commit = vec![classic::parse_buildpack_url(&format!("{url}#{commit}"), LOCAL).unwrap()];
    run(dirs.run(by_commit, &[])).0.unwrap();

    // A ref that does not exist is a clear error, before anything runs.
    let missing = vec![classic::parse_buildpack_url(&format!("{url}#no-such-branch"), LOCAL).unwrap()];
    let (err, log) = run(dirs.run(missing, &[]));
    let err = err.unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("fetching buildpack {url}#no-such-branch failed: ")),
        "{err}"
    );
    assert!(err.contains("no-such-branch"), "{err}");
    assert!(!log.iter().any(|l| l.contains("detected")), "{log:#?}");
    dirs.assert_scratch_empty();
}

fn classic_buildpacks_file_runs_each_in_order() {
    let dirs = Dirs::new();
    marker_app(&dirs);
    let marker = bare_repo(dirs.tmp.path(), "marker-buildpack");
    let follower = bare_repo(dirs.tmp.path(), "follower-buildpack");
    write(
        &dirs.src().join(".buildpacks"),
        &format!("# the marker first: the follower needs its export\n{marker}\n{follower}#main\n"),
    );
    let buildpacks = requested_buildpacks(&dirs.src(), &BTreeMap::new(), LOCAL)
        .unwrap()
        .unwrap();
    assert_eq!(buildpacks.len(), 2);
    let (out, log) = run(dirs.run(buildpacks.clone(), &[]));
    let out = out.unwrap_or_else(|e| panic!("classic build failed: {e}"));
    let names: Vec<&str> = out.buildpacks.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["Marker", "Follower"]);
    let at = |line: &str| {
        log.iter()
            .position(|l| l == line)
            .unwrap_or_else(|| panic!("{line:?} in {log:#?}"))
    };
    assert!(at("-----> Compiling the marker app") < at("-----> Following the marker"));
    // The follower read MARKER_COMPILED from the marker's export file.
    assert_eq!(
        std::fs::read_to_string(out.app_dir().join("followed.txt")).unwrap(),
        "followed hello from the marker buildpack (stack bookworm)\n"
    );
    // Process types of both releases.
    let types: Vec<&str> = out.processes.keys().map(ProcessType::as_str).collect();
    assert_eq!(types, ["web", "worker"]);
    drop(out);

    // In the other order the follower has no export to read, and says so.
    let reversed: Vec<BuildpackSource> = buildpacks.into_iter().rev().collect();
    let (err, _) = run(dirs.run(reversed, &[]));
    let err = err.unwrap_err().to_string();
    assert!(err.contains("MARKER_COMPILED is not set"), "{err}");
    dirs.assert_scratch_empty();
}

fn classic_failing_compile_shows_its_output() {
    let dirs = Dirs::new();
    marker_app(&dirs);
    write(&dirs.src().join("fail-compile"), "");
    let source = BuildpackSource::Dir(fixture("marker-buildpack"));
    let (err, log) = run(dirs.run(vec![source.clone()], &[]));
    let err = err.unwrap_err();
    assert!(matches!(err, ClassicError::StepFailed { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "bin/compile of buildpack {source} failed (exit status: 3); its last lines:\n"
        )),
        "{message}"
    );
    assert!(
        message.contains("compile number 1\nsource version unknown\nthe marker compile fails on purpose"),
        "{message}"
    );
    // The user saw the output as it came.
    assert!(
        has(&log, "       the marker compile fails on purpose"),
        "{log:#?}"
    );
    dirs.assert_scratch_empty();
}

fn classic_compile_past_the_time_limit_is_stopped() {
    let dirs = Dirs::new();
    marker_app(&dirs);
    write(&dirs.src().join("slow-compile"), "");
    let mut slow = dirs.run(vec![BuildpackSource::Dir(fixture("marker-buildpack"))], &[]);
    slow.timeout = Duration::from_secs(8);
    let (err, log) = run(slow);
    assert_eq!(
        err.unwrap_err().to_string(),
        "bin/compile did not finish within the build's time limit of 8 s"
    );
    assert!(has(&log, "       compiling slowly"), "{log:#?}");
    // The container was killed with everything in it: no `sleep 600` is left (the processes inside die
    // right after the container's outer init, so allow them a moment).
    let sleepers = || -> Vec<PathBuf> {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| Some(e.ok()?.path().join("cmdline")))
            .filter(|p| std::fs::read(p).is_ok_and(|c| c == b"sleep\x00600\x00"))
            .collect()
    };
    for _ in 0..100 {
        if sleepers().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let sleepers = sleepers();
    assert!(sleepers.is_empty(), "{sleepers:?}");
    dirs.assert_scratch_empty();
}

fn classic_detect_that_says_no() {
    let dirs = Dirs::new();
    write(&dirs.src().join("index.txt"), "no marker here\n");
    let marker = BuildpackSource::Dir(fixture("marker-buildpack"));
    let (err, log) = run(dirs.run(vec![marker.clone()], &[]));
    assert_eq!(
        err.unwrap_err().to_string(),
        format!("app not compatible with buildpack {marker}: bin/detect said no")
    );
    assert!(!log.iter().any(|l| l.contains("Compiling")), "{log:#?}");

    // With several, one that says no is skipped and the next one runs (heroku-buildpack-multi's way): here
    // the follower, whose compile then misses the marker's export.
    let follower = BuildpackSource::Dir(fixture("follower-buildpack"));
    let (err, log) = run(dirs.run(vec![marker.clone(), follower], &[]));
    let skipped = format!("-----> Skipping buildpack {marker}: bin/detect said no");
    assert!(has(&log, &skipped), "{log:#?}");
    assert!(has(&log, "-----> Follower app detected"), "{log:#?}");
    let err = err.unwrap_err().to_string();
    assert!(err.contains("MARKER_COMPILED is not set"), "{err}");

    // When none says yes, the error names them all.
    let (err, _) = run(dirs.run(vec![marker.clone(), marker.clone()], &[]));
    assert_eq!(
        err.unwrap_err().to_string(),
        format!("app not compatible with buildpack {marker}, {marker}: bin/detect said no")
    );
    dirs.assert_scratch_empty();
}
