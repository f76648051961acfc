//! `FROM REGISTRY/REPO:TAG`: a busybox image pushed with the real skopeo to Debian's real `docker-registry` on
//! loopback, built on (a `RUN`, `USER`, exec-form `CMD`), and rebuilt from the copy pulled before.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dockerfile::DockerfileError;
use image_store::{ImageConfig, ImageStore, LayerMode};

use crate::builds::{build, config, run, write};
use crate::{Needs, Test};

pub const TESTS: &[Test] = &[(
    "from_a_loopback_registry_image",
    Needs::RootAndTools,
    from_a_loopback_registry_image,
)];

/// Debian's `docker-registry` on a free loopback port, with its storage in `dir`; killed by PID on drop.
struct Registry {
    child: Child,
    addr: std::net::SocketAddr,
}

impl Registry {
    fn start(dir: &Path) -> Self {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let config = dir.join("registry.yml");
        let storage = dir.join("registry-data");
        write(
            &config,
            &format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                storage.display()
            ),
        );
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawning docker-registry");
        let mut registry = Registry { child, addr };
        // Waiting for it to listen, not a timing assertion: the limit only turns a hang into a message.
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(addr).is_err() {
            if let Some(status) = registry.child.try_wait().unwrap() {
                panic!("docker-registry exited ({status})");
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry never listened on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn from_a_loopback_registry_image() {
    let has_registry = Command::new("docker-registry").arg("--version").output().is_ok();
    if !has_registry {
        assert!(
            std::env::var_os("CI").is_none(),
            "from_a_loopback_registry_image needs docker-registry (CI is set, so not skipping)"
        );
        println!("skipping from_a_loopback_registry_image: needs docker-registry");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // A busybox image in a layout of its own, pushed to the registry.
    let tree = tmp.path().join("tree");
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", tree.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", tree.join("bin/sh")).unwrap();
    write(
        &tree.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    );
    let layout = tmp.path().join("layout");
    let source = ImageStore::open(&layout).unwrap();
    let layer = source
        .write_layer_from_dir(&tree, "", LayerMode::Reproducible)
        .unwrap();
    let image_config = ImageConfig {
        env: [("PATH".to_owned(), "/bin".to_owned())].into(),
        cmd: vec!["sh".into()],
        history: vec!["busybox".into()],
        ..ImageConfig::default()
    };
    source.put_image("x1", &[layer], &image_config).unwrap();
    let registry = Registry::start(tmp.path());
    let reference = format!("{}/busybox:1", registry.addr);
    run(Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:x1", layout.display()))
        .arg(format!("docker://{reference}")));

    let context = tmp.path().join("ctx");
    write(
        &context.join("Dockerfile"),
        &format!(
            "FROM {reference}\nRUN echo built > /built.txt\nUSER nobody\nCMD [\"busybox\", \"httpd\", \"-f\", \"-p\", \"8080\"]\n"
        ),
    );
    let cache = tmp.path().join("cache");

    // By default a registry must have valid HTTPS, loopback or not: this one is plain HTTP.
    let strict = dockerfile::DockerfileBuilder::new(config(tmp.path(), &cache));
    let (result, _) = build(&strict, &context, "app");
    let err = result.unwrap_err();
    assert!(matches!(err, DockerfileError::Pull { line: 1, .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("Dockerfile line 1: FROM {reference}")),
        "{err}"
    );

    let mut allowed = config(tmp.path(), &cache);
    allowed.insecure_loopback_registries = true;
    let b = dockerfile::DockerfileBuilder::new(allowed);
    let (first, log) = build(&b, &context, "app");
    let first = first.unwrap();
    assert!(
        log.iter().any(|l| l == &format!("-----> Pulling {reference}")),
        "{log:?}"
    );
    assert_eq!(
        (first.layers.len(), first.layer_steps, first.cached_steps),
        (2, 1, 0)
    );
    assert_eq!(first.extras.user, "nobody");
    assert_eq!(first.command(), ["busybox", "httpd", "-f", "-p", "8080"]);
    assert_eq!(first.config.env["PATH"], "/bin", "the base's environment");
    let built = run(Command::new("tar")
        .arg("-xzOf")
        .arg(b.config().store.blob_path(&first.layers[1].digest).unwrap())
        .args(["--wildcards", "*built.txt"]));
    assert_eq!(built, "built\n");

    // The rebuild needs no registry: the pulled base is in the store, and the RUN step is cached.
    drop(registry);
    let (second, log) = build(&b, &context, "app");
    let second = second.unwrap();
    assert!(
        log.iter()
            .any(|l| l == &format!("-----> FROM {reference}: using the copy pulled before")),
        "{log:?}"
    );
    assert_eq!(
        (second.cached_steps, second.manifest_digest),
        (1, first.manifest_digest)
    );
}
