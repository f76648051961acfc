//! A pushed Dockerfile `FROM 127.0.0.1:PORT/x:1`: the base is pulled from Debian's real `docker-registry` on
//! loopback (allowed by `--insecure-loopback-registries`), built on, and the app runs as the Dockerfile's
//! `USER` with its exec-form `CMD`, in its `WORKDIR`, served through the router.

use std::time::Duration;

use crate::end_to_end::server_with_app_and_flags;
use crate::image_deploy::busybox_in_a_registry;
use crate::support::*;

const APP: &str = "fromreg";

#[test]
fn a_dockerfile_from_a_registry_image_runs_as_its_user() {
    let test = "a_dockerfile_from_a_registry_image_runs_as_its_user";
    if !require(
        test,
        true,
        &["git", "debootstrap", "skopeo", "docker-registry", "ip", "nft"],
    ) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (_, registry, reference) = busybox_in_a_registry(work.path());

    let data_dir = work.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    let ((mut server, token), _names) =
        server_with_app_and_flags(&data_dir, "from-user", APP, &["--insecure-loopback-registries"]);
    let repo = work.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(
        repo.join("Dockerfile"),
        format!(
            "FROM {reference}\n\
             RUN mkdir -p /etc /srv && echo 'nobody:x:65534:65534:nobody:/home/nobody:/bin/sh' >> /etc/passwd \
             && chmod 777 /srv\n\
             USER nobody\n\
             WORKDIR /srv\n\
             CMD [\"/bin/busybox\", \"sh\", \"-c\", \"echo uid=$(busybox id -u) home=$HOME cwd=$(busybox pwd) > index.html \
             && exec busybox httpd -f -p $PORT -h .\"]\n"
        ),
    )
    .unwrap();
    git_ok(&repo, &["init", "-q", "-b", "main"]);
    commit_all(&repo, "from a registry");
    let url = format!("http://user:{token}@{}/git/{APP}.git", server.api);
    let out = git(&repo, &["push", &url, "main"]);
    let push = text(&out.stderr);
    assert!(out.status.success(), "push failed:\n{push}\n{}", server.log());
    assert!(push.contains(&format!("Pulling {reference}")), "{push}");
    let body = server.wait_for_app(APP, "/", Duration::from_secs(120), "the app", |s, b| {
        s == 200 && b.contains("uid=")
    });
    assert_eq!(body.trim(), "uid=65534 home=/home/nobody cwd=/srv");
    drop(registry);
    let status = server.stop();
    assert!(status.success(), "server exit: {status:?}\n{}", server.log());
}
