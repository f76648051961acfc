//! Only the leading control process reconciles; leadership passes between stores on one PostgreSQL database.

use std::time::Duration;

use controller::{follow_leadership, DrainPolicy, Event, LeadershipConfig};
use store::testing::TestDatabase;
use store::Store;
use tokio::sync::{mpsc, watch};
use vocabulary::ProcessType;

use crate::World;

/// How long a test waits for something that should happen at once (a bound, not a timing goal).
const PATIENCE: Duration = Duration::from_secs(60);

/// Waits until the controller has finished `n` passes in all (the pass count is 2n then).
async fn passes_done(passes: &mut watch::Receiver<u64>, n: u64) {
    tokio::time::timeout(
        PATIENCE,
        passes.wait_for(|count| *count >= 2 * n && *count % 2 == 0),
    )
    .await
    .expect("the controller made no pass")
    .unwrap();
}

#[tokio::test]
async fn a_controller_that_does_not_lead_changes_nothing() {
    let World {
        store,
        controller,
        link,
        app,
        _dir,
        ..
    } = World::new(DrainPolicy::default()).await;
    store
        .set_formation(app, &ProcessType::web(), 1, 64 << 20)
        .await
        .unwrap();
    let (leading_tx, leading) = watch::channel(false);
    let controller = controller.with_leadership(leading);
    let mut passes = controller.passes();
    let (events_tx, events) = mpsc::unbounded_channel();
    let (_reports_tx, reports) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(controller.run(events, reports, async {
        let _ = stop_rx.await;
    }));

    // The first tick's pass, while another process leads: nothing placed, no node told.
    passes_done(&mut passes, 1).await;
    assert!(store.instances_of_app(app).await.unwrap().is_empty());
    assert!(link.desired_ids().is_empty());

    // Taking the lead makes a pass at once, which places the instance.
    leading_tx.send(true).unwrap();
    passes_done(&mut passes, 2).await;
    assert_eq!(store.instances_of_app(app).await.unwrap().len(), 1);
    assert_eq!(link.desired_ids().len(), 1);

    // Losing it: a scale-up waits for whoever leads now.
    leading_tx.send(false).unwrap();
    passes_done(&mut passes, 3).await;
    store
        .set_formation(app, &ProcessType::web(), 2, 64 << 20)
        .await
        .unwrap();
    events_tx.send(Event::FormationChanged(app)).unwrap();
    passes_done(&mut passes, 4).await;
    assert_eq!(store.instances_of_app(app).await.unwrap().len(), 1);

    let _ = stop_tx.send(());
    running.await.unwrap();
}

#[tokio::test]
async fn on_sqlite_the_one_process_leads() {
    let dir = tempfile::tempdir().unwrap();
    let database = TestDatabase::sqlite(&dir.path().join("berth.db")).await.unwrap();
    let (mut leading, task) = follow_leadership(database.store.clone(), LeadershipConfig::default());
    tokio::time::timeout(PATIENCE, leading.wait_for(|l| *l))
        .await
        .expect("never led")
        .unwrap();
    task.abort();
}

#[tokio::test]
async fn on_postgres_leadership_passes_on_when_the_leader_goes() {
    let test = "leadership::on_postgres_leadership_passes_on_when_the_leader_goes";
    let Some(url) = TestDatabase::postgres_url_or_skip(test) else {
        return;
    };
    let database = TestDatabase::postgres(&url).await.unwrap();
    let other = Store::connect(&database.url().unwrap()).await.unwrap();
    let quick = LeadershipConfig {
        retry: Duration::from_millis(100),
        check: Duration::from_millis(100),
    };

    let (mut first, first_task) = follow_leadership(database.store.clone(), quick);
    tokio::time::timeout(PATIENCE, first.wait_for(|l| *l))
        .await
        .expect("the first never led")
        .unwrap();
    let (mut second, second_task) = follow_leadership(other, quick);
    // The second keeps trying and failing while the first leads.
    for _ in 0..5 {
        tokio::time::sleep(quick.retry).await;
        assert!(!*second.borrow(), "two leaders");
    }

    // The first process goes away (its task, and with it the lock's connection).
    first_task.abort();
    let _ = first_task.await;
    tokio::time::timeout(PATIENCE, second.wait_for(|l| *l))
        .await
        .expect("the second never took over")
        .unwrap();
    second_task.abort();
}
