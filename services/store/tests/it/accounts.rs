use store::StoreError;
use vocabulary::AccountName;

use crate::temp_store;

#[tokio::test]
async fn account_tokens_resolve_and_are_stored_hashed() {
    let (store, dir) = temp_store().await;
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
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let secret = &token.as_bytes()["berth_".len()..];
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret),
            "token stored in clear text"
        );
    }
}

#[tokio::test]
async fn account_names_are_unique_and_admin_is_tracked() {
    let (store, _dir) = temp_store().await;
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
}

#[tokio::test]
async fn opening_an_impossible_path_names_it() {
    let err = match store::Store::open_sqlite(std::path::Path::new("/nonexistent-dir/x/berth.db")).await {
        Err(err) => err,
        Ok(_) => panic!("opened a database in a missing directory"),
    };
    assert!(err.to_string().contains("/nonexistent-dir/x/berth.db"), "{err}");
}

#[tokio::test]
async fn router_tokens_are_separate_from_api_tokens() {
    let (store, _dir) = temp_store().await;
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
