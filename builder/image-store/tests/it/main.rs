//! Integration tests of the image store: real layouts checked with skopeo and umoci.

mod images;
mod import;
mod layer_import;
mod layers;
mod whiteouts;
mod zstd;

use std::path::Path;
use std::process::Command;

/// Whether `tool` is installed. Missing: skip loudly, or fail under CI.
pub fn have_tool(test: &str, tool: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test} needs {tool}, which is not installed"
        );
        eprintln!("skipping {test}: needs {tool}");
    }
    found
}

/// Whether we run as root. Not root: skip loudly, or fail under CI.
pub fn is_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        assert!(std::env::var_os("CI").is_none(), "{test} needs root");
        eprintln!("skipping {test}: needs root");
    }
    root
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn write(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}
