//! `berth apps create --image` and `berth deploy --image` against a real `berth server`: an image made with
//! the image store (busybox's httpd serving a page) is pushed with the real skopeo to Debian's real
//! `docker-registry` on loopback, deployed from there, and served through the router; bad references and
//! failed pulls give clear errors while the running release keeps serving.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use image_store::{ImageConfig, ImageStore, LayerMode};

use crate::end_to_end::last_line;
use crate::images_push::Registry;
use crate::support::*;

const PAGE: &str = "hello from an image deployed by reference\n";

/// An OCI layout at `dir/layout` tagged `x1`: one layer with a static busybox as /bin/busybox and /bin/sh,
/// and /www/index.html; Cmd in shell form runs busybox's httpd on $PORT.
fn busybox_image(dir: &Path) -> std::path::PathBuf {
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    std::fs::create_dir_all(tree.join("www")).unwrap();
    std::fs::copy("/bin/busybox", tree.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", tree.join("bin/sh")).unwrap();
    std::fs::write(tree.join("www/index.html"), PAGE).unwrap();
    let layout = dir.join("layout");
    let store = ImageStore::open(&layout).unwrap();
    let layer = store
        .write_layer_from_dir(&tree, "", LayerMode::Reproducible)
        .unwrap();
    let config = ImageConfig {
        env: BTreeMap::from([("PATH".to_owned(), "/bin".to_owned())]),
        cmd: vec![
            "/bin/sh".into(),
            "-c".into(),
            "busybox httpd -f -p $PORT -h /www".into(),
        ],
        history: vec!["busybox and a page".into()],
        ..ImageConfig::default()
    };
    store.put_image("x1", &[layer], &config).unwrap();
    layout
}

/// [`busybox_image`] pushed as `x:1` to a fresh `docker-registry` on loopback: the layout, the registry
/// (stopped when dropped) and the reference.
pub(crate) fn busybox_in_a_registry(dir: &Path) -> (std::path::PathBuf, Registry, String) {
    let layout = busybox_image(dir);
    let registry = Registry::start(dir);
    let reference = format!("{}/x:1", registry.addr);
    let out = Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:x1", layout.display()))
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "skopeo push: {}", output_text(&out));
    (layout, registry, reference)
}

fn output_text(out: &std::process::Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

#[test]
fn an_image_from_a_registry_is_deployed_and_served() {
    let test = "an_image_from_a_registry_is_deployed_and_served";
    if !require(test, true, &["skopeo", "docker-registry", "ip", "nft"]) {
        return;
    }
    if !Path::new("/bin/busybox").is_file() {
        let why = format!("skipping {test}: needs /bin/busybox (Debian's busybox-static)");
        assert!(std::env::var_os("CI").is_none(), "{why}");
        eprintln!("{why}");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (layout, registry, reference) = busybox_in_a_registry(work.path());
    // The same image with zstd layers (recompressed into a layout of its own first: pushed straight, skopeo
    // reuses the gzip blobs the registry has), which Berth imports too.
    let zstd_layout = work.path().join("zstd-layout");
    let zstd = format!("{}/zstd/x:1", registry.addr);
    for (from, to) in [
        (
            format!("oci:{}:x1", layout.display()),
            format!("oci:{}:x1", zstd_layout.display()),
        ),
        (
            format!("oci:{}:x1", zstd_layout.display()),
            format!("docker://{zstd}"),
        ),
    ] {
        let out = Command::new("skopeo")
            .args([
                "copy",
                "--dest-tls-verify=false",
                "--dest-compress-format",
                "zstd",
            ])
            .args([&from, &to])
            .output()
            .unwrap();
        assert!(out.status.success(), "skopeo copy to {to}: {}", output_text(&out));
    }

    let data_dir = work.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    let names = HostNames::unique();
    let mut server = Server::start(&data_dir, &names);
    let admin = server.admin_token();
    let token = last_line(&server.berth_ok(&admin, &["accounts", "create", "image-user"]));

    let out = server.berth(
        &token,
        &[
            "apps",
            "create",
            "web1",
            "--image",
            &reference,
            "--src-tls-verify=false",
        ],
    );
    let shown = output_text(&out);
    assert!(out.status.success(), "{shown}\n{}", server.log());
    for line in [
        format!("-----> Pulling {reference}"),
        "-----> Imported 1 layer(s)".to_owned(),
        "       web: busybox httpd -f -p $PORT -h /www".to_owned(),
        "-----> Released v1".to_owned(),
        "v1 deployed to http://web1.".to_owned(),
    ] {
        assert!(shown.contains(&line), "no {line:?} in:\n{shown}");
    }
    let body = server.wait_for_app("web1", "/", Duration::from_secs(60), "web1", |s, _| s == 200);
    assert_eq!(body, PAGE);

    // Clear errors, and v1 keeps serving.
    let missing_tag = format!("{}/x:nope", registry.addr);
    let cases: &[(&[&str], &str)] = &[
        (&["deploy", "-a", "web1", "--image", "x:1"], "names no registry"),
        (
            &[
                "deploy",
                "-a",
                "web1",
                "--image",
                &missing_tag,
                "--src-tls-verify=false",
            ],
            "cannot pull",
        ),
        // A plain-HTTP registry with TLS verification on.
        (&["deploy", "-a", "web1", "--image", &reference], "cannot pull"),
        (&["deploy", "-a", "web1"], "pass --image"),
    ];
    for (args, want) in cases {
        let out = server.berth(&token, args);
        let shown = output_text(&out);
        assert!(!out.status.success(), "{args:?} succeeded: {shown}");
        assert!(shown.contains(want), "{args:?}: want {want:?} in {shown}");
        assert!(!shown.contains(&token), "the token is never printed");
    }
    let out = server.berth(&token, &["apps", "create", "web2", "--image", "registry/x:1"]);
    assert!(!out.status.success());
    assert!(
        output_text(&out).contains("no registry host"),
        "{}",
        output_text(&out)
    );
    let apps = server.berth_ok(&token, &["apps"]);
    assert!(
        !apps.contains("web2"),
        "a bad reference is refused before the app exists: {apps}"
    );
    let releases = server.berth_ok(&token, &["releases", "-a", "web1"]);
    assert!(!releases.contains("v2"), "{releases}");
    assert_eq!(
        server.get_app("web1", "/").map(|(s, b)| (s, b == PAGE)),
        Some((200, true))
    );

    // The zstd image deploys and serves the same page (the agent unpacks zstd layers).
    let out = server.berth(
        &token,
        &["deploy", "-a", "web1", "--image", &zstd, "--src-tls-verify=false"],
    );
    let shown = output_text(&out);
    assert!(out.status.success(), "{shown}\n{}", server.log());
    assert!(shown.contains("-----> Released v2"), "{shown}");
    let body = server.wait_for_app("web1", "/", Duration::from_secs(60), "web1 v2", |s, _| s == 200);
    assert_eq!(body, PAGE);

    let status = server.stop();
    assert!(status.success(), "server exit: {status:?}\n{}", server.log());
    drop(registry);
}
