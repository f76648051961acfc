//! zstd layers: written on request or by the store's default, read back, unpacked, accepted by skopeo; and the
//! image size limit of `put_image`.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use image_store::{
    ImageConfig, ImageStore, ImageStoreError, LayerCompression, LayerInfo, LayerMode, LayerOptions,
};

use crate::{have_tool, run, write};

const ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

fn tree(dir: &Path) {
    write(&dir.join("etc/os-release"), "NAME=test\n");
    write(&dir.join("bin/hello"), "#!/bin/sh\necho hi\n");
    std::fs::set_permissions(dir.join("bin/hello"), std::fs::Permissions::from_mode(0o755)).unwrap();
    write(&dir.join("data/big.txt"), &"zstd and gzip agree\n".repeat(5000));
    std::os::unix::fs::symlink("hello", dir.join("bin/hi")).unwrap();
}

fn layer(store: &ImageStore, dir: &Path, compression: Option<LayerCompression>) -> LayerInfo {
    let mut options = LayerOptions::new("", LayerMode::Reproducible);
    options.compression = compression;
    store.write_layer(dir, &options).unwrap()
}

/// Every path under `dir` with its mode and content (a symlink's target).
fn listing(dir: &Path) -> BTreeMap<String, (u32, String)> {
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            let meta = e.path().symlink_metadata().unwrap();
            let content = if meta.is_file() {
                std::fs::read_to_string(e.path()).unwrap()
            } else if meta.file_type().is_symlink() {
                std::fs::read_link(e.path()).unwrap().display().to_string()
            } else {
                String::new()
            };
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            (rel, (meta.permissions().mode(), content))
        })
        .collect()
}

fn media_types(store: &ImageStore, tag: &str) -> Vec<String> {
    let digest = store.resolve_tag(tag).unwrap().unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.blob_path(&digest).unwrap()).unwrap()).unwrap();
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn zstd_layers_unpack_to_the_same_files_as_gzip() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    tree(&src);
    let store = ImageStore::open(&tmp.path().join("store")).unwrap();
    let gzip = layer(&store, &src, None);
    let zstd = layer(&store, &src, Some(LayerCompression::Zstd));
    // Same tar, different blobs.
    assert_eq!(gzip.diff_id, zstd.diff_id);
    assert_ne!(gzip.digest, zstd.digest);
    assert_eq!(
        store.blob_compression(&gzip.digest).unwrap(),
        LayerCompression::Gzip
    );
    assert_eq!(
        store.blob_compression(&zstd.digest).unwrap(),
        LayerCompression::Zstd
    );

    store
        .put_image("mixed", &[gzip.clone(), zstd.clone()], &ImageConfig::default())
        .unwrap();
    assert_eq!(media_types(&store, "mixed"), [GZIP, ZSTD]);
    let image = store
        .read_image(&store.resolve_tag("mixed").unwrap().unwrap())
        .unwrap();
    assert_eq!(image.layers[1].digest, zstd.digest);

    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    store.unpack_layer(&gzip.digest, &gzip.diff_id, &a).unwrap();
    store.unpack_layer(&zstd.digest, &zstd.diff_id, &b).unwrap();
    let files = listing(&a);
    assert!(files.contains_key("data/big.txt"), "{files:?}");
    assert_eq!(files, listing(&b));

    // A zstd blob is checked like a gzip one.
    let wrong = format!("sha256:{}", "0".repeat(64));
    std::fs::create_dir_all(tmp.path().join("c")).unwrap();
    let err = store
        .unpack_layer(&zstd.digest, &wrong, &tmp.path().join("c"))
        .unwrap_err();
    assert!(matches!(err, ImageStoreError::CorruptLayer { .. }), "{err}");
}

#[test]
fn the_store_default_compression_applies_to_layers_that_name_none() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    tree(&src);
    let store = ImageStore::open(&tmp.path().join("store"))
        .unwrap()
        .with_layer_compression(LayerCompression::Zstd);
    let default = store
        .write_layer_from_dir(&src, "app", LayerMode::Reproducible)
        .unwrap();
    assert_eq!(
        store.blob_compression(&default.digest).unwrap(),
        LayerCompression::Zstd
    );
    // A layer that asks for gzip (the stack) keeps it.
    let gzip = layer(&store, &src, Some(LayerCompression::Gzip));
    assert_eq!(
        store.blob_compression(&gzip.digest).unwrap(),
        LayerCompression::Gzip
    );
}

#[test]
fn skopeo_inspects_and_copies_an_image_with_zstd_layers() {
    let test = "skopeo_inspects_and_copies_an_image_with_zstd_layers";
    if !have_tool(test, "skopeo") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    tree(&src);
    let root = tmp.path().join("store");
    let store = ImageStore::open(&root).unwrap();
    let zstd = layer(&store, &src, Some(LayerCompression::Zstd));
    let digest = store
        .put_image("z", std::slice::from_ref(&zstd), &ImageConfig::default())
        .unwrap();

    let inspect = run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci:{}:z", root.display())));
    let inspect: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(inspect["Digest"], digest.as_str());
    assert_eq!(inspect["Layers"][0], zstd.digest.as_str());
    // skopeo 1.9 has no LayersData: the raw manifest it reads names the media type.
    let raw = run(Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}:z", root.display())));
    let raw: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(raw["layers"][0]["mediaType"], ZSTD, "{raw}");

    // skopeo copy re-reads every blob and checks its digest; the copy keeps the zstd layer.
    let fresh = tmp.path().join("fresh");
    run(Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci:{}:z", root.display()))
        .arg(format!("oci:{}:z", fresh.display())));
    let copy = ImageStore::open(&fresh).unwrap();
    assert_eq!(media_types(&copy, "z"), [ZSTD]);
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    copy.unpack_layer(&zstd.digest, &zstd.diff_id, &out).unwrap();
    assert_eq!(listing(&out), listing(&src));
}

#[test]
fn put_image_refuses_an_image_over_the_size_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    tree(&src);
    let store = ImageStore::open(&tmp.path().join("store")).unwrap();
    let layers = [
        layer(&store, &src, None),
        layer(&store, &src, Some(LayerCompression::Zstd)),
    ];
    let total: u64 = layers.iter().map(|l| l.size).sum();

    let exact = store.clone().with_max_image_size(total);
    exact.put_image("fits", &layers, &ImageConfig::default()).unwrap();

    let tight = store.clone().with_max_image_size(total - 1);
    let err = tight
        .put_image("too-big", &layers, &ImageConfig::default())
        .unwrap_err();
    assert!(
        matches!(err, ImageStoreError::ImageOverLimit { size, .. } if size == total),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "the image is {total} bytes, more than the limit of {} bytes;",
            total - 1
        )) && message.ends_with("add large files to .slugignore or ask the operator"),
        "{message}"
    );
    assert_eq!(store.resolve_tag("too-big").unwrap(), None);
}

#[test]
fn an_image_with_zstd_app_layers_is_rebased_keeping_them() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&tmp.path().join("store")).unwrap();
    write(&tmp.path().join("old/etc/os-release"), "NAME=old\n");
    write(&tmp.path().join("new/etc/os-release"), "NAME=new\n");
    let app = tmp.path().join("src");
    tree(&app);
    let old_stack = layer(&store, &tmp.path().join("old"), Some(LayerCompression::Gzip));
    let new_stack = layer(&store, &tmp.path().join("new"), Some(LayerCompression::Gzip));
    let app_layer = layer(&store, &app, Some(LayerCompression::Zstd));
    let config = ImageConfig {
        history: vec!["berth stack bookworm (debootstrap minbase)".into(), "app".into()],
        ..ImageConfig::default()
    };
    let digest = store
        .put_image("app-v1", &[old_stack, app_layer.clone()], &config)
        .unwrap();
    let rebased = store.rebase_image(&digest, &new_stack, "app-v2").unwrap();
    assert!(
        matches!(rebased, image_store::Rebase::Rebased { .. }),
        "{rebased:?}"
    );
    assert_eq!(media_types(&store, "app-v2"), [GZIP, ZSTD]);
    let image = store
        .read_image(&store.resolve_tag("app-v2").unwrap().unwrap())
        .unwrap();
    let digests: Vec<&str> = image.layers.iter().map(|l| l.digest.as_str()).collect();
    assert_eq!(digests, [new_stack.digest.as_str(), app_layer.digest.as_str()]);
}
