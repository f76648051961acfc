//! Importing an image from another OCI layout: digests kept, corruption and oversize refused.

use std::collections::BTreeMap;

use image_store::{ImageConfig, ImageStore, ImageStoreError, ImportOptions, LayerCompression, LayerMode};

use crate::write;

/// A source layout holding one image tagged `pull`, and its manifest digest.
fn source_layout(dir: &std::path::Path) -> (ImageStore, String) {
    source_layout_with(dir, LayerCompression::Gzip)
}

/// [`source_layout`] with layers compressed as `compression`.
fn source_layout_with(dir: &std::path::Path, compression: LayerCompression) -> (ImageStore, String) {
    let source = ImageStore::open(&dir.join("source"))
        .unwrap()
        .with_layer_compression(compression);
    write(&dir.join("tree/www/index.html"), "hello\n");
    write(&dir.join("tree/bin/run"), &"x".repeat(10_000));
    let layer = source
        .write_layer_from_dir(&dir.join("tree"), "", LayerMode::Reproducible)
        .unwrap();
    let config = ImageConfig {
        cmd: vec!["/bin/run".into()],
        labels: BTreeMap::from([("a".into(), "b".into())]),
        ..ImageConfig::default()
    };
    let digest = source.put_image("pull", &[layer], &config).unwrap();
    (source, digest)
}

fn options(max_bytes: u64) -> ImportOptions {
    ImportOptions {
        source_tag: "pull".into(),
        tag: "web1-image-1".into(),
        max_bytes,
    }
}

#[test]
fn an_imported_image_keeps_its_digest_and_reads_back() {
    let tmp = tempfile::tempdir().unwrap();
    let (source, digest) = source_layout(tmp.path());
    let store = ImageStore::open(&tmp.path().join("store")).unwrap();
    let imported = store
        .import_from_layout(source.root(), &options(1 << 20))
        .unwrap();
    assert_eq!(imported.manifest_digest, digest);
    assert_eq!(imported.layers, 1);
    assert_eq!(store.resolve_tag("web1-image-1").unwrap(), Some(digest.clone()));
    let image = store.read_image(&digest).unwrap();
    assert_eq!(image.config.cmd, vec!["/bin/run".to_owned()]);
    assert!(image.layers[0].path.is_file());
    // Importing again (blobs already there) is fine.
    store
        .import_from_layout(source.root(), &options(1 << 20))
        .unwrap();
}

#[test]
fn a_corrupt_layer_or_a_missing_tag_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (source, digest) = source_layout(tmp.path());
    let store = ImageStore::open(&tmp.path().join("store")).unwrap();

    let missing = ImportOptions {
        source_tag: "nope".into(),
        ..options(1 << 20)
    };
    let err = store.import_from_layout(source.root(), &missing).unwrap_err();
    assert!(err.to_string().contains("no image tagged \"nope\""), "{err}");

    let layer = source.read_image(&digest).unwrap().layers[0].path.clone();
    let mut bytes = std::fs::read(&layer).unwrap();
    bytes.extend_from_slice(b"junk");
    std::fs::write(&layer, bytes).unwrap();
    let err = store
        .import_from_layout(source.root(), &options(1 << 20))
        .unwrap_err();
    assert!(matches!(err, ImageStoreError::CorruptBlob { .. }), "{err:?}");
    assert_eq!(store.resolve_tag("web1-image-1").unwrap(), None, "nothing tagged");
}

#[test]
fn an_image_over_the_limit_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (source, _) = source_layout(tmp.path());
    let store = ImageStore::open(&tmp.path().join("store")).unwrap();
    // The layer compresses to well under 5,000 bytes but holds over 10,000.
    let err = store
        .import_from_layout(source.root(), &options(5_000))
        .unwrap_err();
    assert!(matches!(err, ImageStoreError::ImageTooLarge { .. }), "{err:?}");
    assert!(err.to_string().contains("too large"), "{err}");
    assert_eq!(store.resolve_tag("web1-image-1").unwrap(), None);
}

#[test]
fn an_image_with_zstd_layers_is_imported_checked_and_unpacks() {
    let tmp = tempfile::tempdir().unwrap();
    let (source, digest) = source_layout_with(tmp.path(), LayerCompression::Zstd);
    let store = ImageStore::open(&tmp.path().join("store")).unwrap();
    let imported = store
        .import_from_layout(source.root(), &options(1 << 20))
        .unwrap();
    assert_eq!(imported.manifest_digest, digest);
    let image = store.read_image(&digest).unwrap();
    let layer = &image.layers[0];
    assert_eq!(
        store.blob_compression(&layer.digest).unwrap(),
        LayerCompression::Zstd
    );
    let dest = tmp.path().join("unpacked");
    std::fs::create_dir_all(&dest).unwrap();
    store.unpack_layer(&layer.digest, &layer.diff_id, &dest).unwrap();
    assert_eq!(
        std::fs::read_to_string(dest.join("www/index.html")).unwrap(),
        "hello\n"
    );

    // The uncompressed size counts, as for gzip.
    let small = ImageStore::open(&tmp.path().join("small")).unwrap();
    let err = small
        .import_from_layout(source.root(), &options(5_000))
        .unwrap_err();
    assert!(matches!(err, ImageStoreError::ImageTooLarge { .. }), "{err}");
}
