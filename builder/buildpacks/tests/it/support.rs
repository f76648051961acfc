//! Helpers shared by the builder's integration tests: building, checking images with skopeo and umoci,
//! running an image's web process in a container.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use buildpacks::{BuildError, BuildOutput, BuildRequest, Builder, BuilderConfig};
use container::{ContainerSpec, Network, Output};
use image_store::ImageStore;
use stack::StackConfig;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use vocabulary::AppName;

pub fn write(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// A copy of `tests/fixtures/NAME` in a temp dir (tests change apps' code between builds).
pub fn fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let to = tmp.path().join(name);
    run_ok(Command::new("cp").arg("-a").arg(&from).arg(&to));
    (tmp, to)
}

pub fn builder(root: &Path, cache_dir: &Path) -> Builder {
    Builder::new(builder_config(root, cache_dir))
}

/// The config of [`builder`]: builds' cgroups under this test binary's own parent ([`cgroup_parent`]).
pub fn builder_config(root: &Path, cache_dir: &Path) -> BuilderConfig {
    let store = ImageStore::open(&root.join("images")).unwrap();
    let stack = StackConfig::new(root.join("stacks"));
    let init = std::env::current_exe().unwrap();
    let mut config = BuilderConfig::new(store, stack, cache_dir.to_owned(), init);
    config.sandbox.cgroup_parent = cgroup_parent();
    config
}

/// The parent of this test binary's build cgroups; `main` removes it at the end.
pub fn cgroup_parent() -> String {
    format!("berth-it-builds-{}", std::process::id())
}

/// No build left its cgroup behind.
pub fn assert_no_build_cgroups() {
    let left = cgroups::children(&cgroup_parent());
    assert!(left.is_empty(), "build cgroups left behind: {left:?}");
}

/// A builder over the shared stack, with a fresh per-app cache for `app` (so a first build really installs).
pub fn shared_builder(app: &str) -> Builder {
    let shared = crate::shared_cache();
    let cache_dir = shared.join("builder-cache");
    let _ = std::fs::remove_dir_all(cache_dir.join("apps").join(app));
    builder(&shared, &cache_dir)
}

/// Runs a build, collecting its log lines (also printed, so a failing test shows the push output).
pub fn build(
    builder: &Builder,
    app: &str,
    source: &Path,
    tag: &str,
) -> (Result<BuildOutput, BuildError>, Vec<String>) {
    build_within(builder, app, source, tag, None)
}

/// [`build`] with the app's build time limit.
pub fn build_within(
    builder: &Builder,
    app: &str,
    source: &Path,
    tag: &str,
    timeout: Option<Duration>,
) -> (Result<BuildOutput, BuildError>, Vec<String>) {
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
        let req = BuildRequest {
            app: AppName::new(app).unwrap(),
            source_dir: source.to_owned(),
            tag: tag.to_owned(),
            timeout,
            // As the control plane asks: build steps in the account's user namespace.
            id_range: Some(vocabulary::IdRange::from_slot(9).unwrap()),
            config_vars: Default::default(),
        };
        let result = builder.build(req, tx).await;
        (result, collector.await.unwrap())
    });
    // Every build removes its sandbox, whether it succeeded or not.
    assert_no_build_cgroups();
    result
}

/// Builds and panics with the error's whole chain on failure.
pub fn build_ok(builder: &Builder, app: &str, source: &Path, tag: &str) -> (BuildOutput, Vec<String>) {
    let (result, log) = build(builder, app, source, tag);
    let output = result.unwrap_or_else(|e| panic!("build of {app} failed: {}", chain(&e)));
    (output, log)
}

pub fn assert_logged(log: &[String], line: &str) {
    assert!(log.iter().any(|l| l == line), "missing {line:?} in {log:#?}");
}

pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    s
}

pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Checks the image with skopeo (layout, digest, layer count, processes label) and umoci (layers applied,
/// diff_ids), and returns the unpacked bundle (`rootfs/` and `config.json`).
pub fn check_with_oci_tools(
    root: &Path,
    tag: &str,
    built: &BuildOutput,
    processes_label: &str,
) -> tempfile::TempDir {
    let inspect = run_ok(
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci:{}:{tag}", root.display())),
    );
    let inspect: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(inspect["Digest"], built.image.manifest_digest.as_str());
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), built.layers.len());
    assert_eq!(inspect["Labels"]["berth.processes"], processes_label);
    assert_eq!(inspect["Labels"]["berth.buildpack"], built.buildpack.as_str());

    let tmp = tempfile::tempdir().unwrap();
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:{tag}", root.display()))
            .arg(tmp.path().join("bundle")),
    );
    tmp
}

fn container_spec(
    builder: &Builder,
    built: &BuildOutput,
    tmp: &Path,
    extra_env: &[(&str, &str)],
) -> ContainerSpec {
    let store = &builder.config().store;
    let image = store.read_image(&built.image.manifest_digest).unwrap();
    let mut layers = Vec::new();
    for (i, layer) in image.layers.iter().enumerate() {
        let dir = tmp.join(format!("layer{i}"));
        std::fs::create_dir(&dir).unwrap();
        store.unpack_layer(&layer.digest, &layer.diff_id, &dir).unwrap();
        layers.push(dir);
    }
    for dir in ["upper", "work"] {
        std::fs::create_dir(tmp.join(dir)).unwrap();
    }
    let mut env: BTreeMap<String, String> = image.config.env.clone().into_iter().collect();
    env.extend(extra_env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    ContainerSpec {
        hostname: "web-1".into(),
        layers,
        upper_dir: tmp.join("upper"),
        work_dir: tmp.join("work"),
        rootfs: tmp.join("rootfs"),
        binds: vec![],
        network: Network::Host,
        cwd: image.config.working_dir.clone().into(),
        env,
        argv: image.config.cmd.clone(),
        cgroup_dirs: vec![],
        security: container::Security::default(),
        user_namespace: None,
    }
}

/// Runs the image's command to its end in a container over its unpacked layers, the way the node agent
/// will, and returns its standard output.
pub fn run_web(builder: &Builder, built: &BuildOutput) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let spec = container_spec(builder, built, tmp.path(), &[]);
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

/// An HTTP response as raw text: the head (lowercased) and the body. HTTP/1.0 requests, so that bodies
/// are never chunked.
pub struct Response {
    pub head: String,
    pub body: String,
}

/// Starts the image's web process with `PORT` set to a free loopback port, sends `GET path` for each of
/// `paths` once it accepts connections, and stops it.
pub fn serve_and_get(builder: &Builder, built: &BuildOutput, paths: &[&str]) -> Vec<Response> {
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let tmp = tempfile::tempdir().unwrap();
    let spec = container_spec(builder, built, tmp.path(), &[("PORT", &port)]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let init = std::env::current_exe().unwrap();
        let mut c = container::spawn(&init, &spec, Output::Piped).await.unwrap();
        // The app's output is printed, so a failing test shows why.
        for stream in [
            c.child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            c.child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ]
        .into_iter()
        .flatten()
        {
            tokio::spawn(async move {
                use tokio::io::AsyncBufReadExt;
                let mut lines = tokio::io::BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    println!("  web| {line}");
                }
            });
        }
        let port: u16 = port.parse().unwrap();
        let paths: Vec<String> = paths.iter().map(|p| (*p).to_owned()).collect();
        let responses = tokio::task::spawn_blocking(move || {
            // Not a timing assertion: a bound on waiting so a broken app fails the test instead of hanging.
            let give_up = Instant::now() + Duration::from_secs(120);
            while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
                assert!(
                    Instant::now() < give_up,
                    "the web process never listened on {port}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            paths.iter().map(|path| get(port, path)).collect::<Vec<_>>()
        })
        .await;
        let _ = c.signal(nix::sys::signal::Signal::SIGKILL);
        let _ = c.wait().await;
        responses.unwrap()
    })
}

fn get(port: u16, path: &str) -> Response {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Response {
        head: head.to_ascii_lowercase(),
        body: body.to_owned(),
    }
}
