//! Leader election: on PostgreSQL one store at a time leads, and leadership passes on when its holder goes.

use std::time::Duration;

use sqlx::{Connection, Executor};
use store::{Leadership, Store, StoreError};

/// Tries to lead every 100 ms until it does, a bounded number of times (a handover is not instant: the
/// server frees the lock when it notices the old session is gone).
async fn lead_soon(store: &Store) -> Leadership {
    for _ in 0..100 {
        if let Some(leadership) = store.try_lead().await.expect("try to lead") {
            return leadership;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never became leader");
}

#[tokio::test]
async fn on_sqlite_the_one_process_always_leads() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::sqlite_database(&dir).await;
    let mut first = store.try_lead().await.unwrap().expect("leads");
    first.check().await.unwrap();
    assert!(store.try_lead().await.unwrap().is_some());
}

#[tokio::test]
async fn on_postgres_one_store_leads_and_hands_over_when_it_goes() {
    let Some(database) = crate::postgres_database("leader::on_postgres_one_store_leads_and_hands_over").await
    else {
        return;
    };
    let url = database.url().unwrap();
    let other = Store::connect(&url).await.unwrap();

    let mut first = database.try_lead().await.unwrap().expect("the first store leads");
    first.check().await.unwrap();
    assert!(other.try_lead().await.unwrap().is_none(), "two leaders");
    assert!(
        database.try_lead().await.unwrap().is_none(),
        "the lock is not re-entrant across connections"
    );

    // Giving it up hands over.
    first.release().await.unwrap();
    let mut second = lead_soon(&other).await;
    second.check().await.unwrap();
    assert!(database.try_lead().await.unwrap().is_none());

    // The leader's connection dies (as when its process or host does): the leader finds out, and another
    // store takes over.
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    let killed = admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks \
             WHERE locktype = 'advisory' AND granted \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .await
        .unwrap();
    assert_eq!(killed.rows_affected(), 1);
    admin.close().await.unwrap();
    let lost = second.check().await.unwrap_err();
    assert!(matches!(lost, StoreError::LeadershipLost(_)), "{lost:?}");
    let mut third = lead_soon(&database).await;
    third.check().await.unwrap();
    // The pool of the store whose leadership died still works.
    assert!(other.try_lead().await.unwrap().is_none());
    other.nodes().await.unwrap();
}

/// Restarts the machine's PostgreSQL cluster, so it runs alone: `.ci/run` runs it after the other tests with
/// `cargo test -p store --test it -- --ignored postgres_restart`.
#[tokio::test]
#[ignore = "restarts PostgreSQL: run alone (see .ci/run)"]
async fn after_a_postgres_restart_the_pool_recovers_and_leadership_is_retaken() {
    let test = "leader::after_a_postgres_restart_the_pool_recovers_and_leadership_is_retaken";
    let ci = std::env::var_os("CI").is_some();
    let root = is_root();
    let tool = std::process::Command::new("pg_ctlcluster")
        .arg("--help")
        .output()
        .is_ok();
    if !root || !tool {
        assert!(!ci, "{test}: needs root and pg_ctlcluster (CI is set)");
        eprintln!("skipping {test}: needs root and pg_ctlcluster");
        return;
    }
    let Some(database) = crate::postgres_database(test).await else {
        return;
    };
    let mut leadership = database.try_lead().await.unwrap().expect("leads");
    let (alice, _) = crate::account(&database, "alice").await;

    // The cluster that BERTH_TEST_POSTGRES_URL reaches: Debian's `main` of PG_CLUSTER_VERSION (default 15).
    let version = std::env::var("PG_CLUSTER_VERSION").unwrap_or_else(|_| "15".to_owned());
    let status = std::process::Command::new("pg_ctlcluster")
        .args([version.as_str(), "main", "restart"])
        .status()
        .expect("run pg_ctlcluster");
    assert!(status.success(), "pg_ctlcluster restart: {status}");

    // The lock's session is gone with the old server: the holder finds out.
    assert!(leadership.check().await.is_err());
    drop(leadership);
    // The pool replaces its dead connections instead of failing queries, and the data is there.
    assert_eq!(database.account(alice.id).await.unwrap(), Some(alice));
    let mut leadership = lead_soon(&database).await;
    leadership.check().await.unwrap();
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
