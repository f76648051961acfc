use std::collections::BTreeSet;

use vocabulary::{ProcessType, ReleaseVersion};

use crate::{account, app, release};
use store::testing::TestDatabase;

async fn releases_are_numbered_per_app(store: TestDatabase) {
    let (alice, _) = account(&store, "alice").await;
    let shop = app(&store, &alice, "shop").await;
    let blog = app(&store, &alice, "blog").await;
    assert_eq!(store.latest_release(shop.id).await.unwrap(), None);

    let v1 = release(&store, &shop, &alice, &["web"]).await;
    let v2 = release(&store, &shop, &alice, &["web", "worker"]).await;
    let blog_v1 = release(&store, &blog, &alice, &["web"]).await;
    assert_eq!(v1.version, ReleaseVersion(1));
    assert_eq!(v2.version, ReleaseVersion(2));
    assert_eq!(blog_v1.version, ReleaseVersion(1));

    assert_eq!(store.latest_release(shop.id).await.unwrap(), Some(v2.clone()));
    assert_eq!(store.release(v1.id).await.unwrap(), Some(v1.clone()));
    assert_eq!(
        store
            .release_by_version(shop.id, ReleaseVersion(2))
            .await
            .unwrap(),
        Some(v2.clone())
    );
    assert_eq!(
        store
            .release_by_version(shop.id, ReleaseVersion(3))
            .await
            .unwrap(),
        None
    );
    let all = store.releases(shop.id).await.unwrap();
    assert_eq!(all, vec![v2.clone(), v1]);
    // Processes and config survive the round trip.
    assert!(v2.processes.contains_key(&ProcessType::new("worker").unwrap()));
    assert_eq!(all[0].config.get("GREETING").map(String::as_str), Some("hi"));
}

async fn concurrent_deploys_get_distinct_versions(store: TestDatabase) {
    let (alice, _) = account(&store, "alice").await;
    let shop = app(&store, &alice, "shop").await;
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let (store, shop, alice) = (store.clone(), shop.clone(), alice.clone());
        tasks.push(tokio::spawn(async move {
            release(&store, &shop, &alice, &["web"]).await.version.0
        }));
    }
    let mut versions = BTreeSet::new();
    for task in tasks {
        versions.insert(task.await.unwrap());
    }
    assert_eq!(versions, (1..=12).collect::<BTreeSet<u32>>());
}

async fn a_release_for_a_missing_app_is_refused(store: TestDatabase) {
    let (alice, _) = account(&store, "alice").await;
    let ghost = store::App {
        id: vocabulary::AppId::new(),
        name: vocabulary::AppName::new("ghost").unwrap(),
        owner: alice.id,
        created_at: chrono::Utc::now(),
    };
    let result = store
        .create_release(store::NewRelease {
            app: ghost.id,
            image_digest: "sha256:00".to_owned(),
            processes: Default::default(),
            config: Default::default(),
            description: "x".to_owned(),
            created_by: alice.id,
        })
        .await;
    assert!(result.is_err(), "foreign keys must be on");
}

async fn kinds_pending_config_and_stopped_apps(store: TestDatabase) {
    use std::collections::BTreeMap;
    use store::{NewRelease, ReleaseKind};

    let (alice, _) = account(&store, "alice").await;
    let shop = app(&store, &alice, "shop").await;

    // Config set before the first release is kept for it; the release's own config wins on a clash.
    let pending = BTreeMap::from([
        ("A".to_owned(), "from pending".to_owned()),
        ("GREETING".to_owned(), "pending".to_owned()),
    ]);
    assert!(store.set_pending_config(shop.id, &pending).await.unwrap());
    assert_eq!(store.pending_config(shop.id).await.unwrap(), pending);
    let v1 = release(&store, &shop, &alice, &["web"]).await;
    assert_eq!(v1.kind, ReleaseKind::Build);
    assert_eq!(
        v1.config,
        BTreeMap::from([
            ("A".to_owned(), "from pending".to_owned()),
            ("GREETING".to_owned(), "hi".to_owned()),
        ])
    );
    assert_eq!(store.latest_release(shop.id).await.unwrap(), Some(v1.clone()));
    // Gone once taken, and not settable any more: releases carry config from now on.
    assert!(store.pending_config(shop.id).await.unwrap().is_empty());
    assert!(!store.set_pending_config(shop.id, &pending).await.unwrap());

    let v2 = store
        .create_release_of_kind(
            NewRelease {
                app: shop.id,
                image_digest: v1.image_digest.clone(),
                processes: v1.processes.clone(),
                config: BTreeMap::new(),
                description: "Rollback to v1".to_owned(),
                created_by: alice.id,
            },
            ReleaseKind::Rollback,
        )
        .await
        .unwrap();
    assert_eq!(v2.kind, ReleaseKind::Rollback);
    assert_eq!(v2.version, ReleaseVersion(2));
    assert_eq!(store.release(v2.id).await.unwrap(), Some(v2.clone()));
    for kind in ["build", "config", "rollback", "rebase", "image"] {
        assert_eq!(kind.parse::<ReleaseKind>().unwrap().as_str(), kind);
    }
    assert!("scale".parse::<ReleaseKind>().is_err());

    assert!(!store.app_stopped(shop.id).await.unwrap());
    store.set_app_stopped(shop.id, true).await.unwrap();
    assert!(store.app_stopped(shop.id).await.unwrap());
    assert_eq!(store.stopped_apps().await.unwrap(), [shop.id].into());
    store.set_app_stopped(shop.id, false).await.unwrap();
    assert!(!store.app_stopped(shop.id).await.unwrap());
}

async fn debug_output_names_config_vars_without_values(store: TestDatabase) {
    let (alice, _) = account(&store, "alice").await;
    let shop = app(&store, &alice, "shop").await;
    // The helper's release has GREETING = "hi".
    let v1 = release(&store, &shop, &alice, &["web"]).await;
    let text = format!("{v1:?}");
    assert!(text.contains("GREETING"), "{text}");
    assert!(!text.contains("\"hi\""), "{text}");
}

async fn health_checks_and_deploy_settings_read_back(store: TestDatabase) {
    use agent_contract::HealthCheck;
    use std::collections::BTreeMap;
    use vocabulary::{DeployStrategy, ProcessType};

    let (alice, _) = account(&store, "alice").await;
    let shop = app(&store, &alice, "shop").await;
    let v1 = release(&store, &shop, &alice, &["web"]).await;
    assert!(store
        .release(v1.id)
        .await
        .unwrap()
        .unwrap()
        .health_checks
        .is_empty());
    let checks = BTreeMap::from([(ProcessType::web(), HealthCheck::of_path("/health"))]);
    let new = store::NewRelease {
        app: shop.id,
        image_digest: v1.image_digest.clone(),
        processes: v1.processes.clone(),
        config: v1.config.clone(),
        description: "Deploy 2b3c4d5".to_owned(),
        created_by: alice.id,
    };
    let v2 = store
        .create_release_with_checks(new, store::ReleaseKind::Build, checks.clone())
        .await
        .unwrap();
    assert_eq!(v2.health_checks, checks);
    assert_eq!(
        store
            .latest_release(shop.id)
            .await
            .unwrap()
            .unwrap()
            .health_checks,
        checks
    );

    assert_eq!(store.boot_timeout_secs(shop.id).await.unwrap(), None);
    store.set_boot_timeout_secs(shop.id, Some(90)).await.unwrap();
    store.set_deploy_timeout_secs(shop.id, Some(300)).await.unwrap();
    assert_eq!(store.boot_timeout_secs(shop.id).await.unwrap(), Some(90));
    assert_eq!(store.boot_timeouts().await.unwrap().get(&shop.id), Some(&90));
    assert_eq!(store.deploy_timeout_secs(shop.id).await.unwrap(), Some(300));

    assert_eq!(store.health_check_path(shop.id).await.unwrap(), None);
    store.set_health_check_path(shop.id, Some("/up")).await.unwrap();
    assert_eq!(
        store.health_check_path(shop.id).await.unwrap().as_deref(),
        Some("/up")
    );
    assert_eq!(
        store
            .health_check_paths()
            .await
            .unwrap()
            .get(&shop.id)
            .map(String::as_str),
        Some("/up")
    );
    store.set_health_check_path(shop.id, None).await.unwrap();
    assert_eq!(store.health_check_path(shop.id).await.unwrap(), None);

    assert_eq!(
        store.deploy_strategy(shop.id).await.unwrap(),
        DeployStrategy::AllAtOnce
    );
    store
        .set_deploy_strategy(shop.id, DeployStrategy::Rolling)
        .await
        .unwrap();
    assert_eq!(
        store.deploy_strategy(shop.id).await.unwrap(),
        DeployStrategy::Rolling
    );
    store
        .set_deploy_strategy(shop.id, DeployStrategy::AllAtOnce)
        .await
        .unwrap();
    assert!(store.deploy_strategies().await.unwrap().is_empty());
}

on_both_backends!(
    health_checks_and_deploy_settings_read_back,
    kinds_pending_config_and_stopped_apps,
    releases_are_numbered_per_app,
    concurrent_deploys_get_distinct_versions,
    a_release_for_a_missing_app_is_refused,
    debug_output_names_config_vars_without_values,
);
