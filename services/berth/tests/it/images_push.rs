//! `berth images push` as users type it: the real API in-process serves the app's image at `/v2`, the real
//! skopeo copies it into Debian's real `docker-registry` on loopback, and the result is pulled back and
//! compared with the image store (no root needed).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use image_store::{ImageConfig, ImageStore, LayerMode};
use route_table::RouteTable;
use tokio::sync::watch;

use crate::standalone_router::{serve_api, store_with_account};
use crate::support::{berth_bin, free_addr, require};

/// Debian's `docker-registry` with its own config (loopback only, no auth, storage in a temp dir), stopped by
/// its PID when dropped.
pub(crate) struct Registry {
    child: Child,
    pub(crate) addr: SocketAddr,
}

impl Registry {
    pub(crate) fn start(dir: &Path) -> Self {
        let addr = free_addr();
        let config = dir.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: {addr}\n",
                dir.join("registry-data").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawning docker-registry");
        let mut registry = Self { child, addr };
        // Waiting for it to listen, not a timing assertion: the limit only turns a hang into a message.
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(addr).is_err() {
            if let Some(status) = registry.child.try_wait().unwrap() {
                panic!(
                    "docker-registry exited ({status}): {}",
                    std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
                );
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
        // Our own child, by its PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A one-layer image holding `content` in `app/run`; returns its manifest digest.
fn image(images: &ImageStore, tag: &str, content: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("run"), content).unwrap();
    let layer = images
        .write_layer_from_dir(dir.path(), "app", LayerMode::Reproducible)
        .unwrap();
    let config = ImageConfig {
        cmd: vec!["./run".into()],
        history: vec![format!("berth {tag}")],
        ..ImageConfig::default()
    };
    images.put_image(tag, &[layer], &config).unwrap()
}

async fn run(command: Command) -> Output {
    let mut command = command;
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_is_pushed_to_a_registry_with_its_digests() {
    let test = "a_release_is_pushed_to_a_registry_with_its_digests";
    if !require(test, false, &["skopeo", "docker-registry"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (store, alice, token) = store_with_account(dir.path(), "alice", false).await;
    let (_, bob_token) = store
        .create_account(&vocabulary::AccountName::new("bob").unwrap(), false)
        .await
        .unwrap();
    let images = ImageStore::open(&dir.path().join("images")).unwrap();
    let shop = store
        .create_app(alice.id, &vocabulary::AppName::new("shop").unwrap())
        .await
        .unwrap();
    store
        .create_app(alice.id, &vocabulary::AppName::new("empty").unwrap())
        .await
        .unwrap();
    let digests = [
        image(&images, "shop-1", "echo one"),
        image(&images, "shop-2", "echo two"),
    ];
    for digest in &digests {
        store
            .create_release(store::NewRelease {
                app: shop.id,
                image_digest: digest.clone(),
                processes: BTreeMap::new(),
                config: BTreeMap::new(),
                description: "Deploy".into(),
                created_by: alice.id,
            })
            .await
            .unwrap();
    }
    let (_routes, routes_rx) = watch::channel(Arc::new(RouteTable::default()));
    let (api, api_task) = serve_api(store.clone(), dir.path(), routes_rx).await;
    let registry = Registry::start(dir.path());
    let reg = registry.addr;

    let berth = |token: &str, args: &[&str]| {
        let mut command = Command::new(berth_bin());
        command
            .args(["images", "push"])
            .args(args)
            .env("BERTH_API", format!("http://{api}"))
            .env("BERTH_TOKEN", token)
            .env_remove("BERTH_TOKEN_FILE")
            .env_remove("BERTH_DEST_CREDS");
        command
    };

    let v1 = format!("{reg}/mirror/shop:v1");
    let out = run(berth(
        &token,
        &["-a", "shop", "--release", "v1", &v1, "--dest-tls-verify=false"],
    ))
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("Pushed shop v1 to {v1} ({})", digests[0])),
        "{}",
        text(&out)
    );
    let latest = format!("docker://{reg}/mirror/shop:latest");
    let out = run(berth(
        &token,
        &["-a", "shop", &latest, "--dest-tls-verify", "false"],
    ))
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Pushed shop v2"), "{}", text(&out));

    // What the registry holds has the release's digests, and its blobs are the store's bytes (pulled back to
    // an OCI layout, since skopeo skips blobs a registry already has).
    for (tag, digest) in [("v1", &digests[0]), ("latest", &digests[1])] {
        let mut inspect = Command::new("skopeo");
        inspect.args([
            "inspect",
            "--tls-verify=false",
            &format!("docker://{reg}/mirror/shop:{tag}"),
        ]);
        let out = run(inspect).await;
        assert!(out.status.success(), "{}", text(&out));
        let inspected: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(inspected["Digest"], digest.as_str(), "{tag}");
    }
    let layout = dir.path().join("pulled");
    let mut copy = Command::new("skopeo");
    copy.args([
        "copy",
        "--src-tls-verify=false",
        &latest,
        &format!("oci:{}:pulled", layout.display()),
    ]);
    let out = run(copy).await;
    assert!(out.status.success(), "{}", text(&out));
    let pulled = ImageStore::open(&layout).unwrap();
    assert_eq!(
        pulled.resolve_tag("pulled").unwrap().as_deref(),
        Some(digests[1].as_str())
    );
    let manifest = images.read_manifest(&digests[1]).unwrap();
    for digest in manifest.references.iter().chain([&digests[1]]) {
        assert_eq!(
            std::fs::read(pulled.blob_path(digest).unwrap()).unwrap(),
            std::fs::read(images.blob_path(digest).unwrap()).unwrap(),
            "{digest}"
        );
    }

    // Clear errors.
    let dest = format!("{reg}/x:y");
    let cases: Vec<(Command, &str)> = vec![
        (
            berth(&token, &["-a", "empty", &dest]),
            "app empty has no releases yet",
        ),
        (
            berth(&token, &["-a", "shop", "--release", "v7", &dest]),
            "app shop has no release v7",
        ),
        (
            berth(&token, &["-a", "shop", "--release", "7", &dest]),
            "not a version such as v3",
        ),
        (
            berth(&bob_token, &["-a", "shop", &dest]),
            "app \"shop\" not found",
        ),
        (
            berth(&token, &["-a", "shop", "shop:v1"]),
            "is not REGISTRY/REPO:TAG",
        ),
        (
            {
                let mut no_skopeo = berth(&token, &["-a", "shop", &dest]);
                no_skopeo.env("PATH", dir.path().join("empty-path"));
                no_skopeo
            },
            "skopeo is not installed",
        ),
        (
            // The registry speaks plain HTTP: with TLS verification skopeo fails, and says why.
            berth(&token, &["-a", "shop", &dest]),
            "skopeo copy failed",
        ),
    ];
    for (command, want) in cases {
        let out = run(command).await;
        assert!(!out.status.success(), "{want}: {}", text(&out));
        assert!(text(&out).contains(want), "want {want:?} in {}", text(&out));
        assert!(!text(&out).contains(&token), "the token is never printed");
    }
    drop(registry);
    api_task.abort();
}
