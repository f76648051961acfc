//! Integration tests of the store against a real SQLite file in a temp dir.

mod accounts;
mod apps;
mod domains;
mod events;
mod formation;
mod instances;
mod releases;
mod sessions;

use std::collections::BTreeMap;

use store::{Account, App, NewRelease, Release, Store};
use tempfile::TempDir;
use vocabulary::{AccountName, AppName, ProcessType};

/// A fresh store; keep the `TempDir` alive for as long as the store is used.
pub async fn temp_store() -> (Store, TempDir) {
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
