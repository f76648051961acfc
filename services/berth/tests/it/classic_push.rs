//! An app that names a classic buildpack in `.buildpacks` (a git repository, here a local one: the test
//! server allows `file://` URLs) is built by it on `git push`: `bin/detect`, `bin/compile`, `bin/release` in
//! the stack, and its `.profile.d` script sourced when the web process starts.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use crate::end_to_end::server_with_app;
use crate::support::*;

const APP: &str = "classic";

const DETECT: &str = "#!/bin/sh\n[ -f \"$1/greeting.txt\" ] && echo Greeter\n";
const COMPILE: &str = r#"#!/bin/sh
set -eu
echo "-----> Compiling the greeter"
cat > "$1/server.py" <<'PY'
import os, socketserver
from http.server import BaseHTTPRequestHandler
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = (os.environ.get("GREETING", "no profile.d") + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
socketserver.TCPServer.allow_reuse_address = True
with socketserver.TCPServer(("0.0.0.0", int(os.environ["PORT"])), Handler) as s:
    s.serve_forever()
PY
mkdir -p "$1/.profile.d"
echo 'export GREETING="$(cat /app/greeting.txt) via profile.d"' > "$1/.profile.d/greeting.sh"
echo "       wrote server.py"
"#;
const RELEASE: &str = "#!/bin/sh\nprintf -- '---\\ndefault_process_types:\\n  web: python3 server.py\\n'\n";

fn write_script(dir: &Path, name: &str, body: &str) {
    let path = dir.join("bin").join(name);
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn an_app_naming_a_classic_buildpack_is_built_by_it() {
    if !require(
        "an_app_naming_a_classic_buildpack_is_built_by_it",
        true,
        &["git", "debootstrap", "ip", "nft"],
    ) {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let data_dir = work.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();

    // The buildpack, in a git repository of its own.
    let buildpack = work.path().join("greeter-buildpack");
    std::fs::create_dir_all(buildpack.join("bin")).unwrap();
    write_script(&buildpack, "detect", DETECT);
    write_script(&buildpack, "compile", COMPILE);
    write_script(&buildpack, "release", RELEASE);
    git_ok(&buildpack, &["init", "-q", "-b", "main"]);
    commit_all(&buildpack, "the greeter buildpack");

    // The app names it.
    let repo = work.path().join("app");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(repo.join("greeting.txt"), "hello from a classic buildpack").unwrap();
    std::fs::write(
        repo.join(".buildpacks"),
        format!("file://{}\n", buildpack.display()),
    )
    .unwrap();
    git_ok(&repo, &["init", "-q", "-b", "main"]);
    commit_all(&repo, "first version");

    let (mut server, token) = server_with_app(&data_dir, "classic-user", APP);
    let url = format!("http://user:{token}@{}/git/{APP}.git", server.api);
    let out = git(&repo, &["push", &url, "main"]);
    let push = text(&out.stderr);
    assert!(out.status.success(), "push failed:\n{push}\n{}", server.log());
    assert!(push.contains("classic buildpack"), "{push}");
    assert!(
        push.contains("Compiling the greeter"),
        "the compile output is not in the push:\n{push}"
    );
    let body = server.wait_for_app(APP, "/", Duration::from_secs(120), "the classic app", |s, _| {
        s == 200
    });
    assert_eq!(body.trim(), "hello from a classic buildpack via profile.d");

    let status = server.stop();
    assert!(status.success(), "server exit: {status:?}\n{}", server.log());
}
