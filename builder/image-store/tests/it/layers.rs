use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use image_store::{ImageStore, ImageStoreError, LayerMode, LayerOptions};

use crate::{is_root, write};

const LONG: &str =
    "a-rather-long-directory-name-that-goes-on/and-on-past-the-hundred-bytes-of-an-old-tar-header/file.txt";

fn sample_tree(dir: &Path) {
    write(&dir.join("app.py"), "print('hello')\n");
    write(&dir.join("bin/run"), "#!/bin/sh\necho run\n");
    std::fs::set_permissions(dir.join("bin/run"), std::fs::Permissions::from_mode(0o755)).unwrap();
    write(&dir.join(LONG), "long\n");
    write(&dir.join(".git/HEAD"), "ref: refs/heads/main\n");
    std::os::unix::fs::symlink("/etc/passwd", dir.join("passwd-link")).unwrap();
}

#[test]
fn same_tree_gives_same_digests_whatever_the_mtimes() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&tmp.path().join("store")).unwrap();
    let a = tmp.path().join("a");
    sample_tree(&a);
    let first = store
        .write_layer_from_dir(&a, "app", LayerMode::Reproducible)
        .unwrap();
    let again = store
        .write_layer_from_dir(&a, "app", LayerMode::Reproducible)
        .unwrap();
    assert_eq!(first, again);

    std::thread::sleep(std::time::Duration::from_millis(20));
    let b = tmp.path().join("b");
    sample_tree(&b);
    let copy = store
        .write_layer_from_dir(&b, "app", LayerMode::Reproducible)
        .unwrap();
    assert_eq!(first, copy, "a copy made later must give the same layer");

    write(&b.join("app.py"), "print('changed')\n");
    let changed = store
        .write_layer_from_dir(&b, "app", LayerMode::Reproducible)
        .unwrap();
    assert_ne!(first.digest, changed.digest);
    assert_ne!(first.diff_id, changed.diff_id);

    assert!(store.has_blob(&first.digest));
    let blob = store.blob_path(&first.digest).unwrap();
    assert_eq!(std::fs::metadata(&blob).unwrap().len(), first.size);
    assert_ne!(first.digest, first.diff_id);
    // Nothing half-written is left behind.
    assert_eq!(
        std::fs::read_dir(tmp.path().join("store/.tmp")).unwrap().count(),
        0
    );
}

#[test]
fn unpack_gives_back_the_tree_without_excluded_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&tmp.path().join("store")).unwrap();
    let src = tmp.path().join("src");
    sample_tree(&src);
    let mut options = LayerOptions::new("app", LayerMode::Reproducible);
    options.exclude.push(".git".into());
    let layer = store.write_layer(&src, &options).unwrap();

    let dest = tmp.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    store.unpack_layer(&layer.digest, &layer.diff_id, &dest).unwrap();
    assert_eq!(
        std::fs::read_to_string(dest.join("app/app.py")).unwrap(),
        "print('hello')\n"
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("app").join(LONG)).unwrap(),
        "long\n"
    );
    assert_eq!(
        std::fs::read_link(dest.join("app/passwd-link")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_eq!(
        std::fs::metadata(dest.join("app/bin/run")).unwrap().mode() & 0o777,
        0o755
    );
    assert_eq!(
        std::fs::metadata(dest.join("app/app.py")).unwrap().mode() & 0o777,
        0o644
    );
    assert!(!dest.join("app/.git").exists(), ".git must be excluded");
}

#[test]
fn unpack_refuses_a_corrupt_blob_and_a_wrong_diff_id() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&tmp.path().join("store")).unwrap();
    let src = tmp.path().join("src");
    sample_tree(&src);
    let layer = store
        .write_layer_from_dir(&src, "", LayerMode::Reproducible)
        .unwrap();

    let wrong_diff_id = format!("sha256:{}", "0".repeat(64));
    let dest = tempfile::tempdir().unwrap();
    let err = store
        .unpack_layer(&layer.digest, &wrong_diff_id, dest.path())
        .unwrap_err();
    assert!(matches!(err, ImageStoreError::CorruptLayer { .. }), "{err:?}");

    // Flip a byte near the end (the gzip trailer or data); the digest check must notice.
    let path = store.blob_path(&layer.digest).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0xff;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&path, bytes).unwrap();
    let dest = tempfile::tempdir().unwrap();
    let err = store
        .unpack_layer(&layer.digest, &layer.diff_id, dest.path())
        .unwrap_err();
    assert!(
        matches!(
            err,
            ImageStoreError::CorruptBlob { .. } | ImageStoreError::Unpack { .. }
        ),
        "{err:?}"
    );

    let err = store
        .unpack_layer("sha256:../../etc", &layer.diff_id, dest.path())
        .unwrap_err();
    assert!(matches!(err, ImageStoreError::BadDigest(_)), "{err:?}");
}

#[test]
fn rootfs_mode_keeps_owners_hardlinks_and_empty_dirs() {
    if !is_root("rootfs_mode_keeps_owners_hardlinks_and_empty_dirs") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&tmp.path().join("store")).unwrap();
    let root = tmp.path().join("rootfs");
    write(&root.join("etc/owned"), "owned by 1000\n");
    std::os::unix::fs::chown(root.join("etc/owned"), Some(1000), Some(1001)).unwrap();
    write(&root.join("usr/bin/tool"), "tool\n");
    std::fs::set_permissions(root.join("usr/bin/tool"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    std::fs::hard_link(root.join("usr/bin/tool"), root.join("usr/bin/tool-alias")).unwrap();
    write(&root.join("proc/self-status"), "must not be kept\n");
    std::fs::create_dir_all(root.join("run")).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(root.join("run/socket")).unwrap();
    nix_mkfifo(&root.join("run/fifo"));

    let mut options = LayerOptions::new("", LayerMode::Rootfs);
    options.empty_dirs.push("proc".into());
    options.gzip_level = 1;
    let layer = store.write_layer(&root, &options).unwrap();

    let dest = tmp.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    store.unpack_layer(&layer.digest, &layer.diff_id, &dest).unwrap();
    let owned = std::fs::metadata(dest.join("etc/owned")).unwrap();
    assert_eq!((owned.uid(), owned.gid()), (1000, 1001));
    let tool = std::fs::metadata(dest.join("usr/bin/tool")).unwrap();
    let alias = std::fs::metadata(dest.join("usr/bin/tool-alias")).unwrap();
    assert_eq!(tool.ino(), alias.ino(), "hard link must stay a hard link");
    assert_eq!(tool.mode() & 0o7777, 0o4755);
    assert!(dest.join("proc").is_dir());
    assert!(!dest.join("proc/self-status").exists());
    assert!(!dest.join("run/socket").exists(), "sockets are left out");
    assert!(dest.join("run/fifo").exists(), "FIFOs are kept in rootfs mode");
}

fn nix_mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
}

#[test]
fn bad_prefix_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&tmp.path().join("store")).unwrap();
    let err = store
        .write_layer_from_dir(tmp.path(), "../escape", LayerMode::Reproducible)
        .unwrap_err();
    assert!(matches!(err, ImageStoreError::BadPrefix(_)), "{err:?}");
}

#[test]
fn reproducible_layers_can_have_another_owner() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&tmp.path().join("store")).unwrap();
    let src = tmp.path().join("src");
    write(&src.join("dir/file"), "owned\n");
    let mut options = LayerOptions::new("app", LayerMode::Reproducible);
    options.owner = Some((1000, 1001));
    let layer = store.write_layer(&src, &options).unwrap();
    let blob = std::fs::File::open(store.blob_path(&layer.digest).unwrap()).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(blob));
    let owners: Vec<(String, u64, u64)> = archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let header = e.header();
            (
                e.path().unwrap().display().to_string(),
                header.uid().unwrap(),
                header.gid().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        owners,
        [
            ("app".to_owned(), 0, 0),
            ("app/dir".to_owned(), 1000, 1001),
            ("app/dir/file".to_owned(), 1000, 1001)
        ]
    );
}
