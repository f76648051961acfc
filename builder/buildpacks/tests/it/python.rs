use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use buildpacks::{BuildError, BuildOutput, BuildRequest, Builder, BuilderConfig};
use container::{ContainerSpec, Network, Output};
use image_store::ImageStore;
use stack::StackConfig;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use vocabulary::AppName;

use crate::{shared_cache, Needs, Test};

pub const TESTS: &[Test] = &[
    (
        "nothing_detected_is_a_clear_error",
        Needs::Nothing,
        nothing_detected_is_a_clear_error,
    ),
    (
        "bad_procfile_names_the_line",
        Needs::Nothing,
        bad_procfile_names_the_line,
    ),
    (
        "python_app_builds_runs_and_reuses_dependencies",
        Needs::RootAndTools,
        python_app_builds_runs_and_reuses_dependencies,
    ),
];

fn write(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn builder(root: &Path, cache_dir: &Path) -> Builder {
    let store = ImageStore::open(&root.join("images")).unwrap();
    let stack = StackConfig::new(root.join("stacks"));
    let init = std::env::current_exe().unwrap();
    Builder::new(BuilderConfig::new(store, stack, cache_dir.to_owned(), init))
}

/// Runs a build, collecting its log lines (also printed, so a failing test shows the push output).
fn build(
    builder: &Builder,
    app: &str,
    source: &Path,
    tag: &str,
) -> (Result<BuildOutput, BuildError>, Vec<String>) {
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
        let req = BuildRequest {
            app: AppName::new(app).unwrap(),
            source_dir: source.to_owned(),
            tag: tag.to_owned(),
        };
        let result = builder.build(req, tx).await;
        (result, collector.await.unwrap())
    })
}

fn nothing_detected_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("index.js"), "console.log('hi')\n");
    write(&src.join("Procfile"), "web: node index.js\n");
    let (result, _) = build(
        &builder(tmp.path(), &tmp.path().join("cache")),
        "nothing",
        &src,
        "t1",
    );
    let err = result.unwrap_err();
    assert_eq!(
        err.to_string(),
        "no buildpack detected: add a requirements.txt, or a Procfile whose command runs python"
    );
    // Detection fails before anything is built.
    assert!(!tmp.path().join("stacks").exists());
}

fn bad_procfile_names_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("requirements.txt"), "six\n");
    write(
        &src.join("Procfile"),
        "# processes\nweb: python3 app.py\nweb: python3 other.py\n",
    );
    let (result, _) = build(
        &builder(tmp.path(), &tmp.path().join("cache")),
        "badproc",
        &src,
        "t1",
    );
    assert_eq!(
        result.unwrap_err().to_string(),
        "Procfile line 3: process type web is already defined on line 2"
    );
}

fn python_app_builds_runs_and_reuses_dependencies() {
    let shared = shared_cache();
    let cache_dir = shared.join("builder-cache");
    let app = "it-python";
    // A fresh per-app cache each run, so the first build below really installs; the stack stays.
    let _ = std::fs::remove_dir_all(cache_dir.join("apps").join(app));
    let builder = builder(&shared, &cache_dir);

    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("requirements.txt"), "six==1.16.0\n");
    write(
        &src.join("Procfile"),
        "# the web process\nweb: python3 app.py  # prints six's version\n",
    );
    write(&src.join("app.py"), "import six\nprint('six', six.__version__)\n");
    write(&src.join(".git/config"), "[core]\n");

    let (first, log) = build(&builder, app, &src, "it-python-1");
    let first = first.unwrap_or_else(|e| panic!("build failed: {}", chain(&e)));
    assert_eq!(first.buildpack, "python");
    assert_eq!(first.processes.len(), 1);
    assert_eq!(first.processes[&vocabulary::ProcessType::web()], "python3 app.py");
    assert_eq!(first.layers.len(), 3, "stack, dependencies, app");
    assert!(!first.dependencies_reused);
    for step in [
        "-----> Python app detected",
        "-----> Installing requirements with pip",
        "-----> Writing the app layer",
    ] {
        assert!(log.iter().any(|l| l == step), "missing {step:?} in {log:#?}");
    }
    assert!(
        log.iter()
            .any(|l| l.contains("Successfully installed six-1.16.0")),
        "{log:#?}"
    );

    let store = &builder.config().store;
    check_with_oci_tools(store.root(), "it-python-1", &first);
    assert_eq!(run_web(&builder, &first), "six 1.16.0\n");

    // Only app.py changes: the dependency layer is reused as is, the app layer is new.
    write(
        &src.join("app.py"),
        "import six\nprint('still six', six.__version__)\n",
    );
    let (second, log) = build(&builder, app, &src, "it-python-2");
    let second = second.unwrap_or_else(|e| panic!("rebuild failed: {}", chain(&e)));
    assert!(second.dependencies_reused);
    assert!(
        log.iter()
            .any(|l| l == "-----> Reusing dependencies layer (requirements.txt unchanged)"),
        "{log:#?}"
    );
    assert!(
        !log.iter().any(|l| l.contains("Installing requirements")),
        "{log:#?}"
    );
    assert_eq!(second.layers[0], first.layers[0], "same stack layer");
    assert_eq!(second.layers[1], first.layers[1], "same dependency layer");
    assert_ne!(second.layers[2].digest, first.layers[2].digest, "new app layer");
    assert_ne!(second.image, first.image);
    assert_eq!(run_web(&builder, &second), "still six 1.16.0\n");

    // A changed requirements.txt installs again.
    write(&src.join("requirements.txt"), "six==1.16.0\n# pinned\n");
    let (third, _) = build(&builder, app, &src, "it-python-3");
    assert!(!third.unwrap().dependencies_reused);

    // No scratch directories are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(cache_dir.join("tmp")).unwrap().collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    s
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn check_with_oci_tools(root: &Path, tag: &str, built: &BuildOutput) {
    let inspect = run_ok(
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci:{}:{tag}", root.display())),
    );
    let inspect: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(inspect["Digest"], built.image.manifest_digest.as_str());
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 3);
    assert_eq!(
        inspect["Labels"]["berth.processes"],
        r#"{"web":"python3 app.py"}"#
    );

    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("bundle");
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:{tag}", root.display()))
            .arg(&bundle),
    );
    let rootfs = bundle.join("rootfs");
    assert!(rootfs.join("app/app.py").is_file());
    assert!(!rootfs.join("app/.git").exists(), ".git must not be in the image");
    assert!(rootfs.join("layers/python/site-packages/six.py").is_file());
    assert!(rootfs.join("usr/bin/python3").exists());
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        config["process"]["args"],
        serde_json::json!(["/bin/sh", "-c", "python3 app.py"])
    );
    assert_eq!(config["process"]["cwd"], "/app");
}

/// Runs the image's command in a container over its unpacked layers, the way the node agent will, and
/// returns its standard output.
fn run_web(builder: &Builder, built: &BuildOutput) -> String {
    let store = &builder.config().store;
    let image = store.read_image(&built.image.manifest_digest).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut layers = Vec::new();
    for (i, layer) in image.layers.iter().enumerate() {
        let dir = tmp.path().join(format!("layer{i}"));
        std::fs::create_dir(&dir).unwrap();
        store.unpack_layer(&layer.digest, &layer.diff_id, &dir).unwrap();
        layers.push(dir);
    }
    for dir in ["upper", "work"] {
        std::fs::create_dir(tmp.path().join(dir)).unwrap();
    }
    let spec = ContainerSpec {
        hostname: "web-1".into(),
        layers,
        upper_dir: tmp.path().join("upper"),
        work_dir: tmp.path().join("work"),
        rootfs: tmp.path().join("rootfs"),
        binds: vec![],
        network: Network::Host,
        cwd: image.config.working_dir.clone().into(),
        env: image.config.env.clone().into_iter().collect::<BTreeMap<_, _>>(),
        argv: image.config.cmd.clone(),
        cgroup_dirs: vec![],
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
