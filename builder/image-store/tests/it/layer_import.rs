//! `import_layer`: a layer blob made elsewhere is taken only when it hashes to its digest and its tar to its
//! diff_id; the file asked for is read from it.

use image_store::{ImageStore, ImageStoreError, LayerInfo, LayerMode, LayerOptions};

#[test]
fn import_layer_checks_both_digests_and_reads_the_wanted_file() {
    let dir = tempfile::tempdir().unwrap();
    let source = ImageStore::open(&dir.path().join("source")).unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("var/lib/dpkg")).unwrap();
    std::fs::write(tree.join("var/lib/dpkg/status"), "Package: bash\n").unwrap();
    let layer = source
        .write_layer(&tree, &LayerOptions::new("", LayerMode::Reproducible))
        .unwrap();
    let blob = source.blob_path(&layer.digest).unwrap();
    let other = format!("sha256:{}", "0".repeat(64));

    type Check = fn(&Result<Option<Vec<u8>>, ImageStoreError>) -> bool;
    let cases: Vec<(&str, LayerInfo, &str, Check)> = vec![
        (
            "the file",
            layer.clone(),
            "var/lib/dpkg/status",
            |r| matches!(r, Ok(Some(bytes)) if bytes == b"Package: bash\n"),
        ),
        ("a ./ prefix", layer.clone(), "./var/lib/dpkg/status", |r| {
            matches!(r, Ok(Some(_)))
        }),
        ("no such file", layer.clone(), "etc/os-release", |r| {
            matches!(r, Ok(None))
        }),
        (
            "a directory is not the file",
            layer.clone(),
            "var/lib/dpkg",
            |r| matches!(r, Ok(None)),
        ),
        (
            "wrong digest",
            LayerInfo {
                digest: other.clone(),
                ..layer.clone()
            },
            "var/lib/dpkg/status",
            |r| matches!(r, Err(ImageStoreError::CorruptBlob { .. })),
        ),
        (
            "wrong diff_id",
            LayerInfo {
                diff_id: other.clone(),
                ..layer.clone()
            },
            "var/lib/dpkg/status",
            |r| matches!(r, Err(ImageStoreError::CorruptLayer { .. })),
        ),
    ];
    for (name, info, wanted, check) in cases {
        let dest = ImageStore::open(&dir.path().join(format!("dest-{}", name.replace(' ', "-")))).unwrap();
        let result = dest.import_layer(&blob, &info, wanted);
        assert!(check(&result), "{name}: {result:?}");
        // A blob that does not hash to its digest never lands in the store.
        assert!(!dest.has_blob(&other), "{name}");
    }
}
