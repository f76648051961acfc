//! `POST /v1/apps/{name}/rebase`: an app's current release moved onto the current stack. Images are made
//! by the test from tiny layers; the "stack" is a tiny layer recorded the way `stack::ensure_stack` records
//! one. The rebased image is checked by the real `skopeo` and `umoci` when installed.

use std::collections::BTreeMap;
use std::path::Path;

use axum::http::{Method, StatusCode};
use image_store::{ImageConfig, LayerInfo, LayerMode, LayerOptions};
use vocabulary::ProcessType;

use crate::registry::have_tool;
use crate::Harness;

const STACK_STEP: &str = "berth stack bookworm (debootstrap minbase)";

/// A reproducible layer at the image root holding `files`.
fn layer(h: &Harness, files: &[(&str, &str)]) -> LayerInfo {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    h.images
        .write_layer(dir.path(), &LayerOptions::new("", LayerMode::Reproducible))
        .unwrap()
}

/// Records `layer` as the current stack, as `stack::ensure_stack` does.
fn record_stack(stacks_dir: &Path, layer: &LayerInfo) {
    let record = stack::StackLayer {
        name: stack::STACK_NAME.to_owned(),
        layer: layer.clone(),
        includes: stack::all_packages().map(str::to_owned).collect(),
        packages: vec!["python3=3.11".to_owned()],
        mirror: "http://deb.example/debian".to_owned(),
        created: "2026-11-29T00:00:00Z".to_owned(),
    };
    std::fs::create_dir_all(stacks_dir).unwrap();
    std::fs::write(
        stacks_dir.join(format!("{}.json", stack::STACK_NAME)),
        serde_json::to_vec(&record).unwrap(),
    )
    .unwrap();
}

fn app_config(first_step: &str) -> ImageConfig {
    ImageConfig {
        env: BTreeMap::from([("LANG".to_owned(), "C.UTF-8".to_owned())]),
        cmd: vec!["/bin/sh".into(), "-c".into(), "./run".into()],
        working_dir: "/app".into(),
        labels: BTreeMap::from([("berth.buildpack".to_owned(), "python".to_owned())]),
        history: vec![first_step.to_owned(), "berth app source".to_owned()],
        created: None,
    }
}

/// Creates `app` for `token`'s account with one release of the image `layers` + `config`.
async fn app_with_image(h: &mut Harness, app: &str, token: &str, layers: &[LayerInfo], config: &ImageConfig) {
    assert_eq!(h.create_app(app, token).await.status, StatusCode::CREATED);
    let manifest = h.images.put_image(&format!("{app}-v1"), layers, config).unwrap();
    let app = h.app(app).await;
    h.store
        .create_release(store::NewRelease {
            app: app.id,
            image_digest: manifest,
            processes: BTreeMap::from([(ProcessType::web(), "./run".to_owned())]),
            config: BTreeMap::from([("SECRET".to_owned(), "s3cret".to_owned())]),
            description: "Deploy abc1234".to_owned(),
            created_by: app.owner,
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn rebase_moves_the_release_onto_the_current_stack_once() {
    let mut h = Harness::new().await;
    let alice = h.tenant("alice").await;
    let bob = h.tenant("bob").await;
    let old_stack = layer(&h, &[("etc/stack-version", "old\n")]);
    let new_stack = layer(
        &h,
        &[("etc/stack-version", "new\n"), ("usr/share/new-stack", "yes\n")],
    );
    let app_layer = layer(&h, &[("app/run", "echo hello\n")]);
    app_with_image(
        &mut h,
        "shop",
        &alice,
        &[old_stack.clone(), app_layer.clone()],
        &app_config(STACK_STEP),
    )
    .await;

    // No stack recorded yet.
    let reply = h
        .call(Method::POST, "/v1/apps/shop/rebase", Some(&alice), None)
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert!(
        reply.error().contains("no stack is recorded"),
        "{}",
        reply.error()
    );

    record_stack(&h.stacks_dir, &new_stack);
    // Another tenant cannot rebase it, and learns nothing.
    let reply = h
        .call(Method::POST, "/v1/apps/shop/rebase", Some(&bob), None)
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(h.take_events().is_empty());

    let reply = h
        .call(Method::POST, "/v1/apps/shop/rebase", Some(&alice), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["old_stack"], old_stack.digest.as_str());
    assert_eq!(reply.body["new_stack"], new_stack.digest.as_str());
    assert_eq!(reply.body["release"], 2, "releases are numbered");
    let events = h.take_events();
    assert!(
        matches!(events.as_slice(), [controller::Event::ReleaseCreated(_)]),
        "{events:?}"
    );

    let app = h.app("shop").await;
    let releases = h.store.releases(app.id).await.unwrap();
    let (v2, v1) = (&releases[0], &releases[1]);
    assert_eq!(v2.version.to_string(), "v2");
    let short = &new_stack.digest["sha256:".len()..][..12];
    assert_eq!(v2.description, format!("Rebase onto stack {short}"));
    assert_eq!((&v2.processes, &v2.config), (&v1.processes, &v1.config));
    assert_ne!(v2.image_digest, v1.image_digest);

    let old = h.images.read_image(&v1.image_digest).unwrap();
    let new = h.images.read_image(&v2.image_digest).unwrap();
    let digests =
        |image: &image_store::Image| image.layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>();
    assert_eq!(
        digests(&new),
        [new_stack.digest.clone(), app_layer.digest.clone()]
    );
    assert_eq!(new.layers[0].diff_id, new_stack.diff_id);
    assert_eq!(
        (
            &new.config.env,
            &new.config.cmd,
            &new.config.labels,
            &new.config.working_dir
        ),
        (
            &old.config.env,
            &old.config.cmd,
            &old.config.labels,
            &old.config.working_dir
        )
    );
    let extras = h.images.read_image_extras(&v2.image_digest).unwrap();
    let last = extras.history.last().unwrap();
    assert_eq!(
        last.created_by,
        format!("rebased onto stack {}", new_stack.digest)
    );
    assert!(last.empty_layer);

    check_with_tools(&h, &v2.image_digest);

    // Already on the current stack: said so, no release, no event.
    let reply = h
        .call(Method::POST, "/v1/apps/shop/rebase", Some(&alice), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["release"], serde_json::Value::Null);
    assert_eq!(reply.body["old_stack"], new_stack.digest.as_str());
    assert_eq!(h.store.releases(app.id).await.unwrap().len(), 2);
    assert!(h.take_events().is_empty());
}

#[tokio::test]
async fn images_not_on_a_berth_stack_and_apps_without_releases_are_refused() {
    let mut h = Harness::new().await;
    let alice = h.tenant("alice").await;
    let stack = layer(&h, &[("etc/stack-version", "new\n")]);
    record_stack(&h.stacks_dir, &stack);
    let base = layer(&h, &[("etc/os-release", "alpine\n")]);
    let app_layer = layer(&h, &[("app/run", "echo hello\n")]);
    app_with_image(
        &mut h,
        "imported",
        &alice,
        &[base, app_layer],
        &app_config("ADD file:1234 in /"),
    )
    .await;

    let reply = h
        .call(Method::POST, "/v1/apps/imported/rebase", Some(&alice), None)
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.body);
    assert!(
        reply.error().contains("not built on a Berth stack"),
        "{}",
        reply.error()
    );
    assert!(reply.error().contains("v1 of app imported"), "{}", reply.error());

    assert_eq!(h.create_app("empty", &alice).await.status, StatusCode::CREATED);
    let reply = h
        .call(Method::POST, "/v1/apps/empty/rebase", Some(&alice), None)
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert!(reply.error().contains("has no release yet"), "{}", reply.error());
    assert!(h.take_events().is_empty());
}

/// `skopeo inspect` reads the rebased image from the store's layout, `umoci unpack` applies its layers
/// (checking diff_ids): the new stack's file and the app's file are both there.
fn check_with_tools(h: &Harness, manifest: &str) {
    let test = "rebase_moves_the_release_onto_the_current_stack_once";
    if !have_tool(test, "skopeo") || !have_tool(test, "umoci") {
        return;
    }
    let tag = h
        .images
        .tags()
        .unwrap()
        .into_iter()
        .find_map(|(tag, digest)| (digest == manifest).then_some(tag))
        .expect("the rebased image is tagged");
    let layout = format!("{}:{tag}", h.images.root().display());
    let out = std::process::Command::new("skopeo")
        .args(["inspect", &format!("oci:{layout}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inspected: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inspected["Digest"], manifest);

    let bundle = tempfile::tempdir().unwrap();
    let bundle = bundle.path().join("bundle");
    let out = std::process::Command::new("umoci")
        .args(["unpack", "--rootless", "--image", &layout])
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "umoci: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/stack-version")).unwrap(),
        "new\n"
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("usr/share/new-stack")).unwrap(),
        "yes\n"
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("app/run")).unwrap(),
        "echo hello\n"
    );
}
