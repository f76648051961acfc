//! Integration tests of the Dockerfile builder. A custom `main` (no libtest harness) because this test binary
//! is also the build container's init program: the builder re-executes it with `container::INIT_ARG`.

mod builds;
mod registry;

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;

type Test = (&'static str, Needs, fn());

#[derive(Clone, Copy, PartialEq, Eq)]
enum Needs {
    Nothing,
    /// Root, debootstrap (once, for the shared stack), skopeo and umoci.
    RootAndTools,
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some(container::INIT_ARG) {
        container::init::main();
    }
    let ci = std::env::var_os("CI").is_some();
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let missing = missing_requirements();
    let mut failed = Vec::new();
    for (name, needs, test) in builds::TESTS.iter().chain(registry::TESTS) {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        if *needs == Needs::RootAndTools {
            if let Some(missing) = &missing {
                assert!(!ci, "{name} needs {missing} (CI is set, so not skipping)");
                println!("skipping {name}: needs {missing}");
                continue;
            }
        }
        println!("test {name} ...");
        match std::panic::catch_unwind(AssertUnwindSafe(test)) {
            Ok(()) => println!("test {name} ... ok"),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed.push(*name);
            }
        }
    }
    if missing.is_none() {
        let parent = builds::cgroup_parent();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        if let Err(e) = runtime.block_on(cgroups::remove_children(&parent, true)) {
            println!("removing cgroup {parent}: {e}");
            failed.push("cleanup");
        }
    }
    if !failed.is_empty() {
        println!("failed: {failed:?}");
        std::process::exit(1);
    }
}

fn missing_requirements() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("root".into());
    }
    for tool in ["debootstrap", "skopeo", "umoci", "setpriv"] {
        let found = ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/bin"]
            .iter()
            .any(|dir| std::path::Path::new(dir).join(tool).exists());
        if !found {
            return Some(tool.into());
        }
    }
    None
}

/// The stack and image store shared with the stack and buildpacks crates' tests, kept across runs
/// (debootstrap takes more than a minute).
pub fn shared_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("berth-stack-cache")
}
