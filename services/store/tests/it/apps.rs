use store::StoreError;
use vocabulary::AppName;

use crate::{account, app, release};
use store::testing::TestDatabase;

async fn app_names_are_unique_across_tenants(store: TestDatabase) {
    let (alice, _) = account(&store, "alice").await;
    let (bob, _) = account(&store, "bob").await;
    app(&store, &alice, "shop").await;
    let err = store
        .create_app(bob.id, &AppName::new("shop").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert_eq!(err.to_string(), "app shop already exists");
    let err = store
        .create_app(alice.id, &AppName::new("shop").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
}

async fn tenants_see_only_their_own_apps(store: TestDatabase) {
    let (alice, _) = account(&store, "alice").await;
    let (bob, _) = account(&store, "bob").await;
    let shop = app(&store, &alice, "shop").await;
    let blog = app(&store, &alice, "blog").await;
    let wiki = app(&store, &bob, "wiki").await;

    let name = AppName::new("shop").unwrap();
    assert_eq!(
        store.app_owned_by(alice.id, &name).await.unwrap(),
        Some(shop.clone())
    );
    assert_eq!(store.app_owned_by(bob.id, &name).await.unwrap(), None);
    assert_eq!(
        store
            .app_owned_by(alice.id, &AppName::new("nope").unwrap())
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.app_by_name(&name).await.unwrap(), Some(shop.clone()));

    let names = |apps: Vec<store::App>| apps.into_iter().map(|a| a.name.to_string()).collect::<Vec<_>>();
    assert_eq!(names(store.apps_of(alice.id).await.unwrap()), ["blog", "shop"]);
    assert_eq!(names(store.apps_of(bob.id).await.unwrap()), ["wiki"]);
    assert_eq!(names(store.all_apps().await.unwrap()), ["blog", "shop", "wiki"]);
    assert_eq!(store.app(blog.id).await.unwrap(), Some(blog));
    assert_eq!(store.app(wiki.id).await.unwrap().unwrap().owner, bob.id);
}

async fn deleting_an_app_cascades_and_frees_its_name(store: TestDatabase) {
    let (alice, _) = account(&store, "alice").await;
    let shop = app(&store, &alice, "shop").await;
    let other = app(&store, &alice, "other").await;
    let rel = release(&store, &shop, &alice, &["web"]).await;
    release(&store, &other, &alice, &["web"]).await;
    store
        .set_formation(shop.id, &vocabulary::ProcessType::web(), 2, 1 << 20)
        .await
        .unwrap();
    let node = crate::instances::node(&store).await;
    store
        .insert_instance(&crate::instances::instance(&shop, &rel, &node, 1))
        .await
        .unwrap();

    store.delete_app(shop.id).await.unwrap();
    assert_eq!(store.app(shop.id).await.unwrap(), None);
    assert!(store.releases(shop.id).await.unwrap().is_empty());
    assert!(store.release(rel.id).await.unwrap().is_none());
    assert!(store.formation(shop.id).await.unwrap().is_empty());
    assert!(store.instances_of_app(shop.id).await.unwrap().is_empty());
    // Other apps are untouched.
    assert_eq!(store.releases(other.id).await.unwrap().len(), 1);
    // The name can be taken again, by anyone.
    let (bob, _) = account(&store, "bob").await;
    app(&store, &bob, "shop").await;
}

async fn router_settings_default_then_change(store: TestDatabase) {
    let (alice, _) = account(&store, "alice").await;
    let shop = app(&store, &alice, "shop").await;
    let blog = app(&store, &alice, "blog").await;
    assert_eq!(
        store.router_settings(shop.id).await.unwrap(),
        store::RouterSettings::default()
    );
    let settings = store::RouterSettings {
        redirect_https: true,
        first_byte_timeout_secs: Some(90),
    };
    store.set_router_settings(shop.id, settings).await.unwrap();
    assert_eq!(store.router_settings(shop.id).await.unwrap(), settings);
    let all = store.all_router_settings().await.unwrap();
    assert_eq!(all[&shop.id], settings);
    assert_eq!(all[&blog.id], store::RouterSettings::default());
}

on_both_backends!(
    app_names_are_unique_across_tenants,
    tenants_see_only_their_own_apps,
    deleting_an_app_cascades_and_frees_its_name,
    router_settings_default_then_change,
);
