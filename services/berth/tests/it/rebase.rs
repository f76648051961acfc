//! `berth stack pull` and `berth rebase` as users run them: a tiny "stack" image (one layer holding a dpkg
//! status with the stack's packages) is pushed to Debian's real `docker-registry` on loopback, pulled with
//! `berth stack pull` (the real skopeo) into a data dir, and an app whose release was built on an older
//! stack is rebased onto it through the real API (no root needed).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use image_store::{ImageConfig, ImageStore, LayerInfo, LayerMode, LayerOptions};
use route_table::RouteTable;
use tokio::sync::watch;

use crate::images_push::{run, text, Registry};
use crate::standalone_router::{serve_api, store_with_account};
use crate::support::{berth_bin, require};

/// A reproducible root-filesystem layer holding `files`.
fn layer(images: &ImageStore, files: &[(&str, String)]) -> LayerInfo {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    images
        .write_layer(dir.path(), &LayerOptions::new("", LayerMode::Reproducible))
        .unwrap()
}

/// A dpkg status listing `packages` as installed.
fn dpkg_status(packages: &[&str]) -> String {
    packages
        .iter()
        .map(|p| format!("Package: {p}\nStatus: install ok installed\nVersion: 1.0\n"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Pushes the image `tag` of `images` to `reg/REPO:tag` with skopeo.
async fn push(images: &ImageStore, tag: &str, destination: &str) {
    let mut command = Command::new("skopeo");
    command.args([
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:{tag}", images.root().display()),
        &format!("docker://{destination}"),
    ]);
    let out = run(command).await;
    assert!(out.status.success(), "{}", text(&out));
}

fn stack_pull(data_dir: &Path, reference: &str) -> Command {
    let mut command = Command::new(berth_bin());
    command
        .args(["stack", "pull", reference, "--src-tls-verify=false"])
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("BERTH_DATA_DIR");
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pulled_stack_becomes_current_and_an_app_is_rebased_onto_it() {
    let test = "a_pulled_stack_becomes_current_and_an_app_is_rebased_onto_it";
    if !require(test, false, &["skopeo", "docker-registry"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let registry = Registry::start(dir.path());
    let reg = registry.addr;

    // The images to pull, made in a scratch layout.
    let scratch = ImageStore::open(&dir.path().join("scratch")).unwrap();
    let all: Vec<&str> = stack::all_packages().collect();
    let status = dpkg_status(&all);
    let new_stack = layer(
        &scratch,
        &[
            ("var/lib/dpkg/status", status.clone()),
            ("etc/stack-version", "new\n".into()),
        ],
    );
    scratch
        .put_image("stack", std::slice::from_ref(&new_stack), &ImageConfig::default())
        .unwrap();
    push(&scratch, "stack", &format!("{reg}/berth/bookworm:new")).await;
    let app_layer = layer(&scratch, &[("app/run", "echo hi\n".into())]);
    scratch
        .put_image(
            "two",
            &[new_stack.clone(), app_layer.clone()],
            &ImageConfig::default(),
        )
        .unwrap();
    push(&scratch, "two", &format!("{reg}/berth/bookworm:two-layers")).await;
    let lacking = layer(&scratch, &[("var/lib/dpkg/status", dpkg_status(&["bash"]))]);
    scratch
        .put_image("lacking", &[lacking], &ImageConfig::default())
        .unwrap();
    push(&scratch, "lacking", &format!("{reg}/berth/bookworm:lacking")).await;

    // Refused: not one layer, or without the packages builds need; nothing is recorded.
    let out = run(stack_pull(&data, &format!("{reg}/berth/bookworm:two-layers"))).await;
    assert!(!out.status.success());
    assert!(
        text(&out).contains("a stack is one layer, this image has 2"),
        "{}",
        text(&out)
    );
    let out = run(stack_pull(&data, &format!("{reg}/berth/bookworm:lacking"))).await;
    assert!(!out.status.success());
    assert!(
        text(&out).contains("builds need packages it lacks: python3"),
        "{}",
        text(&out)
    );
    assert!(!data.join("stacks/bookworm.json").exists());

    // Pulled: recorded as the current stack, with its packages.
    let reference = format!("{reg}/berth/bookworm:new");
    let out = run(stack_pull(&data, &reference)).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("-----> Pulling the stack"), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("stack ready: layer {}", new_stack.digest)),
        "{}",
        text(&out)
    );
    let images = ImageStore::open(&data.join("images")).unwrap();
    let recorded = stack::recorded_stack(&stack::StackConfig::new(data.join("stacks")), &images)
        .expect("the pulled stack is recorded");
    assert_eq!(recorded.layer, new_stack);
    assert_eq!(recorded.mirror, format!("pulled from {reference}"));
    assert_eq!(recorded.packages.len(), stack::all_packages().count());

    // An app built on an older stack, rebased onto it through the API.
    let (store, alice, token) = store_with_account(&data, "alice", false).await;
    let old_stack = layer(&images, &[("etc/stack-version", "old\n".into())]);
    let app_layer = layer(&images, &[("app/run", "echo hi\n".into())]);
    let config = ImageConfig {
        cmd: vec!["./run".into()],
        history: vec![
            "berth stack bookworm (debootstrap minbase)".into(),
            "berth app source".into(),
        ],
        ..ImageConfig::default()
    };
    let v1 = images
        .put_image("shop-1", &[old_stack.clone(), app_layer.clone()], &config)
        .unwrap();
    let shop = store
        .create_app(alice.id, &vocabulary::AppName::new("shop").unwrap())
        .await
        .unwrap();
    store
        .create_release(store::NewRelease {
            app: shop.id,
            image_digest: v1,
            processes: BTreeMap::new(),
            config: BTreeMap::new(),
            description: "Deploy".into(),
            created_by: alice.id,
        })
        .await
        .unwrap();
    let (_routes, routes_rx) = watch::channel(Arc::new(RouteTable::default()));
    let (api, api_task) = serve_api(store.clone(), &data, routes_rx).await;
    let rebase = || {
        let mut command = Command::new(berth_bin());
        command
            .args(["rebase", "-a", "shop"])
            .env("BERTH_API", format!("http://{api}"))
            .env("BERTH_TOKEN", &token)
            .env_remove("BERTH_TOKEN_FILE");
        command
    };
    let short = |d: &str| d["sha256:".len()..][..12].to_owned();
    let out = run(rebase()).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        text(&out).trim(),
        format!(
            "Rebased shop onto stack {} (was {}): released v2",
            short(&new_stack.digest),
            short(&old_stack.digest)
        )
    );
    let latest = store.latest_release(shop.id).await.unwrap().unwrap();
    let image = images.read_image(&latest.image_digest).unwrap();
    assert_eq!(image.layers[0].digest, new_stack.digest);
    assert_eq!(image.layers[1].digest, app_layer.digest);

    let out = run(rebase()).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        text(&out).trim(),
        format!(
            "shop is already on the current stack {}: no new release",
            short(&new_stack.digest)
        )
    );
    assert_eq!(store.releases(shop.id).await.unwrap().len(), 2);
    api_task.abort();
}
