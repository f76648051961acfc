//! Why instances end: exit codes, signals, out of memory, failures to start; and how they are stopped: the
//! spec's grace between SIGTERM and SIGKILL.

use std::time::{Duration, Instant};

use agent::Agent;
use agent_contract::{ExitReason, InstanceState, NodeReport};
use tokio::sync::watch;
use vocabulary::InstanceId;

use crate::node::{assert_nothing_left, runtime, setup, spec, wait_for};

/// Waits until `id` is reported crashed and returns its reason, checking that `last_exit` agrees.
pub async fn crash_reason(
    reports: &mut watch::Receiver<NodeReport>,
    id: InstanceId,
    what: &str,
) -> ExitReason {
    let report = wait_for(reports, what, |r| {
        r.instances
            .iter()
            .any(|i| i.id == id && matches!(i.state, InstanceState::Crashed { .. }))
    })
    .await;
    let status = report.instances.iter().find(|i| i.id == id).unwrap();
    let InstanceState::Crashed {
        reason: Some(reason), ..
    } = &status.state
    else {
        panic!("{what}: crashed without a reason: {status:?}");
    };
    let last = status.last_exit.as_ref().expect("last exit recorded");
    assert_eq!(&last.reason, reason, "{what}");
    println!("  {what}: {reason} at {}", last.at);
    reason.clone()
}

pub fn exit_reasons() {
    let s = setup(Duration::from_secs(2));
    let digest = &s.digest;
    runtime().block_on(async {
        let (agent, mut reports) = Agent::start(s.cfg.clone()).await.unwrap();
        let exits = spec(digest, "echo exiting; exit 3");
        let killed = spec(digest, "kill -KILL $$");
        // The shell doubles a string until it is past the 32 MiB limit.
        let mut hog = spec(digest, "x=0123456789abcdef; while true; do x=\"$x$x\"; done");
        hog.limits.memory_bytes = 32 * 1024 * 1024;
        // A hog in a subshell: the OOM killer takes it, the listener lives on (v1; on v2 the whole group goes,
        // `memory.oom.group`).
        let mut survivor = spec(
            digest,
            "(x=0123456789abcdef; while true; do x=\"$x$x\"; done) & exec httpd -f -p $PORT -h /",
        );
        survivor.limits.memory_bytes = 32 * 1024 * 1024;
        let mut missing = spec(digest, "true");
        missing.image.manifest_digest = format!("sha256:{}", "0".repeat(64));
        agent.set_desired(vec![exits.clone(), killed.clone(), hog.clone(), survivor.clone(), missing.clone()]);

        assert_eq!(
            crash_reason(&mut reports, exits.id, "exit 3").await,
            ExitReason::Exited { code: 3 }
        );
        assert_eq!(
            crash_reason(&mut reports, killed.id, "kill -KILL").await,
            ExitReason::Signaled { signal: "SIGKILL".into() }
        );
        assert_eq!(
            crash_reason(&mut reports, hog.id, "memory hog").await,
            ExitReason::OutOfMemory
        );
        let reason = crash_reason(&mut reports, missing.id, "missing image").await;
        assert!(
            matches!(&reason, ExitReason::FailedToStart { error } if error.contains("reading image")),
            "{reason:?}"
        );

        let report = wait_for(&mut reports, "the survivor's OOM kill reported", |r| {
            r.instances.iter().any(|i| i.id == survivor.id && i.oom_kills >= 1)
        })
        .await;
        let status = report.instances.iter().find(|i| i.id == survivor.id).unwrap();
        println!("  OOM kill inside a running instance: {:?}, oom_kills {}", status.state, status.oom_kills);

        // They keep restarting with backoff, and the reason stays.
        wait_for(&mut reports, "the hog restarted", |r| {
            r.instances.iter().any(|i| {
                i.id == hog.id
                    && matches!(&i.state, InstanceState::Crashed { restarts, reason: Some(ExitReason::OutOfMemory), .. } if *restarts >= 2)
            })
        })
        .await;
        agent.shutdown().await;
    });
    assert_nothing_left(&s.names, &s.data_dir);
}

/// The spec's grace decides: the agent's own fallback here is ten minutes, longer than any wait below.
pub fn stop_grace() {
    let s = setup(Duration::from_secs(600));
    let digest = &s.digest;
    runtime().block_on(async {
        let (agent, mut reports) = Agent::start(s.cfg.clone()).await.unwrap();
        // Ignores SIGTERM (its sleeps die of it, the loop goes on): only SIGKILL after its 2 s ends it.
        let mut stubborn = spec(
            digest,
            "trap 'echo ignoring TERM' TERM; httpd -f -p $PORT -h / & while true; do sleep 1; done",
        );
        // Started with ten minutes; the app's setting changes to 2 s while it runs (below).
        stubborn.stop_grace_secs = Some(600);
        // Exits at SIGTERM: gone long before its 10 minutes.
        let mut polite = spec(
            digest,
            "trap 'exit 0' TERM; httpd -f -p $PORT -h / & while true; do sleep 1; done",
        );
        polite.stop_grace_secs = Some(600);
        let running = |id: InstanceId| {
            move |r: &NodeReport| {
                r.instances
                    .iter()
                    .any(|i| i.id == id && i.state == InstanceState::Running)
            }
        };
        agent.set_desired(vec![stubborn.clone()]);
        wait_for(&mut reports, "stubborn running", running(stubborn.id)).await;
        // The app's grace changes while it runs; the polite instance comes in the same desired set, so once it
        // runs the agent has seen the change too.
        stubborn.stop_grace_secs = Some(2);
        agent.set_desired(vec![stubborn.clone(), polite.clone()]);
        wait_for(&mut reports, "polite running", running(polite.id)).await;

        let asked = Instant::now();
        agent.set_desired(vec![stubborn.clone()]);
        wait_for(
            &mut reports,
            "the polite instance gone (within the wait, not its 600 s grace)",
            |r| r.instances.iter().all(|i| i.id != polite.id),
        )
        .await;
        println!("  exits on SIGTERM: stopped after {:?}", asked.elapsed());

        let asked = Instant::now();
        agent.set_desired(vec![]);
        wait_for(
            &mut reports,
            "the stubborn instance gone (its updated 2 s grace, not the 600 s it started with)",
            |r| r.instances.iter().all(|i| i.id != stubborn.id),
        )
        .await;
        let took = asked.elapsed();
        println!("  ignores SIGTERM: killed after {took:?}");
        // A lower bound only: SIGKILL never comes before the grace is over.
        assert!(
            took >= Duration::from_secs(2),
            "killed before its grace: {took:?}"
        );
        agent.shutdown().await;
    });
    assert_nothing_left(&s.names, &s.data_dir);
}
