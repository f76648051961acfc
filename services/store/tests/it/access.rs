use store::testing::TestDatabase;
use store::{AppRole, StoreError, TokenScope};
use vocabulary::{AccountName, AppName};

use crate::{account, app, release};

async fn collaborators_see_the_app_with_their_role_and_others_do_not(store: TestDatabase) {
    let (owner, _) = account(&store, "owner").await;
    let (friend, _) = account(&store, "friend").await;
    let (stranger, _) = account(&store, "stranger").await;
    let shop = app(&store, &owner, "shop").await;
    let name = AppName::new("shop").unwrap();

    assert_eq!(
        store.app_with_role(owner.id, &name).await.unwrap(),
        Some((shop.clone(), AppRole::Owner))
    );
    assert_eq!(store.app_with_role(friend.id, &name).await.unwrap(), None);

    let added = store
        .add_collaborator(shop.id, &friend, &owner.name)
        .await
        .unwrap();
    assert_eq!(added.account, friend.name);
    assert_eq!(added.added_by, "owner");
    let again = store.add_collaborator(shop.id, &friend, &owner.name).await;
    assert!(matches!(again, Err(StoreError::Conflict { .. })), "{again:?}");

    assert_eq!(
        store.app_with_role(friend.id, &name).await.unwrap(),
        Some((shop.clone(), AppRole::Collaborator))
    );
    assert_eq!(store.app_with_role(stranger.id, &name).await.unwrap(), None);
    let own = app(&store, &friend, "blog").await;
    let listed = store.apps_with_role(friend.id).await.unwrap();
    assert_eq!(
        listed,
        vec![(own, AppRole::Owner), (shop.clone(), AppRole::Collaborator)]
    );
    assert_eq!(store.collaborators(shop.id).await.unwrap(), vec![added]);

    assert!(store.remove_collaborator(shop.id, friend.id).await.unwrap());
    assert!(!store.remove_collaborator(shop.id, friend.id).await.unwrap());
    assert_eq!(store.app_with_role(friend.id, &name).await.unwrap(), None);
}

async fn tokens_have_scopes_can_be_listed_and_revoked(store: TestDatabase) {
    let (owner, first) = account(&store, "owner").await;
    let access = store.token_access(&first).await.unwrap().unwrap();
    assert_eq!(access.account, owner);
    assert_eq!(access.scope, TokenScope::Full);
    assert!(!access.suspended);

    let (info, read) = store.create_token(owner.id, TokenScope::Read).await.unwrap();
    assert_eq!(info.id.len(), store::TOKEN_ID_LEN);
    assert_eq!(
        store.token_access(&read).await.unwrap().unwrap().scope,
        TokenScope::Read
    );
    let listed = store.tokens_of(owner.id).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|t| t.last_used_at.is_some()), "{listed:?}");
    assert!(listed
        .iter()
        .any(|t| t.id == info.id && t.scope == TokenScope::Read));

    // Another account cannot revoke it; an empty prefix matches both and removes none.
    let (other, _) = account(&store, "other").await;
    assert_eq!(store.revoke_token(other.id, &info.id).await.unwrap(), 0);
    assert_eq!(store.revoke_token(owner.id, "").await.unwrap(), 2);
    assert_eq!(store.tokens_of(owner.id).await.unwrap().len(), 2);
    assert_eq!(store.revoke_token(owner.id, &info.id).await.unwrap(), 1);
    assert_eq!(store.token_access(&read).await.unwrap(), None);
    assert!(store.token_access(&first).await.unwrap().is_some());
}

async fn suspension_shows_on_tokens_and_accounts_are_found_listed_and_deleted(store: TestDatabase) {
    let (owner, token) = account(&store, "owner").await;
    let name = AccountName::new("owner").unwrap();
    assert_eq!(store.account_by_name(&name).await.unwrap(), Some(owner.clone()));
    store.set_account_suspended(owner.id, true).await.unwrap();
    assert!(store.token_access(&token).await.unwrap().unwrap().suspended);
    assert_eq!(store.accounts().await.unwrap(), vec![(owner.clone(), true)]);
    store.set_account_suspended(owner.id, false).await.unwrap();
    assert!(!store.token_access(&token).await.unwrap().unwrap().suspended);

    // An account that made a release of someone else's app cannot go while the release exists.
    let (boss, _) = account(&store, "boss").await;
    let shop = app(&store, &boss, "shop").await;
    store.add_collaborator(shop.id, &owner, &boss.name).await.unwrap();
    release(&store, &shop, &owner, &["web"]).await;
    let refused = store.delete_account(owner.id).await;
    assert!(matches!(refused, Err(StoreError::InUse { .. })), "{refused:?}");

    let (idle, idle_token) = account(&store, "idle").await;
    store.add_collaborator(shop.id, &idle, &boss.name).await.unwrap();
    store.delete_account(idle.id).await.unwrap();
    assert_eq!(store.token_access(&idle_token).await.unwrap(), None);
    assert_eq!(store.collaborators(shop.id).await.unwrap().len(), 1);
}

on_both_backends!(
    collaborators_see_the_app_with_their_role_and_others_do_not,
    tokens_have_scopes_can_be_listed_and_revoked,
    suspension_shows_on_tokens_and_accounts_are_found_listed_and_deleted,
);
