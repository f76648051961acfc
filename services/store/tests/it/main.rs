//! Integration tests of the store against a real SQLite file in a temp dir and, when `BERTH_TEST_POSTGRES_URL`
//! names a PostgreSQL server (see `store::testing`), against a fresh database on it: most tests are written
//! once as `async fn NAME(store: TestDatabase)` and listed in [`on_both_backends!`], which makes
//! `NAME::sqlite` and `NAME::postgres` of each. Without the variable the PostgreSQL half skips loudly, and
//! fails when `CI` is set.

/// Makes each listed `async fn NAME(store: TestDatabase)` two tests: `NAME::sqlite` and `NAME::postgres`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let dir = tempfile::tempdir().expect("temp dir");
                super::$name(crate::sqlite_database(&dir).await).await;
            }

            #[tokio::test]
            async fn postgres() {
                if let Some(database) = crate::postgres_database(module_path!()).await {
                    super::$name(database).await;
                }
            }
        }
    )*};
}

mod access;
mod accounts;
mod apps;
mod audit;
mod domains;
mod events;
mod formation;
mod instances;
mod inventory;
mod leader;
mod quotas;
mod releases;
mod schema;
mod sessions;

use std::collections::BTreeMap;

use store::testing::TestDatabase;
use store::{Account, App, NewRelease, Release, Store};
use tempfile::TempDir;
use vocabulary::{AccountName, AppName, ProcessType};

/// A fresh SQLite store in `dir`.
pub async fn sqlite_database(dir: &TempDir) -> TestDatabase {
    TestDatabase::sqlite(&dir.path().join("berth.db"))
        .await
        .expect("open store")
}

/// A fresh PostgreSQL database for `test`, or `None` (said on stderr) when no server is given; with `CI` set a
/// missing server fails the test instead.
pub async fn postgres_database(test: &str) -> Option<TestDatabase> {
    let url = TestDatabase::postgres_url_or_skip(test)?;
    Some(
        TestDatabase::postgres(&url)
            .await
            .expect("create a test database"),
    )
}

/// A fresh SQLite store only (a test of SQLite's files); keep the `TempDir` alive while it is used.
pub async fn temp_sqlite() -> (Store, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open_sqlite(&dir.path().join("berth.db"))
        .await
        .expect("open store");
    (store, dir)
}

pub async fn account(store: &Store, name: &str) -> (Account, String) {
    store
        .create_account(&AccountName::new(name).unwrap(), false)
        .await
        .expect("create account")
}

pub async fn app(store: &Store, owner: &Account, name: &str) -> App {
    store
        .create_app(owner.id, &AppName::new(name).unwrap())
        .await
        .expect("create app")
}

pub async fn release(store: &Store, app: &App, by: &Account, processes: &[&str]) -> Release {
    let processes: BTreeMap<ProcessType, String> = processes
        .iter()
        .map(|p| (ProcessType::new(*p).unwrap(), format!("run-{p}")))
        .collect();
    store
        .create_release(NewRelease {
            app: app.id,
            image_digest: format!("sha256:{}", "ab".repeat(32)),
            processes,
            config: BTreeMap::from([("GREETING".to_owned(), "hi".to_owned())]),
            description: "Deploy 1a2b3c4".to_owned(),
            created_by: by.id,
        })
        .await
        .expect("create release")
}
