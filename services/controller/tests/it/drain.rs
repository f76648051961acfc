use std::time::Duration;

use controller::DrainPolicy;

use crate::{address, World};

/// No minimum wait, so the tests need no sleeping; a grace no test reaches.
fn patient() -> DrainPolicy {
    DrainPolicy {
        min_wait: Duration::ZERO,
        grace: Duration::from_secs(3600),
        recheck: Duration::from_millis(250),
    }
}

/// A minimum wait no test reaches.
fn strict() -> DrainPolicy {
    DrainPolicy {
        min_wait: Duration::from_secs(3600),
        grace: Duration::from_secs(7200),
        recheck: Duration::from_millis(250),
    }
}

#[tokio::test]
async fn a_scaled_down_instance_leaves_the_table_first_and_stops_once_drained() {
    let w = World::new(patient()).await;
    w.scale(2).await;
    w.report_running().await;
    assert_eq!(w.routed(), ["web.1", "web.2"]);
    let both = w.link.desired_ids();
    assert_eq!(both.len(), 2);

    // web.2 still has requests in flight when it is scaled away.
    w.probe.0.lock().unwrap().insert(address(2), 3);
    w.scale(1).await;
    assert_eq!(w.routed(), ["web.1"], "it must leave the table at once");
    assert_eq!(w.link.desired_ids(), both, "but keep running while it drains");
    w.controller.reconcile().await.unwrap();
    assert_eq!(w.link.desired_ids(), both);

    // Drained: its node is told to stop it.
    w.probe.0.lock().unwrap().insert(address(2), 0);
    w.controller.reconcile().await.unwrap();
    let desired = w.link.desired.lock().unwrap().clone();
    assert_eq!(desired.len(), 1);
    assert_eq!(desired[0].index, 1);

    // Once released it is never kept again, whatever the probe says while the agent stops it.
    w.probe.0.lock().unwrap().insert(address(2), 5);
    w.controller.reconcile().await.unwrap();
    assert_eq!(w.link.desired.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn the_grace_period_ends_draining_even_with_requests_in_flight() {
    let w = World::new(DrainPolicy {
        min_wait: Duration::ZERO,
        grace: Duration::ZERO,
        recheck: Duration::from_millis(250),
    })
    .await;
    w.scale(2).await;
    w.report_running().await;
    w.probe.0.lock().unwrap().insert(address(2), 7);
    w.scale(1).await;
    assert_eq!(w.routed(), ["web.1"]);
    assert_eq!(w.link.desired.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn nothing_is_stopped_before_the_minimum_wait() {
    let w = World::new(strict()).await;
    w.scale(2).await;
    w.report_running().await;
    w.scale(1).await;
    assert_eq!(w.routed(), ["web.1"]);
    assert_eq!(
        w.link.desired.lock().unwrap().len(),
        2,
        "nothing in flight, but remote routers may lag"
    );
}

#[tokio::test]
async fn instances_that_never_ran_stop_at_once() {
    let w = World::new(strict()).await;
    w.scale(2).await;
    // Still starting (never routed) when scaled away.
    w.scale(0).await;
    assert!(w.link.desired.lock().unwrap().is_empty());
}
