//! A build's sandbox on real cgroups, as root: past the deadline `within` kills the build's processes and
//! says so; a sandbox dropped without `remove` (a cancelled build) leaves nothing behind.

use std::process::{Child, Command};
use std::time::Duration;

use build_sandbox::{BuildSandbox, LimitExceeded, SandboxConfig};

fn root_or_skip(test: &str) -> bool {
    if cgroups::available() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test} needs root (CI is set, so not skipping)"
    );
    println!("skipping {test}: needs root");
    false
}

fn config(test: &str) -> SandboxConfig {
    SandboxConfig {
        cgroup_parent: format!("berth-it-sandbox-{test}-{}", std::process::id()),
        ..SandboxConfig::default()
    }
}

/// A `sleep` inside the sandbox's cgroup, as a build step's process would be.
fn sleeper(sandbox: &BuildSandbox) -> Child {
    let joins: String = sandbox
        .cgroup_dirs()
        .iter()
        .map(|d| format!("echo $$ > {}/cgroup.procs\n", d.display()))
        .collect();
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("{joins}exec sleep 600"))
        .spawn()
        .unwrap();
    let procs = sandbox.cgroup_dirs()[0].join("cgroup.procs");
    while std::fs::read_to_string(&procs).unwrap().trim().is_empty() {
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

#[tokio::test]
async fn past_the_deadline_the_build_is_killed_and_told() {
    if !root_or_skip("past_the_deadline_the_build_is_killed_and_told") {
        return;
    }
    let config = config("deadline");
    let sandbox = BuildSandbox::create(&config, "slow", Duration::from_secs(1))
        .await
        .unwrap();
    let mut child = sleeper(&sandbox);
    let result: Result<(), LimitExceeded> = sandbox.within(std::future::pending()).await;
    assert_eq!(
        result,
        Err(LimitExceeded::Time {
            app: "slow".to_owned(),
            limit: "1 s".to_owned()
        })
    );
    assert!(
        !child.wait().unwrap().success(),
        "the step's process was not killed"
    );
    let dirs = sandbox.cgroup_dirs();
    sandbox.remove().await.unwrap();
    assert!(dirs.iter().all(|d| !d.exists()), "{dirs:?}");
    cgroups::remove_children(&config.cgroup_parent, true)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_dropped_sandbox_leaves_nothing() {
    if !root_or_skip("a_dropped_sandbox_leaves_nothing") {
        return;
    }
    let config = config("dropped");
    let sandbox = BuildSandbox::create(&config, "cancelled", Duration::from_secs(600))
        .await
        .unwrap();
    let mut child = sleeper(&sandbox);
    let dirs = sandbox.cgroup_dirs();
    drop(sandbox);
    assert!(
        !child.wait().unwrap().success(),
        "the step's process was not killed"
    );
    assert!(dirs.iter().all(|d| !d.exists()), "{dirs:?}");
    cgroups::remove_children(&config.cgroup_parent, true)
        .await
        .unwrap();
}
