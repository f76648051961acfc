//! One-off instances end to end, through the real CLI binary: `berth run` passes stdout, stderr, stdin and
//! the exit code through; `--detach` output lands in `berth logs`; a Procfile's `release:` command runs before
//! the web instance starts, and when it fails the push fails, shows its output, and the old release keeps
//! serving. Nothing is left behind after the server stops.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::end_to_end::{push, push_test_dirs, server_with_app_and_flags};
use crate::support::*;

const APP: &str = "oneoffs";
const SERVE_TIMEOUT: Duration = Duration::from_secs(180);

/// `berth run` with `input` on its stdin (a pipe, not a terminal).
pub(crate) fn run_with_stdin(
    server: &Server,
    token: &str,
    args: &[&str],
    input: &[u8],
) -> std::process::Output {
    let mut child = Command::new(berth_bin())
        .args(args)
        .env("BERTH_API", server.api_url())
        .env("BERTH_TOKEN", token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running berth");
    // Written while the output is read, as a pipeline would.
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    out
}

/// The index of the first line of `log` holding `needle`.
fn line_of(log: &str, needle: &str) -> usize {
    log.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in the log:\n{log}"))
}

#[test]
fn berth_run_and_the_release_phase() {
    let Some((work, data_dir)) = push_test_dirs("berth_run_and_the_release_phase") else {
        return;
    };
    let ((mut server, token), names) = server_with_app_and_flags(&data_dir, "oneoff-user", APP, &[]);
    let berth = |args: &[&str]| server.berth(&token, &[args, &["-a", APP]].concat());
    let run = |args: &[&str]| server.berth(&token, &[&["run", "-a", APP], args].concat());

    // v1: a release command that passes.
    let repo = work.path().join("app");
    app_repo("dockerfile-hello", &repo);
    std::fs::write(
        repo.join("Procfile"),
        "web: exec python3 /srv/server.py\nrelease: echo migrating the database; echo done >&2\n",
    )
    .unwrap();
    commit_all(&repo, "a release phase");
    let out = push(&server, &token, APP, &repo);
    let pushed = text(&out.stderr);
    assert!(out.status.success(), "push failed:\n{pushed}\n{}", server.log());
    assert!(
        pushed.contains("-----> Running release command: echo migrating the database"),
        "{pushed}"
    );
    assert!(pushed.contains("       migrating the database"), "{pushed}");
    let body = server.wait_for_app(APP, "/", SERVE_TIMEOUT, "v1", |s, _| s == 200);
    assert!(body.contains(" v1 "), "{body}");
    // The release phase ran, and ended, before the web instance started.
    let logs = text(&berth(&["logs", "-n", "1000"]).stdout);
    let release_line = line_of(&logs, "app[release.1]: migrating the database");
    let release_exit = line_of(&logs, "berth[release.1]: Process exited with status 0");
    let web_start = line_of(&logs, "[web.1]: Starting process");
    assert!(release_line < release_exit && release_exit < web_start, "{logs}");

    // A config change is a new release (v2): its release phase runs too.
    let out = berth(&["config", "set", "FLAVOUR=plain"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let logs = text(&berth(&["logs", "--ps", "release.2"]).stdout);
    assert!(logs.contains("app[release.2]: migrating the database"), "{logs}");

    // Attached: both streams and the exit code, through the real binary with stdin not a terminal.
    let out = run(&["--", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "out\n");
    let err = text(&out.stderr);
    assert!(err.contains("err\n"), "{err}");
    assert!(err.contains("up, run.1"), "{err}");
    // Stdin passes through, and its end reaches the command.
    let out = run_with_stdin(&server, &token, &["run", "-a", APP, "--", "cat"], b"hi\nthere\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hi\nthere\n");
    // Megabytes through `cat` both ways at once: neither direction holds up the other.
    let big: Vec<u8> = (0..4 << 20).map(|i: u32| b'a' + (i % 26) as u8).collect();
    let out = run_with_stdin(&server, &token, &["run", "-a", APP, "--", "cat"], &big);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        out.stdout == big,
        "{} bytes came back of {}",
        out.stdout.len(),
        big.len()
    );
    // A command that does not exist: the shell's code.
    let out = run(&["--", "no-such-command"]);
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));

    // Detached: the name at once, the output in the app's log.
    let out = run(&["--detach", "--", "sh", "-c", "echo detached says hi"]);
    let said = text(&out.stdout);
    assert!(out.status.success(), "{said}{}", text(&out.stderr));
    let name = said
        .split_whitespace()
        .find(|w| w.starts_with("run."))
        .unwrap_or_else(|| panic!("no instance name in {said:?}"))
        .to_owned();
    let deadline = Instant::now() + SERVE_TIMEOUT;
    loop {
        let logs = text(&berth(&["logs", "--ps", &name]).stdout);
        if logs.contains(&format!("app[{name}]: detached says hi")) {
            break;
        }
        assert!(Instant::now() < deadline, "no detached output in:\n{logs}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // On a terminal (script(1) gives `berth` one): the command gets one too, sized, and its code comes back.
    if Command::new("script").arg("--version").output().is_ok() {
        on_a_terminal(&server, &token);
    } else if std::env::var_os("CI").is_some() {
        panic!("berth_run_and_the_release_phase needs script (util-linux) in CI");
    } else {
        println!("skipping the terminal part of berth_run_and_the_release_phase: needs script (util-linux)");
    }

    // A client that goes away: its instance is killed and removed.
    let mut client = Command::new(berth_bin())
        .args([
            "run",
            "-a",
            APP,
            "--",
            "sh",
            "-c",
            "echo started; exec sleep 4242",
        ])
        .env("BERTH_API", server.api_url())
        .env("BERTH_TOKEN", &token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("running berth");
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(client.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    assert_eq!(first, "started\n");
    assert!(!processes_mentioning("sleep 4242").is_empty());
    // `berth ps` shows it apart: not a formation instance.
    let ps = text(&berth(&["ps"]).stdout);
    let (formation, one_offs) = ps
        .split_once("ONE-OFF")
        .unwrap_or_else(|| panic!("no one-offs in:\n{ps}"));
    assert!(!formation.contains("run.") && formation.contains("web.1"), "{ps}");
    assert!(
        one_offs.contains("run.") && one_offs.contains("exec sleep 4242"),
        "{ps}"
    );
    client.kill().unwrap();
    client.wait().unwrap();
    let deadline = Instant::now() + SERVE_TIMEOUT;
    while !processes_mentioning("sleep 4242").is_empty() {
        assert!(
            Instant::now() < deadline,
            "still running: {:?}",
            processes_mentioning("sleep 4242")
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // `release` is never scaled.
    let out = berth(&["scale", "release=1"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("release is not a process type that can be scaled"),
        "{}",
        text(&out.stderr)
    );

    // v2 with a failing release command: the push fails with its output, v1 keeps serving.
    let server_py = repo.join("server.py");
    let source = std::fs::read_to_string(&server_py).unwrap();
    std::fs::write(&server_py, source.replace("VERSION = \"v1\"", "VERSION = \"v2\"")).unwrap();
    std::fs::write(
        repo.join("Procfile"),
        "web: exec python3 /srv/server.py\nrelease: echo about to fail; exit 7\n",
    )
    .unwrap();
    commit_all(&repo, "a failing release phase");
    let out = push(&server, &token, APP, &repo);
    let pushed = text(&out.stderr);
    assert!(!out.status.success(), "the push must fail:\n{pushed}");
    assert!(pushed.contains("       about to fail"), "{pushed}");
    assert!(
        pushed.contains("-----> Release command failed (exit 7); v3 not deployed, v2 keeps serving"),
        "{pushed}"
    );
    let (status, body) = server.get_app(APP, "/").expect("router answers");
    assert_eq!(status, 200);
    assert!(body.contains(" v1 "), "the old release serves: {body}");
    let releases = text(&berth(&["releases"]).stdout);
    assert!(!releases.contains("v3"), "no v3 was written:\n{releases}");
    let events = text(&berth(&["events"]).stdout);
    assert!(events.contains("Release command failed (exit 7)"), "{events}");

    // An account runs at most five at once.
    let mut sleepers = Vec::new();
    for _ in 0..5 {
        let out = run(&["--detach", "--", "sleep", "600"]);
        let said = text(&out.stdout);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let name = said
            .split_whitespace()
            .find(|w| w.starts_with("run."))
            .unwrap()
            .to_owned();
        sleepers.push(name);
    }
    let out = run(&["--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("already runs 5 one-off instances"),
        "{}",
        text(&out.stderr)
    );

    // `berth ps stop run.N` kills a detached one: it leaves `berth ps`, its place is free again.
    let victim = &sleepers[0];
    let out = berth(&["ps", "stop", victim]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let deadline = Instant::now() + SERVE_TIMEOUT;
    while text(&berth(&["ps"]).stdout).contains(&format!("{victim} ")) {
        assert!(Instant::now() < deadline, "{victim} still runs after ps stop");
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = berth(&["ps", "stop", victim]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("runs no one-off"),
        "{}",
        text(&out.stderr)
    );
    let out = berth(&["ps", "stop", "web.1"]);
    assert!(
        text(&out.stderr).contains("is not a one-off"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["--", "true"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // Deleting the app kills its one-offs: they are not in the store, so nothing else would.
    assert!(!processes_mentioning("sleep 600").is_empty());
    server.berth_ok(&token, &["apps", "delete", APP]);
    let deadline = Instant::now() + SERVE_TIMEOUT;
    loop {
        let left = processes_mentioning("sleep 600");
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "one-offs outlived their app: {left:?}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // The server's stop removes the rest; nothing is left.
    let status = server.stop();
    assert!(status.success(), "server exit: {status:?}\n{}", server.log());
    let left = leftovers(&names, &data_dir);
    assert!(left.is_empty(), "left behind after stop: {left:#?}");
}

/// `berth run` on a terminal: the command gets one (24x80: script's is unsized) and its exit code comes back.
fn on_a_terminal(server: &Server, token: &str) {
    let script = Command::new("script")
        .args([
            "-qec",
            &format!(
                "{} run -a {APP} -- sh -c '[ -t 0 ] && echo on-a-tty; stty size; exit 4'",
                berth_bin()
            ),
            "/dev/null",
        ])
        .env("BERTH_API", server.api_url())
        .env("BERTH_TOKEN", token)
        .stdin(Stdio::null())
        .output()
        .expect("running script");
    let shown = text(&script.stdout);
    assert_eq!(script.status.code(), Some(4), "{shown}{}", text(&script.stderr));
    assert!(shown.contains("on-a-tty\r\n24 80\r\n"), "{shown:?}");
}
