//! Issue 2's acceptance test: push a Python app with the real `git` client to a real `berth server` and check
//! what the tenant, the router and the host see.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::*;

const APP: &str = "hello";
const SERVE_TIMEOUT: Duration = Duration::from_secs(120);

pub(crate) fn push(server: &Server, token: &str, app: &str, repo: &Path) -> std::process::Output {
    let url = format!("http://user:{token}@{}/git/{app}.git", server.api);
    git(repo, &["push", &url, "main"])
}

#[test]
fn git_push_to_an_isolated_routed_app() {
    push_flow("git_push_to_an_isolated_routed_app", &[]);
}

/// The same flow with the server's store on a fresh PostgreSQL database (`BERTH_TEST_POSTGRES_URL`, see
/// `store::testing`).
#[test]
fn git_push_to_an_isolated_routed_app_on_postgres() {
    let test = "git_push_to_an_isolated_routed_app_on_postgres";
    let Some(database) = TestPostgres::new(test) else {
        return;
    };
    push_flow(test, &["--database-url", &database.url]);
}

/// Issue 2's flow on a server started with `server_flags`.
fn push_flow(test: &str, server_flags: &[&str]) {
    if !require(
        test,
        true,
        &["git", "debootstrap", "ip", "nft", "skopeo", "umoci"],
    ) {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let data_dir = work.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    let veths_before: BTreeSet<String> = veths().into_iter().collect();

    prepare_stack(&data_dir);

    let names = HostNames::unique();
    let mut server = Server::start_with(&data_dir, &names, server_flags);

    // First start: an admin token, readable only by root.
    let token_meta = std::fs::metadata(data_dir.join("admin.token")).expect("admin.token exists");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&token_meta.permissions()) & 0o777,
        0o600
    );
    let admin = server.admin_token();

    // Two tenants.
    let alice = last_line(&server.berth_ok(&admin, &["accounts", "create", "alice"]));
    let bob = last_line(&server.berth_ok(&admin, &["accounts", "create", "bob"]));
    assert_ne!(alice, bob);
    let refused = server.berth(&alice, &["accounts", "create", "mallory"]);
    assert!(!refused.status.success(), "a tenant must not create accounts");

    // Names that are not names get a clear error.
    let bad = server.berth(&alice, &["apps", "create", "Not_A_Name"]);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("lowercase"),
        "unclear error: {}",
        text(&bad.stderr)
    );

    server.berth_ok(&alice, &["apps", "create", APP]);
    assert!(server.berth_ok(&alice, &["apps"]).contains(APP));

    // Before any deploy the router knows the app but has nothing to send it to.
    let (status, _) = server.get_app(APP, "/").expect("router answers");
    assert_eq!(status, 503);
    let (status, body) = server.get_app("nosuchapp", "/").expect("router answers");
    assert_eq!(status, 404, "{body}");

    // Push v1 with the real git client.
    let repo = work.path().join("hello");
    app_repo("python-hello", &repo);
    let out = push(&server, &alice, APP, &repo);
    let push_output = text(&out.stderr);
    assert!(
        out.status.success(),
        "git push failed:\n{push_output}\n{}",
        server.log()
    );
    assert!(
        push_output.contains("remote: -----> "),
        "no build output in the push:\n{push_output}"
    );

    let body = server.wait_for_app(APP, "/", SERVE_TIMEOUT, "v1 through the router", |s, _| s == 200);
    assert_eq!(body, "hello from berth v1");

    // The same over HTTPS, with the platform's self-signed `*.DOMAIN` certificate made at first start; and the
    // router's metrics count the app's requests.
    let (status, body) = server
        .get_app_tls(APP, "/")
        .unwrap_or_else(|e| panic!("HTTPS through the router failed: {e}\n{}", server.log()));
    assert_eq!((status, body.as_str()), (200, "hello from berth v1"));
    let metrics = server.router_metrics();
    assert!(
        metrics.contains(&format!(
            "berth_router_requests_total{{app=\"{APP}\",class=\"2xx\"}}"
        )),
        "no 2xx count for {APP} in the router's metrics:\n{metrics}"
    );

    // What the app sees from inside.
    let inspect: serde_json::Value =
        serde_json::from_str(&server.get_app(APP, "/inspect").expect("inspect").1).expect("inspect json");
    let pids: Vec<u64> = inspect["pids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    assert!(
        pids.contains(&1),
        "the instance must have its own PID namespace: {pids:?}"
    );
    assert!(
        pids.len() <= 4,
        "the instance sees processes that are not its own: {pids:?}"
    );
    // Root inside a user namespace mapped onto the account's own range, far from the host's users.
    assert_eq!(inspect["uid"], 0, "{inspect}");
    let uid_map: Vec<u64> = inspect["uid_map"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(uid_map.len(), 3, "one mapping: {uid_map:?}");
    assert_eq!((uid_map[0], uid_map[2]), (0, 65536), "{uid_map:?}");
    assert!(uid_map[1] >= 1 << 20, "host base {}", uid_map[1]);
    let host_hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let app_hostname = inspect["hostname"].as_str().unwrap().to_owned();
    assert_ne!(
        app_hostname,
        host_hostname.trim(),
        "the instance must have its own host name"
    );
    let ps = server.berth_ok(&alice, &["ps", "-a", APP]);
    assert!(
        ps.contains(&app_hostname),
        "`berth ps` does not show the instance {app_hostname}:\n{ps}"
    );
    assert_eq!(
        inspect["memory_limit"].as_str(),
        Some("536870912"),
        "memory limit seen inside: {inspect}"
    );
    assert_eq!(
        inspect["six"].as_str(),
        Some("1.16.0"),
        "the dependency layer is missing"
    );

    // The image in the store is a real OCI image.
    check_images(&data_dir, work.path());

    // The API serves the release's image as a registry, to its owner only.
    let releases: serde_json::Value = http()
        .get(format!("{}/v1/apps/{APP}/releases", server.api_url()))
        .bearer_auth(&alice)
        .send()
        .expect("api answers")
        .json()
        .expect("releases as JSON");
    let digest = releases[0]["image_digest"].as_str().unwrap().to_owned();
    let image = format!("docker://{}/{APP}:v1", server.api);
    let inspect_as = |token: &str| {
        Command::new("skopeo")
            .args([
                "inspect",
                "--tls-verify=false",
                "--creds",
                &format!("x:{token}"),
                &image,
            ])
            .output()
            .expect("running skopeo")
    };
    let out = inspect_as(&alice);
    assert!(out.status.success(), "skopeo inspect: {}", text(&out.stderr));
    let inspected: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inspected["Digest"], digest.as_str());
    assert!(
        !inspect_as(&bob).status.success(),
        "bob must not pull alice's image"
    );

    // Scale out: two instances that both answer.
    server.berth_ok(&alice, &["scale", "web=2", "-a", APP]);
    let mut hostnames = BTreeSet::new();
    for _ in 0..600 {
        if let Some((200, body)) = server.get_app(APP, "/inspect") {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            hostnames.insert(v["hostname"].as_str().unwrap().to_owned());
        }
        if hostnames.len() == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        hostnames.len(),
        2,
        "web=2 did not give two answering instances\n{}",
        server.log()
    );
    let ps = server.berth_ok(&alice, &["ps", "-a", APP]);
    assert_eq!(ps.matches("running").count(), 2, "{ps}");

    // Scale to zero: 503.
    server.berth_ok(&alice, &["scale", "web=0", "-a", APP]);
    server.wait_for_app(APP, "/", SERVE_TIMEOUT, "503 after web=0", |s, _| s == 503);
    server.berth_ok(&alice, &["scale", "web=1", "-a", APP]);
    server.wait_for_app(APP, "/", SERVE_TIMEOUT, "200 after web=1", |s, _| s == 200);

    // Another tenant can neither see nor change nor push to it.
    let bobs_apps = server.berth_ok(&bob, &["apps"]);
    assert!(!bobs_apps.contains(APP), "bob sees alice's app: {bobs_apps}");
    let response = http()
        .get(format!("{}/v1/apps/{APP}", server.api_url()))
        .bearer_auth(&bob)
        .send()
        .expect("api answers");
    assert_eq!(response.status().as_u16(), 404);
    assert!(!server
        .berth(&bob, &["scale", "web=3", "-a", APP])
        .status
        .success());
    assert!(!server.berth(&bob, &["apps", "delete", APP]).status.success());
    let out = push(&server, &bob, APP, &repo);
    assert!(!out.status.success(), "bob's push to alice's app must be refused");
    let wrong = push(&server, "berth_not_a_token", APP, &repo);
    assert!(
        !wrong.status.success(),
        "a push with a wrong token must be refused"
    );

    // Redeploy: v2 replaces v1.
    edit(&repo.join("app.py"), "hello from berth v1", "hello from berth v2");
    commit_all(&repo, "second version");
    let out = push(&server, &alice, APP, &repo);
    assert!(out.status.success(), "second push failed:\n{}", text(&out.stderr));
    server.wait_for_app(APP, "/", SERVE_TIMEOUT, "v2", |s, b| {
        s == 200 && b == "hello from berth v2"
    });

    // A failed build is refused and the running release keeps serving.
    let releases_before = server.berth_ok(&alice, &["releases", "-a", APP]);
    std::fs::write(
        repo.join("requirements.txt"),
        "six==1.16.0\nthis is not a requirement ===\n",
    )
    .unwrap();
    edit(&repo.join("app.py"), "hello from berth v2", "hello from berth v3");
    commit_all(&repo, "broken requirements");
    let out = push(&server, &alice, APP, &repo);
    let push_output = text(&out.stderr);
    assert!(
        !out.status.success(),
        "a failing build must fail the push:\n{push_output}"
    );
    assert!(
        push_output.contains("build failed"),
        "the reason is not on screen:\n{push_output}"
    );
    for _ in 0..10 {
        assert_eq!(
            server.get_app(APP, "/"),
            Some((200, "hello from berth v2".to_owned()))
        );
    }
    assert_eq!(server.berth_ok(&alice, &["releases", "-a", APP]), releases_before);

    // A Node.js app, the builder's Express sample: npm installs express during the build, the image's
    // default web process is `npm start`.
    let express_repo = work.path().join("express");
    app_repo_from(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../builder/buildpacks/tests/fixtures/express"),
        &express_repo,
    );
    server.berth_ok(&alice, &["apps", "create", "express"]);
    let out = push(&server, &alice, "express", &express_repo);
    let push_output = text(&out.stderr);
    assert!(
        out.status.success(),
        "git push of the Express app failed:\n{push_output}\n{}",
        server.log()
    );
    assert!(
        push_output.contains("remote: -----> Node.js app detected")
            && push_output.contains("remote: -----> Installing dependencies with npm ci"),
        "{push_output}"
    );
    let body = server.wait_for_app("express", "/", SERVE_TIMEOUT, "the Express app", |s, _| s == 200);
    assert_eq!(body, "hello from express\n");
    server.berth_ok(&alice, &["apps", "delete", "express"]);

    // Deleting an app stops its instances.
    server.berth_ok(&alice, &["apps", "delete", APP]);
    server.wait_for_app(APP, "/", SERVE_TIMEOUT, "404 after delete", |s, _| s == 404);

    // After the server stops, nothing it made is left on the host.
    let status = server.stop();
    assert!(
        status.success(),
        "berth server exited with {status}:\n{}",
        server.log()
    );
    let left = leftovers(&names, &data_dir);
    assert!(left.is_empty(), "left behind after stop: {left:#?}");
    let new_veths = veths_left_by(&names, &veths_before);
    assert!(new_veths.is_empty(), "veths left behind: {new_veths:?}");
    let processes = processes_mentioning(data_dir.to_str().unwrap());
    assert!(processes.is_empty(), "processes left behind: {processes:#?}");
}

/// A running server (with the cached stack) and one tenant who owns `app`: the start of every push test.
/// Returns the server and the tenant's token.
pub(crate) fn server_with_app(data_dir: &Path, account: &str, app: &str) -> (Server, String) {
    server_with_app_and_flags(data_dir, account, app, &[]).0
}

/// What a push test needs before its server: root and the tools (`None`: skipped, `require` said so), and
/// a temp dir holding an empty `data` dir.
pub(crate) fn push_test_dirs(test: &str) -> Option<(tempfile::TempDir, std::path::PathBuf)> {
    if !require(test, true, &["git", "debootstrap", "ip"]) {
        return None;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let data_dir = work.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    Some((work, data_dir))
}

/// [`server_with_app`] with more `berth server` flags; also returns the server's host names.
pub(crate) fn server_with_app_and_flags(
    data_dir: &Path,
    account: &str,
    app: &str,
    flags: &[&str],
) -> ((Server, String), HostNames) {
    prepare_stack(data_dir);
    let names = HostNames::unique();
    let server = Server::start_with(data_dir, &names, flags);
    let admin = server.admin_token();
    let token = last_line(&server.berth_ok(&admin, &["accounts", "create", account]));
    server.berth_ok(&token, &["apps", "create", app]);
    ((server, token), names)
}

/// The stack is built up front, as an operator would (`berth stack build`), into a data dir kept across test
/// runs under the target dir (debootstrap and apt take minutes): the same `berth-stack-cache` the builder
/// crates' tests use, so CI builds the stack once. The test's own data dir gets a copy of it.
pub(crate) fn prepare_stack(data_dir: &Path) {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("berth-stack-cache");
    std::fs::create_dir_all(&cache).unwrap();
    let stack = Command::new(berth_bin())
        .args(["stack", "build", "--data-dir", cache.to_str().unwrap()])
        .status()
        .expect("berth stack build");
    assert!(stack.success(), "berth stack build failed");
    for dir in ["images", "stacks"] {
        let copy = Command::new("cp")
            .arg("-a")
            .arg(cache.join(dir))
            .arg(data_dir)
            .status()
            .unwrap();
        assert!(copy.success(), "copying the cached stack's {dir}");
    }
}

pub(crate) fn last_line(output: &str) -> String {
    output
        .lines()
        .last()
        .expect("output has a line")
        .trim()
        .to_owned()
}

fn edit(path: &Path, from: &str, to: &str) {
    let content = std::fs::read_to_string(path).unwrap();
    assert!(content.contains(from));
    std::fs::write(path, content.replace(from, to)).unwrap();
}

/// Every tagged image in the store passes skopeo (layout and blob digests) and umoci (diff_ids, unpacking).
fn check_images(data_dir: &Path, scratch: &Path) {
    let layout = data_dir.join("images");
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(layout.join("index.json")).unwrap()).unwrap();
    let tags: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert!(!tags.is_empty(), "no tagged image in {index}");
    let tag = &tags[tags.len() - 1];
    let source = format!("oci:{}:{tag}", layout.display());
    let inspect = Command::new("skopeo")
        .args(["inspect", &source])
        .output()
        .unwrap();
    assert!(
        inspect.status.success(),
        "skopeo inspect: {}",
        text(&inspect.stderr)
    );
    let copy_dest = format!("oci:{}:{tag}", scratch.join("copy").display());
    let copy = Command::new("skopeo")
        .args(["copy", &source, &copy_dest])
        .output()
        .unwrap();
    assert!(copy.status.success(), "skopeo copy: {}", text(&copy.stderr));
    let bundle = scratch.join("bundle");
    let unpack = Command::new("umoci")
        .args([
            "unpack",
            "--rootless",
            "--image",
            &format!("{}:{tag}", layout.display()),
        ])
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(unpack.status.success(), "umoci unpack: {}", text(&unpack.stderr));
    assert!(
        bundle.join("rootfs/app/app.py").is_file(),
        "the app layer is missing from the unpacked image"
    );
    assert!(
        bundle.join("rootfs/usr/bin/python3").exists(),
        "the stack layer is missing"
    );
    let _ = std::fs::remove_dir_all(&bundle);
}
