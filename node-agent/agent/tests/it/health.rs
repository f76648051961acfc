//! When an instance counts as up: a `web` instance once its port accepts connections and its health check (if
//! any) answers 2xx, within its boot timeout (else R10); any other process type once started.

use std::time::Duration;

use agent::Agent;
use agent_contract::{ExitReason, HealthCheck, InstanceState, NodeReport};
use vocabulary::{InstanceId, ProcessType};

use crate::exits::crash_reason;
use crate::node::{assert_nothing_left, runtime, setup, spec, wait_for};

fn running(id: InstanceId) -> impl FnMut(&NodeReport) -> bool {
    move |r| {
        r.instances
            .iter()
            .any(|i| i.id == id && i.state == InstanceState::Running)
    }
}

pub fn boot_timeout_and_workers() {
    let s = setup(Duration::from_secs(2));
    let digest = &s.digest;
    runtime().block_on(async {
        let (agent, mut reports) = Agent::start(s.cfg.clone()).await.unwrap();
        // Never binds PORT: killed after its 1 s boot timeout, with R10 as the reason.
        let mut silent = spec(digest, "echo not listening; sleep 1000");
        silent.boot_timeout_secs = Some(1);
        // The same command as a worker: up once started, never R10.
        let mut worker = spec(digest, "echo working; sleep 1000");
        worker.process_type = ProcessType::new("worker").unwrap();
        worker.boot_timeout_secs = Some(1);
        agent.set_desired(vec![silent.clone(), worker.clone()]);

        wait_for(&mut reports, "the worker running", running(worker.id)).await;
        assert_eq!(
            crash_reason(&mut reports, silent.id, "boot timeout").await,
            ExitReason::BootTimeout { secs: 1 }
        );
        // It restarts with backoff, and times out again.
        wait_for(&mut reports, "the silent web restarted and timed out again", |r| {
            r.instances.iter().any(|i| {
                i.id == silent.id
                    && matches!(&i.state, InstanceState::Crashed { restarts, reason: Some(ExitReason::BootTimeout { .. }), .. } if *restarts >= 2)
            })
        })
        .await;
        let report = reports.borrow().clone();
        let worker_status = report.instances.iter().find(|i| i.id == worker.id).unwrap();
        assert_eq!(worker_status.state, InstanceState::Running, "{worker_status:?}");
        agent.shutdown().await;
    });
    assert_nothing_left(&s.names, &s.data_dir);
}

pub fn health_checks() {
    let s = setup(Duration::from_secs(2));
    let digest = &s.digest;
    runtime().block_on(async {
        let (agent, mut reports) = Agent::start(s.cfg.clone()).await.unwrap();
        // /health appears 3 s after the server starts: the first attempts get 404, a later one 200.
        let mut late = spec(
            digest,
            "(sleep 3; echo ok > /www/health) & exec httpd -f -p $PORT -h /www",
        );
        late.health_check = Some(HealthCheck {
            path: "/health".into(),
            timeout_secs: 2,
            attempts: 30,
            wait_secs: 1,
        });
        // /health never appears: stopped after two failed attempts, with the last answer as the reason.
        let mut never = spec(digest, "exec httpd -f -p $PORT -h /www");
        never.health_check = Some(HealthCheck {
            path: "/health".into(),
            timeout_secs: 2,
            attempts: 2,
            wait_secs: 0,
        });
        agent.set_desired(vec![late.clone(), never.clone()]);

        // Before its check passes, the late instance is reported starting even though its port accepts.
        let report = wait_for(&mut reports, "the late instance has an address", |r| {
            r.instances.iter().any(|i| i.id == late.id && i.address.is_some())
        })
        .await;
        let status = report.instances.iter().find(|i| i.id == late.id).unwrap();
        assert_eq!(status.state, InstanceState::Starting, "{status:?}");
        let address = status.address.unwrap();
        let reason = crash_reason(&mut reports, never.id, "failing health check").await;
        assert_eq!(
            reason,
            ExitReason::HealthCheckFailed {
                path: "/health".into(),
                error: "404 Not Found".into()
            }
        );
        wait_for(
            &mut reports,
            "the late instance passes its check",
            running(late.id),
        )
        .await;
        let body = tokio::task::spawn_blocking(move || crate::node::http_get_path(address, "/health"))
            .await
            .unwrap();
        assert!(body.ends_with("ok\n"), "{body}");
        agent.shutdown().await;
    });
    assert_nothing_left(&s.names, &s.data_dir);
}
