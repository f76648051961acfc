use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use image_store::{
    HistoryEntry, ImageConfig, ImageExtras, ImageStore, ImageStoreError, LayerInfo, LayerMode,
};

use crate::{have_tool, run, write};

fn two_layers(store: &ImageStore, dir: &Path) -> Vec<LayerInfo> {
    write(&dir.join("base/etc/os-release"), "NAME=test\n");
    write(&dir.join("base/bin/hello"), "#!/bin/sh\necho hi\n");
    write(&dir.join("app/app.py"), "print('hello from the app')\n");
    vec![
        store
            .write_layer_from_dir(&dir.join("base"), "", LayerMode::Reproducible)
            .unwrap(),
        store
            .write_layer_from_dir(&dir.join("app"), "app", LayerMode::Reproducible)
            .unwrap(),
    ]
}

fn config() -> ImageConfig {
    ImageConfig {
        env: BTreeMap::from([
            ("PATH".into(), "/usr/bin:/bin".into()),
            ("LANG".into(), "C.UTF-8".into()),
        ]),
        cmd: vec!["/bin/sh".into(), "-c".into(), "python3 app.py".into()],
        working_dir: "/app".into(),
        labels: BTreeMap::from([("berth.processes".into(), r#"{"web":"python3 app.py"}"#.into())]),
        history: vec!["stack".into(), "app".into()],
        created: None,
    }
}

#[test]
fn put_and_read_back_an_image() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&tmp.path().join("store")).unwrap();
    let layers = two_layers(&store, tmp.path());
    let digest = store.put_image("demo-1", &layers, &config()).unwrap();
    assert_eq!(
        store.put_image("demo-1", &layers, &config()).unwrap(),
        digest,
        "same input, same manifest"
    );

    let image = store.read_image(&digest).unwrap();
    assert_eq!(image.manifest_digest, digest);
    assert_eq!(image.layers.len(), 2);
    for (read, written) in image.layers.iter().zip(&layers) {
        assert_eq!(
            (&read.digest, &read.diff_id, read.size),
            (&written.digest, &written.diff_id, written.size)
        );
        assert!(read.path.is_file());
    }
    let mut expected = config();
    expected.created = Some(image_store::FIXED_CREATED.into());
    assert_eq!(image.config, expected);

    // Retagging replaces the old entry; other tags stay.
    let mut other = config();
    other.cmd = vec!["/bin/true".into()];
    let other_digest = store.put_image("demo-1", &layers, &other).unwrap();
    assert_ne!(other_digest, digest);
    store
        .put_image("demo-2", &layers[..1], &ImageConfig::default())
        .unwrap();
    let tags = store.tags().unwrap();
    assert_eq!(tags.len(), 2, "{tags:?}");
    assert_eq!(tags["demo-1"], other_digest);
    assert_eq!(store.resolve_tag("demo-1").unwrap(), Some(other_digest));
    assert_eq!(store.resolve_tag("nope").unwrap(), None);
    // Reopening keeps everything.
    let reopened = ImageStore::open(store.root()).unwrap();
    assert_eq!(reopened.tags().unwrap(), tags);
}

#[test]
fn refuses_bad_tags_and_missing_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&tmp.path().join("store")).unwrap();
    let layers = two_layers(&store, tmp.path());
    let err = store.put_image("../x", &layers, &config()).unwrap_err();
    assert!(matches!(err, ImageStoreError::BadTag(_)), "{err:?}");
    let missing = LayerInfo {
        digest: format!("sha256:{}", "1".repeat(64)),
        ..layers[0].clone()
    };
    let err = store.put_image("ok", &[missing], &config()).unwrap_err();
    assert!(matches!(err, ImageStoreError::MissingBlob { .. }), "{err:?}");
    assert!(matches!(
        store.read_image("sha256:nope").unwrap_err(),
        ImageStoreError::BadDigest(_)
    ));
    assert!(store.tags().unwrap().is_empty());
}

#[test]
fn concurrent_tags_are_all_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&tmp.path().join("store")).unwrap();
    let layers = two_layers(&store, tmp.path());
    std::thread::scope(|s| {
        for i in 0..8 {
            let (store, layers) = (store.clone(), layers.clone());
            s.spawn(move || {
                for j in 0..5 {
                    let mut c = config();
                    c.labels.insert("n".into(), format!("{i}-{j}"));
                    store.put_image(&format!("t{i}-{j}"), &layers, &c).unwrap();
                }
            });
        }
    });
    assert_eq!(store.tags().unwrap().len(), 40);
}

#[test]
fn skopeo_and_umoci_accept_the_image() {
    let test = "skopeo_and_umoci_accept_the_image";
    if !have_tool(test, "skopeo") || !have_tool(test, "umoci") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let store = ImageStore::open(&root).unwrap();
    let layers = two_layers(&store, tmp.path());
    let digest = store.put_image("demo", &layers, &config()).unwrap();
    store
        .put_image("other", &layers[..1], &ImageConfig::default())
        .unwrap();

    let inspect = run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci:{}:demo", root.display())));
    let inspect: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(inspect["Digest"], digest.as_str());
    let listed: Vec<&str> = inspect["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        layers.iter().map(|l| l.digest.as_str()).collect::<Vec<_>>()
    );
    assert!(inspect["Env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == "LANG=C.UTF-8"));

    // skopeo copy re-reads every blob and checks its digest.
    let fresh = tmp.path().join("fresh");
    run(Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci:{}:demo", root.display()))
        .arg(format!("oci:{}:demo", fresh.display())));

    // umoci applies the layers and checks the diff_ids.
    let bundle = tmp.path().join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:demo", root.display()))
        .arg(&bundle));
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/app/app.py")).unwrap(),
        "print('hello from the app')\n"
    );
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/etc/os-release")).unwrap(),
        "NAME=test\n"
    );
    let runtime: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(runtime["process"]["cwd"], "/app");
    // umoci stat reads the history (it crashes on entries without `created`).
    run(Command::new("umoci")
        .args(["stat", "--image"])
        .arg(format!("{}:demo", root.display())));
}

#[test]
fn extras_and_step_history_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&tmp.path().join("store")).unwrap();
    let layers = two_layers(&store, tmp.path());
    let step = |by: &str, empty_layer| HistoryEntry {
        created_by: by.into(),
        empty_layer,
    };
    let extras = ImageExtras {
        entrypoint: vec!["python3".into()],
        user: "1000:1000".into(),
        exposed_ports: ["8080/tcp".to_owned(), "53/udp".to_owned()].into(),
        history: vec![
            step("FROM base", false),
            step("ENV A=1", true),
            step("COPY . /app", false),
            step("CMD [\"app.py\"]", true),
        ],
    };
    let digest = store
        .put_image_with("extras", &layers, &config(), &extras)
        .unwrap();
    assert_eq!(store.read_image_extras(&digest).unwrap(), extras);
    // The per-layer history of `read_image` skips the config-only steps.
    assert_eq!(
        store.read_image(&digest).unwrap().config.history,
        ["FROM base", "COPY . /app"]
    );
    // Without extras, the config is what `put_image` always wrote.
    let plain = store.put_image("plain", &layers, &config()).unwrap();
    assert_eq!(
        store
            .put_image_with("plain", &layers, &config(), &ImageExtras::default())
            .unwrap(),
        plain
    );
    let mut wrong = extras.clone();
    wrong.history.pop();
    wrong.history.push(step("RUN x", false));
    let err = store
        .put_image_with("wrong", &layers, &config(), &wrong)
        .unwrap_err();
    assert!(
        err.to_string().contains("3 steps with a layer for 2 layers"),
        "{err}"
    );
    if have_tool("extras_and_step_history_round_trip", "umoci") {
        run(Command::new("umoci")
            .arg("stat")
            .arg("--image")
            .arg(format!("{}:extras", store.root().display())));
    }
}
