use std::collections::BTreeMap;
use store::testing::TestDatabase;

use store::{QuotaOverrides, QuotaUsage};
use vocabulary::ProcessType;

use crate::{account, app};

async fn overrides_are_kept_and_usage_sums_formations_of_owned_apps(store: TestDatabase) {
    let (owner, _) = account(&store, "owner").await;
    let (other, _) = account(&store, "other").await;
    assert_eq!(
        store.quota_overrides(owner.id).await.unwrap(),
        QuotaOverrides::default()
    );
    let overrides = QuotaOverrides {
        apps: Some(3),
        instances: None,
        memory_bytes: Some(1 << 30),
        builds: Some(1),
    };
    store.set_quota_overrides(owner.id, overrides).await.unwrap();
    assert_eq!(store.quota_overrides(owner.id).await.unwrap(), overrides);
    let cleared = QuotaOverrides {
        apps: Some(5),
        ..QuotaOverrides::default()
    };
    store.set_quota_overrides(owner.id, cleared).await.unwrap();
    assert_eq!(store.quota_overrides(owner.id).await.unwrap(), cleared);

    assert_eq!(store.quota_usage(owner.id).await.unwrap(), QuotaUsage::default());
    let shop = app(&store, &owner, "shop").await;
    let blog = app(&store, &owner, "blog").await;
    let elsewhere = app(&store, &other, "elsewhere").await;
    let web = ProcessType::web();
    let worker: ProcessType = "worker".parse().unwrap();
    store
        .set_formations(shop.id, &BTreeMap::from([(web.clone(), 2), (worker, 1)]), 100)
        .await
        .unwrap();
    store.set_formation(blog.id, &web, 3, 1000).await.unwrap();
    store.set_formation(elsewhere.id, &web, 9, 1000).await.unwrap();
    assert_eq!(
        store.quota_usage(owner.id).await.unwrap(),
        QuotaUsage {
            apps: 2,
            instances: 6,
            memory_bytes: 3 * 100 + 3 * 1000,
        }
    );
}

on_both_backends!(overrides_are_kept_and_usage_sums_formations_of_owned_apps,);
