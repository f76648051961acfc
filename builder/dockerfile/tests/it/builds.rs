use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use build_sandbox::LimitExceeded;
use dockerfile::{DockerfileBuilder, DockerfileConfig, DockerfileError, DockerfileOutput, DockerfileRequest};
use image_store::{ImageConfig, ImageStore, LayerCompression, LayerMode};
use stack::StackConfig;
use tokio::sync::mpsc;
use vocabulary::AppName;

use crate::{shared_cache, Needs, Test};

pub const TESTS: &[Test] = &[
    ("errors_name_the_line", Needs::Nothing, errors_name_the_line),
    (
        "copy_only_build_from_a_store_image_is_cached",
        Needs::Nothing,
        copy_only_build_from_a_store_image_is_cached,
    ),
    (
        "zstd_step_layers_and_the_image_size_limit",
        Needs::Nothing,
        zstd_step_layers_and_the_image_size_limit,
    ),
    (
        "dockerfile_app_builds_with_whiteouts_and_reuses_every_step",
        Needs::RootAndTools,
        dockerfile_app_builds_with_whiteouts_and_reuses_every_step,
    ),
    (
        "failing_run_names_its_line",
        Needs::RootAndTools,
        failing_run_names_its_line,
    ),
    (
        "run_out_of_memory_says_so",
        Needs::RootAndTools,
        run_out_of_memory_says_so,
    ),
];

/// The parent of this test binary's build cgroups; `main` removes it at the end.
pub fn cgroup_parent() -> String {
    format!("berth-it-dockerfile-builds-{}", std::process::id())
}

pub(crate) fn write(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn builder(images_root: &Path, cache_dir: &Path) -> DockerfileBuilder {
    DockerfileBuilder::new(config(images_root, cache_dir))
}

pub(crate) fn config(images_root: &Path, cache_dir: &Path) -> DockerfileConfig {
    let store = ImageStore::open(&images_root.join("images")).unwrap();
    let stack = StackConfig::new(images_root.join("stacks"));
    let init = std::env::current_exe().unwrap();
    let mut config = DockerfileConfig::new(store, stack, cache_dir.to_owned(), init);
    config.sandbox.cgroup_parent = cgroup_parent();
    config
}

/// Runs a build, collecting its log lines (also printed, so a failing test shows the push output).
pub(crate) fn build(
    builder: &DockerfileBuilder,
    context: &Path,
    tag: &str,
) -> (Result<DockerfileOutput, DockerfileError>, Vec<String>) {
    build_as(builder, "demo", context, tag)
}

fn build_as(
    builder: &DockerfileBuilder,
    app: &str,
    context: &Path,
    tag: &str,
) -> (Result<DockerfileOutput, DockerfileError>, Vec<String>) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let result = runtime.block_on(async {
        let (tx, mut rx) = mpsc::channel(16);
        let collector = tokio::spawn(async move {
            let mut lines = Vec::new();
            while let Some(line) = rx.recv().await {
                println!("  | {line}");
                lines.push(line);
            }
            lines
        });
        let mut req = DockerfileRequest::new(AppName::new(app).unwrap(), context.to_owned(), tag.to_owned());
        // As the control plane asks: RUN steps in the account's user namespace.
        req.id_range = Some(vocabulary::IdRange::from_slot(9).unwrap());
        let result = builder.build(req, tx).await;
        (result, collector.await.unwrap())
    });
    // Every build removes its sandbox, whether it succeeded or not.
    let left = cgroups::children(&cgroup_parent());
    assert!(left.is_empty(), "build cgroups left behind: {left:?}");
    result
}

fn write_tar_gz(path: &Path, files: &[(&str, &str)]) {
    let gz = flate2::write::GzEncoder::new(std::fs::File::create(path).unwrap(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (name, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        tar.append_data(&mut header, name, content.as_bytes()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
}

/// A one-layer image tagged `base`, for builds that need no stack.
fn put_base_image(store: &ImageStore, tmp: &Path, config: &ImageConfig) {
    let base = tmp.join("base");
    write(&base.join("etc/os-release"), "NAME=test\n");
    let layer = store
        .write_layer_from_dir(&base, "", LayerMode::Reproducible)
        .unwrap();
    store.put_image("base", &[layer], config).unwrap();
}

/// A store whose handle writes zstd layers gives zstd step layers over the (gzip) base; a handle with a tiny
/// size limit fails the build with the limit's message.
fn zstd_step_layers_and_the_image_size_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path(), &tmp.path().join("cache"));
    let store = cfg.store.clone();
    put_base_image(&store, tmp.path(), &ImageConfig::default());
    let context = tmp.path().join("ctx");
    write(&context.join("Dockerfile"), "FROM base\nCOPY a.txt /srv/a.txt\n");
    write(&context.join("a.txt"), "zstd step\n");

    cfg.store = store.clone().with_layer_compression(LayerCompression::Zstd);
    let (built, log) = build(&DockerfileBuilder::new(cfg.clone()), &context, "zstd-app");
    let built = built.unwrap_or_else(|e| panic!("{e}: {log:?}"));
    let digest = store.resolve_tag("zstd-app").unwrap().unwrap();
    let image = store.read_image(&digest).unwrap();
    let compressions: Vec<_> = image.layers.iter().map(|l| l.compression).collect();
    assert_eq!(compressions, [LayerCompression::Gzip, LayerCompression::Zstd]);
    let step = built.layers.last().unwrap();
    let dest = tmp.path().join("unpacked");
    std::fs::create_dir_all(&dest).unwrap();
    store.unpack_layer(&step.digest, &step.diff_id, &dest).unwrap();
    assert_eq!(
        std::fs::read_to_string(dest.join("srv/a.txt")).unwrap(),
        "zstd step\n"
    );

    cfg.store = store.clone().with_max_image_size(10);
    let (result, log) = build(&DockerfileBuilder::new(cfg), &context, "too-big");
    let error = result.expect_err("an image over the limit must fail the build");
    assert!(
        matches!(
            error,
            DockerfileError::Limit(build_sandbox::LimitExceeded::ImageSize(_))
        ),
        "{error}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with("-----> Build failed: the image is ")
                && l.ends_with(
                    "more than the limit of 10 bytes; add large files to .slugignore or ask the operator"
                )),
        "{log:#?}"
    );
    assert_eq!(store.resolve_tag("too-big").unwrap(), None);
}

pub(crate) fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn errors_name_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let b = builder(tmp.path(), &tmp.path().join("cache"));
    put_base_image(&b.config().store, tmp.path(), &ImageConfig::default());
    write(&tmp.path().join("secret"), "host file\n");

    let cases: &[(&str, &str)] = &[
        (
            "FROM base\nBOGUS x\n",
            "Dockerfile line 2: unknown instruction BOGUS",
        ),
        (
            "FROM library/python:3\n",
            "Dockerfile line 1: FROM: image \"library/python:3\" names no registry host",
        ),
        (
            "\nFROM nothing-here\n",
            "Dockerfile line 2: FROM nothing-here: no such image",
        ),
        (
            "FROM base\nCOPY ../secret /x\n",
            "Dockerfile line 2: ../secret is outside the build context",
        ),
        ("FROM base\nEXPOSE http\n", "Dockerfile line 2: EXPOSE http"),
        (
            "FROM base\nADD https://example.com/x.tgz /x\n",
            "Dockerfile line 2: ADD of a URL",
        ),
    ];
    for (dockerfile, expected) in cases {
        let context = tmp.path().join("ctx");
        write(&context.join("Dockerfile"), dockerfile);
        let (result, _) = build(&b, &context, "out");
        let err = result.expect_err(dockerfile).to_string();
        assert!(err.starts_with(expected), "{dockerfile:?}: {err}");
    }
    let (result, _) = build(&b, &tmp.path().join("no-such-dir"), "out");
    assert!(
        matches!(result, Err(DockerfileError::ReadDockerfile { .. })),
        "{result:?}"
    );
}

fn copy_only_build_from_a_store_image_is_cached() {
    let tmp = tempfile::tempdir().unwrap();
    let b = builder(tmp.path(), &tmp.path().join("cache"));
    let store = b.config().store.clone();
    let mut base_config = ImageConfig::default();
    base_config.env.insert("FROM_BASE".into(), "yes".into());
    base_config.cmd = vec!["base-cmd".into()];
    put_base_image(&store, tmp.path(), &base_config);

    let context = tmp.path().join("ctx");
    write(
        &context.join("Dockerfile"),
        "ARG TAG=base\nFROM ${TAG}\nARG TAG\nARG DIR=/srv\nENV APP=$DIR/app\nWORKDIR $APP\nCOPY app.py requirements.txt ./\nCOPY [\"static\", \"static/\"]\nADD vendor.tar.gz /opt/vendor/\nENTRYPOINT [\"python3\"]\nHEALTHCHECK CMD true\nEXPOSE 8080 53/udp\nLABEL org.example.name=\"demo app\" from=$TAG\n",
    );
    write(&context.join("app.py"), "print('hi')\n");
    write(&context.join("requirements.txt"), "six\n");
    write(&context.join("static/index.html"), "<h1>hi</h1>\n");
    write(&context.join("static/skip.tmp"), "ignored\n");
    write(&context.join(".dockerignore"), "**/*.tmp\n");
    write_tar_gz(&context.join("vendor.tar.gz"), &[("lib/x.txt", "vendored\n")]);

    let (first, log) = build(&b, &context, "app");
    let first = first.unwrap();
    assert_eq!((first.layer_steps, first.cached_steps), (3, 0));
    assert_eq!(first.layers.len(), 4);
    assert!(
        log.iter()
            .any(|l| l == "-----> Step 6/12 : COPY app.py requirements.txt ./"),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l == "       Ignoring HEALTHCHECK: Berth does not use it"),
        "{log:?}"
    );
    assert_eq!(first.config.env["APP"], "/srv/app");
    assert_eq!(first.config.env["FROM_BASE"], "yes");
    assert_eq!(first.config.working_dir, "/srv/app");
    assert!(
        first.config.cmd.is_empty(),
        "ENTRYPOINT clears the base image's CMD"
    );
    assert_eq!(first.command(), ["python3"]);
    assert_eq!(first.shell_command().as_deref(), Some("exec python3"));
    assert_eq!(
        first.extras.exposed_ports.iter().collect::<Vec<_>>(),
        ["53/udp", "8080/tcp"]
    );
    assert_eq!(first.config.labels["org.example.name"], "demo app");
    assert_eq!(
        first.config.labels["from"], "base",
        "ARG TAG after FROM takes the global value"
    );
    let history = &first.extras.history;
    assert_eq!(
        history.len(),
        1 + 11,
        "one entry for the base layer and one per step"
    );
    assert_eq!(history.iter().filter(|h| !h.empty_layer).count(), 4);

    let dest = tmp.path().join("unpacked");
    std::fs::create_dir(&dest).unwrap();
    for layer in &first.layers {
        store.apply_layer(&layer.digest, &layer.diff_id, &dest).unwrap();
    }
    assert!(dest.join("srv/app/app.py").is_file());
    assert!(dest.join("srv/app/requirements.txt").is_file());
    assert!(dest.join("srv/app/static/index.html").is_file());
    assert!(!dest.join("srv/app/static/skip.tmp").exists(), ".dockerignore");
    assert_eq!(
        std::fs::read_to_string(dest.join("opt/vendor/lib/x.txt")).unwrap(),
        "vendored\n",
        "ADD unpacks a local archive"
    );

    let (second, log) = build(&b, &context, "app");
    let second = second.unwrap();
    assert_eq!((second.layer_steps, second.cached_steps), (3, 3));
    assert_eq!(second.manifest_digest, first.manifest_digest);
    assert_eq!(log.iter().filter(|l| l.trim() == "Using cache").count(), 3);

    // Another app's build of the same context reuses nothing.
    let (other, _) = build_as(&b, "other", &context, "other");
    assert_eq!(other.unwrap().cached_steps, 0, "step caches are per app");

    // A changed static file rebuilds only the second COPY.
    write(&context.join("static/index.html"), "<h1>changed</h1>\n");
    let (third, _) = build(&b, &context, "app");
    let third = third.unwrap();
    assert_eq!((third.layer_steps, third.cached_steps), (3, 1));
    assert_eq!(third.layers[1], first.layers[1]);
    assert_ne!(third.layers[2], first.layers[2]);
}

fn dockerfile_app_builds_with_whiteouts_and_reuses_every_step() {
    let tmp = tempfile::tempdir().unwrap();
    let b = builder(&shared_cache(), &tmp.path().join("cache"));
    let context = tmp.path().join("ctx");
    write(
        &context.join("Dockerfile"),
        r#"# A small app whose RUN steps create and delete files.
FROM berth/bookworm
ARG GREETING=hello
ENV APP_HOME=/srv/app
WORKDIR $APP_HOME
RUN mkdir -p /opt/data && echo keep > /opt/data/keep && echo gone > /opt/data/gone \
    && echo "$GREETING" > /opt/greeting
RUN rm /opt/data/gone /etc/debian_version \
    && rm -rf /usr/share/doc && mkdir /usr/share/doc && touch /usr/share/doc/only
COPY app.py ./
COPY --chown=nobody:nogroup app.py owned.py
RUN chown nobody:nogroup "$APP_HOME"
USER nobody
RUN id -un > whoami && echo "$HOME" > home && test ! -e /opt/data/gone
EXPOSE 8080
CMD ["python3", "app.py"]
"#,
    );
    write(&context.join("app.py"), "print('hello from a Dockerfile app')\n");
    let tag = "dockerfile-demo";

    let (first, log) = build(&b, &context, tag);
    let first = first.unwrap();
    assert_eq!((first.layer_steps, first.cached_steps), (6, 0));
    assert!(
        log.iter().any(|l| l == "-----> Step 1/13 : FROM berth/bookworm"),
        "{log:?}"
    );

    let store = b.config().store.clone();
    let layout = format!("oci:{}:{tag}", store.root().display());
    run(Command::new("skopeo").arg("inspect").arg(&layout));
    let config: serde_json::Value = serde_json::from_str(&run(Command::new("skopeo")
        .arg("inspect")
        .arg("--config")
        .arg(&layout)))
    .unwrap();
    assert_eq!(config["config"]["User"], "nobody");
    assert_eq!(config["config"]["WorkingDir"], "/srv/app");
    assert_eq!(config["config"]["Cmd"], serde_json::json!(["python3", "app.py"]));
    assert!(
        config["config"]["ExposedPorts"]["8080/tcp"].is_object(),
        "{config}"
    );
    let history = config["history"].as_array().unwrap();
    assert!(history.iter().all(|h| h["created"].is_string()), "{config}");
    assert_eq!(history.len(), 13, "{config}");

    let bundle = tmp.path().join("bundle");
    run(Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:{tag}", store.root().display()))
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("opt/data/keep")).unwrap(),
        "keep\n"
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("opt/greeting")).unwrap(),
        "hello\n"
    );
    assert!(
        !rootfs.join("opt/data/gone").exists(),
        "the deleted file survived umoci"
    );
    assert!(
        !rootfs.join("etc/debian_version").exists(),
        "a stack file deleted by RUN survived"
    );
    let docs: Vec<_> = std::fs::read_dir(rootfs.join("usr/share/doc"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        docs,
        ["only"],
        "the recreated directory must hide the stack's docs"
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("srv/app/whoami")).unwrap(),
        "nobody\n"
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("srv/app/home")).unwrap(),
        "/nonexistent\n"
    );
    assert!(rootfs.join("srv/app/app.py").is_file());
    // RUN steps ran in a user namespace; what they wrote has container uids in the layer.
    let uid = |path: &str| std::fs::symlink_metadata(rootfs.join(path)).unwrap().uid();
    assert_eq!(uid("opt/data/keep"), 0, "written by root in RUN");
    assert_eq!(uid("usr/share/doc/only"), 0);
    assert_eq!(uid("srv/app"), 65534, "chowned in RUN");
    assert_eq!(uid("srv/app/whoami"), 65534, "written by USER nobody in RUN");
    let owned = std::fs::metadata(rootfs.join("srv/app/owned.py")).unwrap();
    assert_eq!(
        (owned.uid(), owned.gid()),
        (65534, 65534),
        "COPY --chown=nobody:nogroup"
    );

    let (second, log) = build(&b, &context, tag);
    let second = second.unwrap();
    assert_eq!((second.layer_steps, second.cached_steps), (6, 6));
    assert_eq!(second.manifest_digest, first.manifest_digest);
    assert_eq!(log.iter().filter(|l| l.trim() == "Using cache").count(), 6);

    // A code change rebuilds from the COPY on; the RUN steps before it stay cached.
    write(&context.join("app.py"), "print('changed')\n");
    let (third, _) = build(&b, &context, tag);
    let third = third.unwrap();
    assert_eq!((third.layer_steps, third.cached_steps), (6, 2));
    assert_eq!(third.layers[..3], first.layers[..3]);
}

fn failing_run_names_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    let b = builder(&shared_cache(), &tmp.path().join("cache"));
    let context = tmp.path().join("ctx");
    write(
        &context.join("Dockerfile"),
        "FROM berth/bookworm\n\nRUN echo about to fail && exit 3\n",
    );
    let (result, _) = build(&b, &context, "failing");
    match result {
        Err(DockerfileError::RunFailed { line, status, tail }) => {
            assert_eq!(line, 3);
            assert!(status.contains('3'), "{status}");
            assert!(tail.contains("about to fail"), "{tail}");
        }
        other => panic!("{other:?}"),
    }
}

fn run_out_of_memory_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = config(&shared_cache(), &tmp.path().join("cache"));
    config.sandbox.limits.memory_bytes = 128 << 20;
    let b = DockerfileBuilder::new(config);
    let context = tmp.path().join("ctx");
    // `tail` keeps an endless line in memory.
    write(
        &context.join("Dockerfile"),
        "FROM berth/bookworm\nRUN tail /dev/zero\n",
    );
    let (result, log) = build(&b, &context, "oom");
    match result {
        Err(DockerfileError::Limit(LimitExceeded::Memory { step, limit })) => {
            assert_eq!((step.as_str(), limit.as_str()), ("tail /dev/zero", "128 MiB"));
        }
        other => panic!("{other:?}"),
    }
    let shown = "-----> Build failed: out of memory (limit 128 MiB) while running `tail /dev/zero`; ";
    assert!(log.iter().any(|l| l.starts_with(shown)), "{log:#?}");
}
