use store::testing::TestDatabase;

use crate::{account, temp_sqlite};

#[tokio::test]
async fn sessions_resolve_expire_end_and_are_stored_hashed() {
    let (store, dir) = temp_sqlite().await;
    let (alice, _) = account(&store, "alice").await;
    let session = store
        .create_session(alice.id, chrono::Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(session.id.len(), 64);
    assert_ne!(session.id, session.csrf_token);

    let found = store
        .session(&session.id)
        .await
        .unwrap()
        .expect("session resolves");
    assert_eq!(found.account, alice);
    assert_eq!(found.csrf_token, session.csrf_token);
    assert_eq!(found.expires_at, session.expires_at);
    assert_eq!(store.session(&session.csrf_token).await.unwrap(), None);
    assert_eq!(store.session("").await.unwrap(), None);

    // Only the hash is on disk.
    store.close().await;
    let bytes = std::fs::read(dir.path().join("berth.db")).unwrap();
    let wal = std::fs::read(dir.path().join("berth.db-wal")).unwrap_or_default();
    let id = session.id.as_bytes();
    for file in [&bytes, &wal] {
        assert!(
            !file.windows(id.len()).any(|w| w == id),
            "the clear session id is stored"
        );
    }
}

async fn expired_and_deleted_sessions_do_not_resolve(store: TestDatabase) {
    let (bob, _) = account(&store, "bob").await;
    let expired = store
        .create_session(bob.id, chrono::Duration::seconds(-1))
        .await
        .unwrap();
    assert_eq!(store.session(&expired.id).await.unwrap(), None);
    // The lookup deleted it.
    assert!(!store.delete_session(&expired.id).await.unwrap());

    let live = store
        .create_session(bob.id, chrono::Duration::hours(1))
        .await
        .unwrap();
    assert!(store.delete_session(&live.id).await.unwrap());
    assert_eq!(store.session(&live.id).await.unwrap(), None);
}

async fn expired_sessions_are_swept_and_live_ones_kept(store: TestDatabase) {
    let (carol, _) = account(&store, "carol").await;
    let mut expired = Vec::new();
    for seconds in [-3600, -1] {
        let s = store
            .create_session(carol.id, chrono::Duration::seconds(seconds))
            .await
            .unwrap();
        expired.push(s.id);
    }
    let live = store
        .create_session(carol.id, chrono::Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(store.delete_expired_sessions().await.unwrap(), 2);
    assert_eq!(store.delete_expired_sessions().await.unwrap(), 0);
    for id in &expired {
        assert!(
            !store.delete_session(id).await.unwrap(),
            "an expired session was kept"
        );
    }
    assert!(store.session(&live.id).await.unwrap().is_some());
}

async fn passwords_sign_in_only_their_own_account(store: TestDatabase) {
    let (dora, _) = account(&store, "dora").await;
    let (_, _) = account(&store, "evan").await;
    let name = |n: &str| vocabulary::AccountName::new(n).unwrap();
    // No password yet: nothing signs in.
    assert_eq!(store.account_for_password(&name("dora"), "").await.unwrap(), None);

    store.set_password(dora.id, "first password 1").await.unwrap();
    assert_eq!(
        store
            .account_for_password(&name("dora"), "first password 1")
            .await
            .unwrap(),
        Some(dora.clone())
    );
    for (who, password) in [
        ("dora", "first password 2"),
        ("evan", "first password 1"),
        ("nobody", "x"),
    ] {
        assert_eq!(
            store.account_for_password(&name(who), password).await.unwrap(),
            None,
            "{who}"
        );
    }
    // A new password replaces the old one.
    store.set_password(dora.id, "second password").await.unwrap();
    assert_eq!(
        store
            .account_for_password(&name("dora"), "first password 1")
            .await
            .unwrap(),
        None
    );
    assert!(store
        .account_for_password(&name("dora"), "second password")
        .await
        .unwrap()
        .is_some());
}

on_both_backends!(
    expired_and_deleted_sessions_do_not_resolve,
    expired_sessions_are_swept_and_live_ones_kept,
    passwords_sign_in_only_their_own_account,
);
