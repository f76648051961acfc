use std::path::Path;
use std::process::Command;

use crate::support::{
    assert_logged, build, build_ok, builder, check_with_oci_tools, fixture, run_ok, run_web, shared_builder,
    write,
};
use crate::{Needs, Test};

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
        "bad_package_files_fail_before_the_stack",
        Needs::Nothing,
        bad_package_files_fail_before_the_stack,
    ),
    (
        "python_app_builds_runs_and_reuses_dependencies",
        Needs::RootAndTools,
        python_app_builds_runs_and_reuses_dependencies,
    ),
    (
        "django_collectstatic_runs_and_its_failure_fails_the_build",
        Needs::RootAndTools,
        django_collectstatic_runs_and_its_failure_fails_the_build,
    ),
    (
        "pyproject_app_installs_project_dependencies",
        Needs::RootAndTools,
        pyproject_app_installs_project_dependencies,
    ),
];

fn nothing_detected_is_a_clear_error() {
    let (tmp, src) = fixture("no-buildpack");
    let (result, _) = build(
        &builder(tmp.path(), &tmp.path().join("cache")),
        "nothing",
        &src,
        "t1",
    );
    let err = result.unwrap_err();
    assert_eq!(
        err.to_string(),
        "no buildpack detected: add a requirements.txt, package.json, index.html or Procfile"
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

fn bad_package_files_fail_before_the_stack() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("package.json"), "{\"name\": \"x\",\n");
    let (result, _) = build(
        &builder(tmp.path(), &tmp.path().join("cache")),
        "badpkg",
        &src,
        "t1",
    );
    let message = result.unwrap_err().to_string();
    assert!(message.starts_with("package.json is not valid: "), "{message}");

    let src = tmp.path().join("src2");
    write(
        &src.join("pyproject.toml"),
        "[project]\ndependencies = \"flask\"\n",
    );
    let (result, _) = build(
        &builder(tmp.path(), &tmp.path().join("cache")),
        "badpyproject",
        &src,
        "t1",
    );
    assert_eq!(
        result.unwrap_err().to_string(),
        "pyproject.toml is not valid: [project] dependencies must be an array of strings"
    );
    // Both fail before the stack is prepared.
    assert!(!tmp.path().join("stacks").exists());
}

fn python_app_builds_runs_and_reuses_dependencies() {
    let app = "it-python";
    let builder = shared_builder(app);
    let cache_dir = builder.config().cache_dir.clone();

    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("requirements.txt"), "six==1.16.0\n");
    write(
        &src.join("Procfile"),
        "# the web process\nweb: python3 app.py  # prints six's version\n",
    );
    write(&src.join("app.py"), "import six\nprint('six', six.__version__)\n");
    write(&src.join("runtime.txt"), "python-3.12.1\n");
    write(&src.join(".git/config"), "[core]\n");

    let (first, log) = build_ok(&builder, app, &src, "it-python-1");
    assert_eq!(first.buildpack, "python");
    assert_eq!(first.processes.len(), 1);
    assert_eq!(first.processes[&vocabulary::ProcessType::web()], "python3 app.py");
    assert_eq!(first.layers.len(), 3, "stack, dependencies, app");
    assert!(!first.dependencies_reused);
    for step in [
        "-----> Python app detected",
        "-----> Installing requirements with pip (requirements.txt)",
        "-----> Writing the app layer",
    ] {
        assert_logged(&log, step);
    }
    assert!(
        log.iter()
            .any(|l| l.contains("Successfully installed six-1.16.0")),
        "{log:#?}"
    );
    // The stack has 3.11: a warning, not a failure.
    assert!(
        log.iter().any(|l| l.starts_with(
            "       warning: runtime.txt asks for Python 3.12.1, but the stack has Python 3.11"
        )),
        "{log:#?}"
    );

    let store = &builder.config().store;
    let bundle = check_with_oci_tools(store.root(), "it-python-1", &first, r#"{"web":"python3 app.py"}"#);
    let rootfs = bundle.path().join("bundle/rootfs");
    assert!(rootfs.join("app/app.py").is_file());
    assert!(!rootfs.join("app/.git").exists(), ".git must not be in the image");
    assert!(rootfs.join("layers/python/site-packages/six.py").is_file());
    assert!(rootfs.join("usr/bin/python3").exists());
    // pip ran as root of the build's user namespace: its files are root's in the layer, as without one.
    let blob = store.blob_path(&first.layers[1].digest).unwrap();
    let listing = run_ok(Command::new("tar").arg("--numeric-owner").arg("-tvzf").arg(&blob));
    assert!(
        listing.contains("layers/python/site-packages/six.py"),
        "{listing}"
    );
    let owners: std::collections::BTreeSet<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(owners, ["0/0"].into(), "owners in the dependency layer");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bundle.path().join("bundle/config.json")).unwrap())
            .unwrap();
    assert_eq!(
        config["process"]["args"],
        serde_json::json!(["/bin/sh", "-c", "python3 app.py"])
    );
    assert_eq!(config["process"]["cwd"], "/app");
    assert_eq!(run_web(&builder, &first), "six 1.16.0\n");

    // Only app.py changes: the dependency layer is reused as is, the app layer is new.
    write(
        &src.join("app.py"),
        "import six\nprint('still six', six.__version__)\n",
    );
    let (second, log) = build_ok(&builder, app, &src, "it-python-2");
    assert!(second.dependencies_reused);
    assert_logged(
        &log,
        "-----> Reusing dependencies layer (requirements.txt unchanged)",
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
    let (third, _) = build_ok(&builder, app, &src, "it-python-3");
    assert!(!third.dependencies_reused);

    assert_no_scratch_left(&cache_dir);
}

fn pyproject_app_installs_project_dependencies() {
    let app = "it-pyproject";
    let builder = shared_builder(app);
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(
        &src.join("pyproject.toml"),
        "[project]\nname = \"sample\"\nversion = \"0.1.0\"\ndependencies = [\"six==1.16.0\"]\n",
    );
    write(&src.join("poetry.lock"), "# not read by pip\n");
    write(&src.join(".python-version"), "3.11\n");
    write(&src.join("Procfile"), "web: python3 main.py\n");
    write(
        &src.join("main.py"),
        "import six\nprint('pyproject six', six.__version__)\n",
    );
    let (built, log) = build_ok(&builder, app, &src, "it-pyproject-1");
    assert_logged(&log, "-----> Installing requirements with pip (pyproject.toml)");
    assert!(
        log.iter()
            .any(|l| l.starts_with("       warning: poetry.lock is not read")),
        "{log:#?}"
    );
    assert!(
        !log.iter().any(|l| l.contains("warning: .python-version")),
        "3.11 is the stack's: {log:#?}"
    );
    assert_eq!(built.layers.len(), 3);
    assert_eq!(run_web(&builder, &built), "pyproject six 1.16.0\n");
}

fn django_collectstatic_runs_and_its_failure_fails_the_build() {
    let app = "it-django";
    let builder = shared_builder(app);
    let (_tmp, src) = fixture("django");
    let (built, log) = build_ok(&builder, app, &src, "it-django-1");
    assert_logged(&log, "-----> Running python3 manage.py collectstatic --noinput");
    assert!(
        log.iter()
            .any(|l| l.contains("static file copied to '/app/staticfiles'")),
        "{log:#?}"
    );
    // The collected files are in the app layer.
    let store = &builder.config().store;
    let app_layer = &built.layers[2];
    let dest = tempfile::tempdir().unwrap();
    store
        .unpack_layer(&app_layer.digest, &app_layer.diff_id, dest.path())
        .unwrap();
    assert!(dest.path().join("app/staticfiles/site.css").is_file());
    assert!(dest.path().join("app/manage.py").is_file());
    assert_eq!(run_web(&builder, &built), "staticfiles\n");

    // Without STATIC_ROOT collectstatic fails, and so does the build, as on Heroku. The dependencies are
    // reused (unpacked for the step).
    let settings = std::fs::read_to_string(src.join("site_settings.py")).unwrap();
    write(
        &src.join("site_settings.py"),
        &settings.replace("STATIC_ROOT = \"staticfiles\"\n", ""),
    );
    let (result, log) = build(&builder, app, &src, "it-django-2");
    assert_logged(
        &log,
        "-----> Reusing dependencies layer (requirements.txt unchanged)",
    );
    let message = result.unwrap_err().to_string();
    assert!(
        message.starts_with("`python3 manage.py collectstatic --noinput` failed (exit status: 1)"),
        "{message}"
    );
    assert!(message.contains("STATIC_ROOT"), "{message}");
    assert_no_scratch_left(&builder.config().cache_dir);
}

pub fn assert_no_scratch_left(cache_dir: &Path) {
    let leftovers: Vec<_> = std::fs::read_dir(cache_dir.join("tmp")).unwrap().collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
