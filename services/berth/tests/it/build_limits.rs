//! A build that exhausts its memory (the `memory-hog` sample), pushed with the real `git` client to a real
//! `berth server` started with a small `--build-memory`: the push fails with the out-of-memory reason read
//! from the build's cgroup, the running release keeps serving, and no build cgroup is left.

use std::path::Path;
use std::time::Duration;

use crate::end_to_end::{push_test_dirs, server_with_app_and_flags};
use crate::support::*;

const APP: &str = "hog";

#[test]
fn a_build_that_exhausts_its_memory_fails_with_the_reason() {
    let Some((work, data_dir)) = push_test_dirs("a_build_that_exhausts_its_memory_fails_with_the_reason")
    else {
        return;
    };
    let ((mut server, token), names) =
        server_with_app_and_flags(&data_dir, "hog-owner", APP, &["--build-memory", "256M"]);

    // A first release that serves.
    let repo = work.path().join("repo");
    app_repo("dockerfile-hello", &repo);
    let url = format!("http://user:{token}@{}/git/{APP}.git", server.api);
    let out = git(&repo, &["push", &url, "main"]);
    assert!(
        out.status.success(),
        "push failed:\n{}\n{}",
        text(&out.stderr),
        server.log()
    );
    server.wait_for_app(APP, "/", Duration::from_secs(120), "v1", |s, b| {
        s == 200 && b.contains(" v1 ")
    });
    let releases_before = server.berth_ok(&token, &["releases", "-a", APP]);

    // The sample whose build needs a gigabyte.
    let hog = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures/memory-hog/Dockerfile");
    std::fs::copy(hog, repo.join("Dockerfile")).unwrap();
    commit_all(&repo, "a build that exhausts its memory");
    let out = git(&repo, &["push", &url, "main"]);
    let push = text(&out.stderr);
    assert!(!out.status.success(), "the push must fail:\n{push}");
    let reason =
        "-----> Build failed: out of memory (limit 256 MiB) while running `python3 -c \"data = b'x' * \
                  (1 << 30); print(len(data))\"`; make the step use less memory";
    assert!(push.contains(reason), "the reason is not on screen:\n{push}");

    // The running release keeps serving; no release was made.
    for _ in 0..5 {
        let (status, body) = server.get_app(APP, "/").expect("the app answers");
        assert_eq!(status, 200);
        assert!(body.contains(" v1 "), "{body}");
    }
    assert_eq!(server.berth_ok(&token, &["releases", "-a", APP]), releases_before);

    // The build's cgroup is gone (the parent of builds stays until the server stops).
    for controller in ["memory", "pids", "cpu"] {
        let builds = Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(&names.cgroup_parent)
            .join("builds");
        let left: Vec<_> = std::fs::read_dir(&builds)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "build cgroups left: {left:?}");
    }

    let status = server.stop();
    assert!(status.success(), "server exit: {status:?}\n{}", server.log());
    let left = leftovers(&names, &data_dir);
    assert!(left.is_empty(), "left behind after stop: {left:#?}");
}
