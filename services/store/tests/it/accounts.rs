use store::StoreError;
use vocabulary::{AccountName, IdRange};

use crate::temp_sqlite;
use store::testing::TestDatabase;

#[tokio::test]
async fn account_tokens_resolve_and_are_stored_hashed() {
    let (store, dir) = temp_sqlite().await;
    let (alice, token) = store
        .create_account(&AccountName::new("alice").unwrap(), true)
        .await
        .unwrap();
    assert!(alice.is_admin);
    assert!(token.starts_with("berth_"), "{token}");

    let found = store
        .account_for_token(&token)
        .await
        .unwrap()
        .expect("token resolves");
    assert_eq!(found, alice);
    assert_eq!(store.account(alice.id).await.unwrap(), Some(alice.clone()));
    assert_eq!(store.account_for_token("berth_wrong").await.unwrap(), None);
    assert_eq!(store.account_for_token("").await.unwrap(), None);
    // A token differing in one character does not resolve.
    let mut near = token.clone();
    let last = near.pop().unwrap();
    near.push(if last == '0' { '1' } else { '0' });
    assert_eq!(store.account_for_token(&near).await.unwrap(), None);

    // The clear-text token appears nowhere in the database files.
    store.close().await;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        // SQLite's closing connection may remove its -wal/-shm files (checkpointed into the database file,
        // which is read too) between the listing and the read.
        let bytes = match std::fs::read(entry.unwrap().path()) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            read => read.unwrap(),
        };
        let secret = &token.as_bytes()["berth_".len()..];
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret),
            "token stored in clear text"
        );
    }
}

async fn account_names_are_unique_and_admin_is_tracked(store: TestDatabase) {
    assert!(!store.has_admin().await.unwrap());
    let name = AccountName::new("bob").unwrap();
    store.create_account(&name, false).await.unwrap();
    assert!(!store.has_admin().await.unwrap());
    let err = store.create_account(&name, true).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert_eq!(err.to_string(), "account bob already exists");
    // The failed create left no admin behind.
    assert!(!store.has_admin().await.unwrap());
    store
        .create_account(&AccountName::new("root").unwrap(), true)
        .await
        .unwrap();
    assert!(store.has_admin().await.unwrap());
}

#[tokio::test]
async fn reopening_keeps_data_and_migrations_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested.db");
    let store = store::Store::open_sqlite(&path).await.unwrap();
    let (_, token) = store
        .create_account(&AccountName::new("carol").unwrap(), false)
        .await
        .unwrap();
    store.close().await;
    let store = store::Store::open_sqlite(&path).await.unwrap();
    assert!(store.account_for_token(&token).await.unwrap().is_some());
    store.close().await;
    // The same file through a database URL, as `berth server --database-url sqlite:PATH` opens it.
    let store = store::Store::connect(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    assert_eq!(store.backend(), store::Backend::Sqlite);
    assert!(store.account_for_token(&token).await.unwrap().is_some());
}

#[tokio::test]
async fn database_urls_are_checked_and_never_shown() {
    let err = match store::Store::connect("mysql://root:hunter2@127.0.0.1/berth").await {
        Err(err) => err,
        Ok(_) => panic!("opened a mysql URL"),
    };
    assert!(matches!(err, StoreError::UnknownBackend), "{err:?}");
    // Nothing listens on port 1: the error says which backend failed, never the URL and its password.
    let err = match store::Store::connect("postgres://berth:hunter2@127.0.0.1:1/berth").await {
        Err(err) => err,
        Ok(_) => panic!("connected to port 1"),
    };
    let text = format!("{err:?} {err}");
    assert!(text.contains("postgres"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[tokio::test]
async fn opening_an_impossible_path_names_it() {
    let err = match store::Store::open_sqlite(std::path::Path::new("/nonexistent-dir/x/berth.db")).await {
        Err(err) => err,
        Ok(_) => panic!("opened a database in a missing directory"),
    };
    assert!(err.to_string().contains("/nonexistent-dir/x/berth.db"), "{err}");
}

async fn router_tokens_are_separate_from_api_tokens(store: TestDatabase) {
    let (admin, admin_token) = store
        .create_account(&AccountName::new("root").unwrap(), true)
        .await
        .unwrap();
    let token = store.create_router_token(admin.id).await.unwrap();
    assert!(token.starts_with("berth_"));
    assert!(store.router_token_valid(&token).await.unwrap());
    // It authenticates nothing else, and API tokens are not router tokens.
    assert_eq!(store.account_for_token(&token).await.unwrap(), None);
    assert!(!store.router_token_valid(&admin_token).await.unwrap());
    assert!(!store.router_token_valid("berth_nope").await.unwrap());
}

async fn accounts_get_distinct_id_ranges_for_good(store: TestDatabase) {
    let (a, _) = crate::account(&store, "first").await;
    let (b, _) = crate::account(&store, "second").await;
    let range_a = store.id_range(a.id).await.unwrap().expect("a has a range");
    let range_b = store.id_range(b.id).await.unwrap().expect("b has a range");
    assert_ne!(range_a, range_b);
    let (low, high) = (range_a.min(range_b), range_a.max(range_b));
    assert!(
        low.host_base() + IdRange::SIZE <= high.host_base(),
        "ranges overlap"
    );
    assert!(low.host_base() >= IdRange::FIRST_BASE);
    let all = store.id_ranges().await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!((all[&a.id], all[&b.id]), (range_a, range_b));
    assert_eq!(store.id_range(vocabulary::AccountId::new()).await.unwrap(), None);
    // A failed create (name taken) uses no slot; slots are never reused.
    assert!(store
        .create_account(&AccountName::new("first").unwrap(), false)
        .await
        .is_err());
    let (c, _) = crate::account(&store, "third").await;
    assert_eq!(
        store.id_range(c.id).await.unwrap().unwrap().slot(),
        range_b.slot() + 1
    );
}

#[tokio::test]
async fn migration_gives_existing_accounts_ranges_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("berth.db");
    // A database as migration 0005 left it, with two accounts.
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let mut before = sqlx::migrate!("../../migrations/sqlite");
    before.migrations = before
        .migrations
        .iter()
        .filter(|m| m.version <= 5)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    before.run(&pool).await.unwrap();
    let (newer, older) = (vocabulary::AccountId::new(), vocabulary::AccountId::new());
    for (id, name, at) in [
        (newer, "newer", "2026-01-01T00:00:00.000000Z"),
        (older, "older", "2025-01-01T00:00:00.000000Z"),
    ] {
        sqlx::query("INSERT INTO accounts (id, name, is_admin, created_at) VALUES (?, ?, 0, ?)")
            .bind(id.to_string())
            .bind(name)
            .bind(at)
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;

    let store = store::Store::open_sqlite(&path).await.unwrap();
    let older_range = store.id_range(older).await.unwrap().expect("backfilled");
    let newer_range = store.id_range(newer).await.unwrap().expect("backfilled");
    assert!(older_range < newer_range, "{older_range:?} {newer_range:?}");
    let (fresh, _) = crate::account(&store, "fresh").await;
    assert!(store.id_range(fresh.id).await.unwrap().unwrap() > newer_range);
}

on_both_backends!(
    account_names_are_unique_and_admin_is_tracked,
    router_tokens_are_separate_from_api_tokens,
    accounts_get_distinct_id_ranges_for_good,
);
