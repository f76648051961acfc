//! One-off runs: stdin in, stdout and stderr out, the exit code back, a terminal when asked, killed when the
//! caller goes away, and nothing left behind either way.

use std::time::{Duration, Instant};

use agent::Agent;
use agent_contract::{OneOffExit, OneOffInput, OneOffOutput, OneOffRequest, OneOffSession, WindowSize};
use vocabulary::ProcessType;

use crate::leak::census;
use crate::node::{assert_nothing_left, leftovers, runtime, setup, spec, Names};

/// Everything a one-off wrote, until its exit.
async fn collect(session: &mut OneOffSession) -> (Vec<u8>, Vec<u8>, OneOffExit) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    loop {
        let message = tokio::time::timeout(Duration::from_secs(60), session.output.recv())
            .await
            .expect("the one-off ends within a minute")
            .expect("the exit comes before the channel closes");
        match message {
            OneOffOutput::Stdout(b) => out.extend(b),
            OneOffOutput::Stderr(b) => err.extend(b),
            OneOffOutput::Exited(exit) => return (out, err, exit),
        }
    }
}

/// Starts `command` as `run.1`.
async fn start(
    agent: &agent::AgentHandle,
    digest: &str,
    command: &str,
    terminal: Option<WindowSize>,
) -> (vocabulary::InstanceId, OneOffSession) {
    let mut run = spec(digest, command);
    run.process_type = ProcessType::new("run").unwrap();
    let id = run.id;
    let request = OneOffRequest { spec: run, terminal };
    (id, agent.run_one_off(request).await.unwrap())
}

/// Reads stdout until it holds `needle`; returns what was read.
async fn read_until(session: &mut OneOffSession, needle: &str) -> String {
    let mut out = Vec::new();
    while !String::from_utf8_lossy(&out).contains(needle) {
        match tokio::time::timeout(Duration::from_secs(60), session.output.recv()).await {
            Ok(Some(OneOffOutput::Stdout(b))) => out.extend(b),
            other => panic!(
                "waiting for {needle:?} after {:?}: {other:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Waits until nothing of `id` is left on the host (it is torn down after its exit).
async fn gone(names: &Names, data_dir: &std::path::Path, id: vocabulary::InstanceId) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = leftovers(names, data_dir, Some(id));
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "left behind by the one-off: {left:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn one_offs() {
    let s = setup(Duration::from_secs(2));
    runtime().block_on(async {
        let (agent, _reports) = Agent::start(s.cfg.clone()).await.unwrap();
        let before = census(&s.names, &s.data_dir);

        // Pipes: stdin reaches the command, both streams come back apart, the exit code is the command's.
        let (id, mut session) = start(&agent, &s.digest, "cat; echo err >&2; exit 3", None).await;
        // While it runs it holds what any instance holds.
        assert!(
            !leftovers(&s.names, &s.data_dir, Some(id)).is_empty(),
            "a running one-off has a cgroup, netns, ..."
        );
        // The leak test's census sees it too (so it can see what one leaves).
        let up = census(&s.names, &s.data_dir);
        assert_eq!(
            (up.netns, up.veths),
            (before.netns + 1, before.veths + 1),
            "{up:?}"
        );
        assert_eq!(up.set_elements, before.set_elements + 2, "{up:?}");
        assert!(
            up.mounts > before.mounts && up.child_processes > before.child_processes,
            "{up:?}"
        );
        session
            .input
            .send(OneOffInput::Stdin(b"hello\n".to_vec()))
            .await
            .unwrap();
        session.input.send(OneOffInput::StdinClosed).await.unwrap();
        let (out, err, exit) = collect(&mut session).await;
        assert_eq!(String::from_utf8_lossy(&out), "hello\n");
        assert_eq!(String::from_utf8_lossy(&err), "err\n");
        assert_eq!(exit.code, 3, "{exit:?}");
        gone(&s.names, &s.data_dir, id).await;

        // A terminal: the command sees one on stdin, of the size asked and then resized.
        let command = "[ -t 0 ] && echo tty; stty size; read line; stty size; exit 0";
        let size = WindowSize { rows: 24, cols: 80 };
        let (id, mut session) = start(&agent, &s.digest, command, Some(size)).await;
        let first = read_until(&mut session, "24 80\r\n").await;
        assert_eq!(first, "tty\r\n24 80\r\n");
        session
            .input
            .send(OneOffInput::Resize(WindowSize { rows: 50, cols: 132 }))
            .await
            .unwrap();
        session
            .input
            .send(OneOffInput::Stdin(b"go\n".to_vec()))
            .await
            .unwrap();
        let (out, err, exit) = collect(&mut session).await;
        let out = String::from_utf8_lossy(&out);
        // The terminal echoes what was typed, then the new size.
        assert!(out.ends_with("50 132\r\n"), "resized: {out:?}");
        assert!(err.is_empty(), "a terminal's output is all stdout");
        assert_eq!(exit.code, 0, "{exit:?} {out:?}");
        gone(&s.names, &s.data_dir, id).await;

        // A caller that goes away kills it, and it is removed.
        let (id, session) = start(&agent, &s.digest, "sleep 1000", None).await;
        drop(session);
        gone(&s.names, &s.data_dir, id).await;

        // One that never starts (no such command) says so, and leaves nothing either.
        let (id, mut session) = start(&agent, &s.digest, "exec /no/such/program", None).await;
        let (_, _, exit) = collect(&mut session).await;
        assert_eq!(exit.code, 127, "{exit:?}");
        gone(&s.names, &s.data_dir, id).await;

        assert_eq!(census(&s.names, &s.data_dir), before, "left behind by one-offs");

        // A one-off still running at shutdown is killed and removed with the rest.
        let (_, _session) = start(&agent, &s.digest, "sleep 1000", None).await;
        agent.shutdown().await;
    });
    assert_nothing_left(&s.names, &s.data_dir);
}
