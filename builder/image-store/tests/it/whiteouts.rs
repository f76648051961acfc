//! OCI whiteouts: written from an overlayfs upper dir, applied onto a merged tree, turned back into overlayfs
//! whiteouts for a layer's own directory, and read by umoci.

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;

use flate2::read::GzDecoder;
use image_store::{ImageConfig, ImageStore, ImageStoreError, LayerInfo, LayerMode, LayerOptions};
use sha2::{Digest, Sha256};

use crate::{have_tool, is_root, run, write};

/// A layer blob made of exactly these entries (path, content; a path ending in `/` is a directory), for
/// layers that Berth's writer would never produce.
fn raw_layer(store: &ImageStore, entries: &[(&str, &str)]) -> LayerInfo {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, content) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        if path.ends_with('/') {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
        } else {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(content.len() as u64);
        }
        // `append_data` refuses `..`; hostile names are written into the header directly.
        header.set_path("placeholder").unwrap();
        let name = header.as_old_mut().name.as_mut();
        name.fill(0);
        name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_cksum();
        tar.append(&header, content.as_bytes()).unwrap();
    }
    let tar_bytes = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar_bytes).unwrap();
    let blob = gz.finish().unwrap();
    let digest = store.put_blob(&blob).unwrap();
    LayerInfo {
        digest,
        diff_id: format!("sha256:{}", hex::encode(Sha256::digest(&tar_bytes))),
        size: blob.len() as u64,
    }
}

fn entry_names(store: &ImageStore, layer: &LayerInfo) -> Vec<String> {
    let mut bytes = Vec::new();
    GzDecoder::new(std::fs::File::open(store.blob_path(&layer.digest).unwrap()).unwrap())
        .read_to_end(&mut bytes)
        .unwrap();
    let mut archive = tar::Archive::new(bytes.as_slice());
    archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect()
}

fn mknod_whiteout(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    let rc = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR, libc::makedev(0, 0)) };
    assert_eq!(rc, 0);
}

fn set_opaque(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let name = c"trusted.overlay.opaque";
    // SAFETY: both strings are NUL-terminated and outlive the call; the value is one byte.
    let rc = unsafe { libc::lsetxattr(c.as_ptr(), name.as_ptr(), b"y".as_ptr().cast(), 1, 0) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
}

fn opaque_xattr(path: &Path) -> Option<u8> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let mut value = [0u8; 4];
    // SAFETY: both strings are NUL-terminated and outlive the call; `value` is writable for its length.
    let n = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    (n == 1).then_some(value[0])
}

#[test]
fn upper_dir_whiteouts_round_trip_and_umoci_applies_them() {
    if !is_root("upper_dir_whiteouts_round_trip_and_umoci_applies_them") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&tmp.path().join("store")).unwrap();

    let lower = tmp.path().join("lower");
    write(&lower.join("gone"), "deleted by the upper layer\n");
    write(&lower.join("other"), "kept\n");
    write(&lower.join("dir/old"), "hidden by the opaque dir\n");
    write(&lower.join("tree/deep/file"), "deleted with its tree\n");
    let lower_layer = store
        .write_layer(&lower, &LayerOptions::new("", LayerMode::Rootfs))
        .unwrap();

    let upper = tmp.path().join("upper");
    write(&upper.join("added"), "new\n");
    write(&upper.join("dir/new"), "new in the opaque dir\n");
    set_opaque(&upper.join("dir"));
    mknod_whiteout(&upper.join("gone"));
    mknod_whiteout(&upper.join("tree"));
    let mut options = LayerOptions::new("", LayerMode::Rootfs);
    options.overlay_upper = true;
    let upper_layer = store.write_layer(&upper, &options).unwrap();
    assert_eq!(
        entry_names(&store, &upper_layer),
        [
            "added",
            "dir",
            "dir/.wh..wh..opq",
            "dir/new",
            ".wh.gone",
            ".wh.tree"
        ],
    );
    // Without `overlay_upper` the devices are left out, as before.
    let plain = store
        .write_layer(&upper, &LayerOptions::new("", LayerMode::Rootfs))
        .unwrap();
    assert_eq!(entry_names(&store, &plain), ["added", "dir", "dir/new"]);

    // Applied onto the merged tree below: deletions happen.
    let merged = tmp.path().join("merged");
    std::fs::create_dir(&merged).unwrap();
    store
        .apply_layer(&lower_layer.digest, &lower_layer.diff_id, &merged)
        .unwrap();
    store
        .apply_layer(&upper_layer.digest, &upper_layer.diff_id, &merged)
        .unwrap();
    let mut files: Vec<String> = walkdir::WalkDir::new(&merged)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .map(|e| {
            e.unwrap()
                .path()
                .strip_prefix(&merged)
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    files.sort();
    assert_eq!(files, ["added", "dir", "dir/new", "other"]);

    // Unpacked on its own (an overlay lower dir): overlayfs whiteouts again.
    let own = tmp.path().join("own");
    std::fs::create_dir(&own).unwrap();
    store
        .unpack_layer(&upper_layer.digest, &upper_layer.diff_id, &own)
        .unwrap();
    for name in ["gone", "tree"] {
        let meta = std::fs::symlink_metadata(own.join(name)).unwrap();
        assert!(meta.file_type().is_char_device(), "{name}");
        assert_eq!(meta.rdev(), 0, "{name}");
    }
    assert_eq!(opaque_xattr(&own.join("dir")), Some(b'y'));
    assert_eq!(opaque_xattr(&own), None);
    assert!(!own.join(".wh.gone").exists());

    // umoci applies the whiteouts the same way.
    if !have_tool("upper_dir_whiteouts_round_trip_and_umoci_applies_them", "umoci") {
        return;
    }
    store
        .put_image("whiteouts", &[lower_layer, upper_layer], &ImageConfig::default())
        .unwrap();
    let bundle = tmp.path().join("bundle");
    run(Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:whiteouts", store.root().display()))
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    assert!(rootfs.join("added").is_file());
    assert!(rootfs.join("other").is_file());
    assert!(rootfs.join("dir/new").is_file());
    for gone in ["gone", "tree", "dir/old"] {
        assert!(!rootfs.join(gone).exists(), "{gone} survived umoci");
    }
}

#[test]
fn whiteouts_spare_what_their_own_layer_adds() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&tmp.path().join("store")).unwrap();
    let merged = tmp.path().join("merged");
    write(&merged.join("d/old"), "below\n");
    write(&merged.join("keep"), "below\n");
    write(&merged.join("other"), "below\n");
    let outside = tmp.path().join("outside");
    write(&outside.join("f"), "must survive\n");
    std::os::unix::fs::symlink(&outside, merged.join("link")).unwrap();

    let layer = raw_layer(
        &store,
        &[
            ("d/", ""),
            ("d/new", "this layer\n"),
            ("d/.wh..wh..opq", ""),
            ("keep", "this layer\n"),
            (".wh.keep", ""),
            ("./.wh.missing", ""),
            ("link/.wh.f", ""),
            ("nowhere/.wh.x", ""),
        ],
    );
    store.apply_layer(&layer.digest, &layer.diff_id, &merged).unwrap();
    assert_eq!(
        std::fs::read_to_string(merged.join("d/new")).unwrap(),
        "this layer\n"
    );
    assert!(!merged.join("d/old").exists());
    assert_eq!(
        std::fs::read_to_string(merged.join("keep")).unwrap(),
        "this layer\n"
    );
    assert!(merged.join("other").exists());
    assert!(
        outside.join("f").exists(),
        "a whiteout followed a symlink out of the tree"
    );
}

#[test]
fn hostile_whiteouts_and_reserved_names_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&tmp.path().join("store")).unwrap();
    for name in [".wh..wh.plnk", "a/.wh..", ".wh...", ".wh."] {
        let dest = tmp.path().join("dest");
        std::fs::create_dir_all(&dest).unwrap();
        let layer = raw_layer(&store, &[(name, "")]);
        let err = store
            .apply_layer(&layer.digest, &layer.diff_id, &dest)
            .unwrap_err();
        assert!(
            matches!(err, ImageStoreError::HostileEntry { .. }),
            "{name}: {err:?}"
        );
    }
    let src = tmp.path().join("src");
    write(&src.join("sub/.wh.sneaky"), "");
    let err = store
        .write_layer_from_dir(&src, "app", LayerMode::Reproducible)
        .unwrap_err();
    assert!(
        format!("{:?}", err).contains("reserved for OCI whiteouts"),
        "{err:?}"
    );
}
