//! Exit codes, setup failures, signals, orphans and zombies.

use std::time::{Duration, Instant};

use container::Output;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::fixture::{run, runtime, Fixture};

pub const TESTS: &[crate::Test] = &[
    ("exit_code_is_the_apps", exit_code_is_the_apps),
    ("setup_failure_is_125", setup_failure_is_125),
    ("missing_program_is_127", missing_program_is_127),
    ("sigterm_is_forwarded", sigterm_is_forwarded),
    (
        "on_sigterm_the_shells_child_may_finish",
        on_sigterm_the_shells_child_may_finish,
    ),
    (
        "orphans_are_killed_when_the_app_exits",
        orphans_are_killed_when_the_app_exits,
    ),
    ("zombies_are_reaped", zombies_are_reaped),
];

fn exit_code_is_the_apps() {
    let f = Fixture::new();
    assert_eq!(run(&f.spec("exit 7")).code, Some(7));
    assert_eq!(run(&f.spec("kill -KILL $$")).code, Some(128 + 9));
}

fn setup_failure_is_125() {
    let f = Fixture::new();
    let mut spec = f.spec("true");
    spec.cwd = "/does/not/exist".into();
    let out = run(&spec);
    assert_eq!(out.code, Some(container::SETUP_FAILED_EXIT_CODE));
    assert!(
        out.stderr
            .contains("container setup failed: changing to working directory"),
        "{}",
        out.stderr
    );
}

fn missing_program_is_127() {
    let f = Fixture::new();
    let mut spec = f.spec("");
    spec.argv = vec!["/bin/nope".into()];
    assert_eq!(run(&spec).code, Some(127));
}

fn sigterm_is_forwarded() {
    let f = Fixture::new();
    let spec = f.spec("trap 'echo got-term; exit 42' TERM; echo ready; while true; do sleep 0.1; done");
    runtime().block_on(async {
        let (status, mut lines) = terminate_when_ready(&spec).await;
        assert_eq!(status.code(), Some(42));
        assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("got-term"));
    });
}

/// A Procfile command runs under `/bin/sh -c`, which dies of SIGTERM at once; the server it started got SIGTERM
/// too and must be allowed to finish its shutdown instead of being killed with the shell.
fn on_sigterm_the_shells_child_may_finish() {
    let f = Fixture::new();
    // The outer shell cannot exec the inner one (a command follows), so it stays the app's process.
    let spec = f.spec(
        "sh -c 'trap \"echo child-got-term; sleep 0.3; echo child-done; exit 0\" TERM; echo ready; \
         while true; do sleep 0.1; done'; echo outer-after",
    );
    runtime().block_on(async {
        let (status, mut lines) = terminate_when_ready(&spec).await;
        let mut rest: Vec<String> = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            rest.push(line);
        }
        // The exit code is still the app's: its shell's, killed by SIGTERM.
        assert_eq!(status.code(), Some(128 + 15), "{rest:?}");
        assert_eq!(rest, ["child-got-term", "child-done"]);
    });
}

/// Starts `spec`, waits for its first output line to be `ready`, sends SIGTERM and waits for the exit; returns
/// the exit status and the rest of the output.
async fn terminate_when_ready(
    spec: &container::ContainerSpec,
) -> (
    std::process::ExitStatus,
    tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
) {
    let init = std::env::current_exe().unwrap();
    let mut c = container::spawn(&init, spec, Output::Piped).await.unwrap();
    let mut lines = BufReader::new(c.child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ready.as_deref(), Some("ready"));
    c.signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), c.wait())
        .await
        .unwrap()
        .unwrap();
    (status, lines)
}

fn orphans_are_killed_when_the_app_exits() {
    let f = Fixture::new();
    let started = Instant::now();
    let out = run(&f.spec("sleep 100 & echo started"));
    assert_eq!(out.code, Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the init waited for an orphan"
    );
}

fn zombies_are_reaped() {
    let f = Fixture::new();
    let out = run(&f.spec("(sleep 0.1 &); sleep 1; cat /proc/[0-9]*/stat"));
    assert_eq!(out.code, Some(0));
    assert!(!out.stdout.contains(") Z "), "a zombie was left: {}", out.stdout);
}
