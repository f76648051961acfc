//! Integration tests of the stack: a real debootstrap, kept across test runs.

use std::path::PathBuf;
use std::sync::Mutex;

use image_store::ImageStore;
use stack::{ensure_stack, StackConfig, StackError};

fn is_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        assert!(std::env::var_os("CI").is_none(), "{test} needs root");
        eprintln!("skipping {test}: needs root");
    }
    root
}

fn have_debootstrap(test: &str) -> bool {
    let found = [
        "/usr/sbin/debootstrap",
        "/sbin/debootstrap",
        "/usr/bin/debootstrap",
    ]
    .iter()
    .any(|p| std::path::Path::new(p).exists());
    if !found {
        assert!(std::env::var_os("CI").is_none(), "{test} needs debootstrap");
        eprintln!("skipping {test}: needs debootstrap");
    }
    found
}

/// The stack cache shared by the builder crates' tests (debootstrap takes more than a minute), under
/// target/tmp so reruns are quick.
fn shared_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("berth-stack-cache")
}

#[tokio::test]
async fn builds_the_stack_once_and_reuses_it() {
    let test = "builds_the_stack_once_and_reuses_it";
    if !is_root(test) || !have_debootstrap(test) {
        return;
    }
    let cache = shared_cache();
    let store = ImageStore::open(&cache.join("images")).unwrap();
    let cfg = StackConfig::new(cache.join("stacks"));
    let lines = Mutex::new(Vec::<String>::new());
    let progress = |line: &str| {
        eprintln!("{line}");
        lines.lock().unwrap().push(line.to_owned());
    };
    let stack = ensure_stack(&cfg, &store, &progress).await.unwrap();
    assert!(store.has_blob(&stack.layer.digest));
    assert!(
        stack.packages.iter().any(|p| p.starts_with("python3=")),
        "{:?}",
        stack.packages
    );
    assert!(stack.packages.iter().any(|p| p.starts_with("python3-pip=")));
    assert!(stack.packages.iter().any(|p| p.starts_with("ca-certificates=")));
    assert!(stack.packages.iter().any(|p| p.starts_with("python-is-python3=")));
    assert!(stack.packages.iter().any(|p| p.starts_with("nodejs=")));
    assert!(stack.packages.iter().any(|p| p.starts_with("npm=")));
    // No debootstrap work directory is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&cfg.stacks_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("build-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    lines.lock().unwrap().clear();
    let again = ensure_stack(&cfg, &store, &progress).await.unwrap();
    assert_eq!(again, stack);
    assert!(
        lines.lock().unwrap().is_empty(),
        "a recorded stack is reused silently"
    );

    // The layer holds a usable Python and empty /proc, /dev.
    let dest = tempfile::tempdir().unwrap();
    store
        .unpack_layer(&stack.layer.digest, &stack.layer.diff_id, dest.path())
        .unwrap();
    assert!(dest.path().join("usr/bin/python3").exists());
    assert!(dest.path().join("usr/bin/python").exists());
    assert!(dest.path().join("usr/bin/node").exists());
    assert!(dest.path().join("usr/bin/npm").exists());
    assert!(dest.path().join("etc/ssl/certs/ca-certificates.crt").exists());
    assert_eq!(std::fs::read_dir(dest.path().join("proc")).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(dest.path().join("dev")).unwrap().count(), 0);
    assert!(std::fs::read_dir(dest.path().join("var/lib/apt/lists"))
        .unwrap()
        .all(|e| {
            let name = e.unwrap().file_name();
            name == "partial" || name == "lock" || name == "auxfiles"
        }));
}

#[tokio::test]
async fn missing_debootstrap_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&tmp.path().join("images")).unwrap();
    let mut cfg = StackConfig::new(tmp.path().join("stacks"));
    cfg.debootstrap = "/nonexistent/debootstrap".into();
    let err = ensure_stack(&cfg, &store, &|_| {}).await.unwrap_err();
    assert!(matches!(err, StackError::DebootstrapMissing), "{err:?}");
    assert_eq!(
        err.to_string(),
        "debootstrap is not installed: run apt-get install debootstrap"
    );
}

#[tokio::test]
async fn the_stack_is_a_store_image_tagged_berth_bookworm() {
    let test = "the_stack_is_a_store_image_tagged_berth_bookworm";
    if !is_root(test) || !have_debootstrap(test) {
        return;
    }
    let cache = shared_cache();
    let store = ImageStore::open(&cache.join("images")).unwrap();
    let cfg = StackConfig::new(cache.join("stacks"));
    let stack = ensure_stack(&cfg, &store, &|_| {}).await.unwrap();
    assert_eq!(stack::stack_tag(&stack.name), "berth/bookworm");
    let digest = store
        .resolve_tag("berth/bookworm")
        .unwrap()
        .expect("ensure_stack tags the stack image");
    let image = store.read_image(&digest).unwrap();
    assert_eq!(image.layers.len(), 1);
    assert_eq!(image.layers[0].digest, stack.layer.digest);
    assert_eq!(image.layers[0].diff_id, stack.layer.diff_id);
    assert_eq!(image.config.env["PATH"], stack::STACK_PATH);
    // Tagging again (every build, once the tag exists) keeps the same image.
    assert_eq!(stack::tag_stack_image(&store, &stack).unwrap(), digest);

    let found = std::process::Command::new("sh")
        .args(["-c", "command -v skopeo"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(std::env::var_os("CI").is_none(), "{test} needs skopeo");
        eprintln!("skipping the skopeo part of {test}: needs skopeo");
        return;
    }
    let out = std::process::Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci:{}:berth/bookworm", store.root().display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let inspect: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inspect["Digest"], digest.as_str());
    assert_eq!(inspect["Layers"][0], stack.layer.digest.as_str());
}
