use store::StoreError;
use vocabulary::DomainName;

use crate::{account, app};
use store::testing::TestDatabase;

fn domain(name: &str) -> DomainName {
    DomainName::new(name).unwrap()
}

async fn a_domain_belongs_to_one_app_across_tenants(store: TestDatabase) {
    let (alice, _) = account(&store, "alice").await;
    let (bob, _) = account(&store, "bob").await;
    let shop = app(&store, &alice, "shop").await;
    let blog = app(&store, &bob, "blog").await;
    store
        .add_domain(shop.id, &domain("shop.example.com"))
        .await
        .unwrap();
    store.add_domain(shop.id, &domain("*.example.com")).await.unwrap();
    for app in [shop.id, blog.id] {
        let err = store
            .add_domain(app, &domain("shop.example.com"))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    }
    store
        .add_domain(blog.id, &domain("blog.example.org"))
        .await
        .unwrap();

    let names = |domains: Vec<store::Domain>| -> Vec<String> {
        domains.into_iter().map(|d| d.name.to_string()).collect()
    };
    assert_eq!(
        names(store.domains_of(shop.id).await.unwrap()),
        ["*.example.com", "shop.example.com"]
    );
    assert_eq!(store.all_domains().await.unwrap().len(), 3);

    // Only the owning app can remove it.
    assert!(!store
        .remove_domain(blog.id, &domain("shop.example.com"))
        .await
        .unwrap());
    assert!(store
        .remove_domain(shop.id, &domain("shop.example.com"))
        .await
        .unwrap());
    store
        .add_domain(blog.id, &domain("shop.example.com"))
        .await
        .unwrap();

    // Domains go with their app.
    store.delete_app(blog.id).await.unwrap();
    assert_eq!(names(store.all_domains().await.unwrap()), ["*.example.com"]);
}

on_both_backends!(a_domain_belongs_to_one_app_across_tenants,);
