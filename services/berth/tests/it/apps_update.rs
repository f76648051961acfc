//! `berth apps update` as users type it, against the real API in-process (no root needed).

use std::process::Command;
use std::sync::Arc;

use route_table::RouteTable;
use tokio::sync::watch;

use crate::standalone_router::{serve_api, store_with_account};
use crate::support::berth_bin;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_byte_timeout_is_set_and_put_back_to_the_default_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let (store, alice, token) = store_with_account(dir.path(), "alice", false).await;
    let app = store
        .create_app(alice.id, &vocabulary::AppName::new("shop").unwrap())
        .await
        .unwrap();
    let (_routes, routes_rx) = watch::channel(Arc::new(RouteTable::default()));
    let (api, api_task) = serve_api(store.clone(), dir.path(), routes_rx).await;

    let berth = |args: &[&str]| {
        let mut command = Command::new(berth_bin());
        command
            .args(args)
            .env("BERTH_API", format!("http://{api}"))
            .env("BERTH_TOKEN", &token)
            .env_remove("BERTH_TOKEN_FILE");
        async move {
            tokio::task::spawn_blocking(move || command.output().unwrap())
                .await
                .unwrap()
        }
    };
    let ok = |output: std::process::Output| {
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    };

    let shown = ok(berth(&["apps", "update", "shop", "--first-byte-timeout", "90"]).await);
    assert!(shown.contains("First-byte timeout:  90 s"), "{shown}");
    let settings = store.router_settings(app.id).await.unwrap();
    assert_eq!(settings.first_byte_timeout_secs, Some(90));

    let shown = ok(berth(&["apps", "update", "-a", "shop", "--first-byte-timeout", "default"]).await);
    assert!(shown.contains("First-byte timeout:  router default"), "{shown}");
    let settings = store.router_settings(app.id).await.unwrap();
    assert_eq!(settings.first_byte_timeout_secs, None);

    // The server checks the range and says so.
    let bad = berth(&["apps", "update", "-a", "shop", "--first-byte-timeout", "0"]).await;
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("between 1 and 300 seconds"), "{stderr}");

    // The build time limit, as a duration.
    let shown = ok(berth(&["apps", "update", "shop", "--build-timeout", "30m"]).await);
    assert!(shown.contains("Build timeout:       1800 s"), "{shown}");
    assert_eq!(store.build_timeout_secs(app.id).await.unwrap(), Some(1800));
    let bad = berth(&["apps", "update", "shop", "--build-timeout", "3h"]).await;
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("between 60 and 7200 seconds"), "{stderr}");
    let shown = ok(berth(&["apps", "update", "shop", "--build-timeout", "default"]).await);
    assert!(shown.contains("Build timeout:       default (900 s)"), "{shown}");
    assert_eq!(store.build_timeout_secs(app.id).await.unwrap(), None);

    // The stop grace, as a duration too.
    let shown = ok(berth(&["apps", "update", "shop", "--stop-grace", "45s"]).await);
    assert!(shown.contains("Stop grace:          45 s"), "{shown}");
    assert_eq!(store.stop_grace_secs(app.id).await.unwrap(), Some(45));
    let bad = berth(&["apps", "update", "shop", "--stop-grace", "11m"]).await;
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("between 1 and 600 seconds"), "{stderr}");
    let shown = ok(berth(&["apps", "update", "shop", "--stop-grace", "default"]).await);
    assert!(shown.contains("Stop grace:          default (30 s)"), "{shown}");
    assert_eq!(store.stop_grace_secs(app.id).await.unwrap(), None);

    // How deploys go: boot and deploy timeouts, the app's health check, the strategy.
    let shown = ok(berth(&[
        "apps",
        "update",
        "shop",
        "--boot-timeout",
        "90s",
        "--deploy-timeout",
        "5m",
        "--health-check",
        "/health",
        "--deploy-strategy",
        "rolling",
    ])
    .await);
    for want in [
        "Boot timeout:        90 s",
        "Deploy timeout:      300 s",
        "Health check:        GET /health",
        "Deploy strategy:     rolling",
    ] {
        assert!(shown.contains(want), "{want}: {shown}");
    }
    assert_eq!(store.deploy_timeout_secs(app.id).await.unwrap(), Some(300));
    let bad = berth(&["apps", "update", "shop", "--deploy-strategy", "blue-green"]).await;
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("expected rolling or all-at-once"), "{stderr}");
    let shown = ok(berth(&[
        "apps",
        "update",
        "shop",
        "--boot-timeout",
        "default",
        "--deploy-timeout",
        "default",
        "--health-check",
        "none",
        "--deploy-strategy",
        "all-at-once",
    ])
    .await);
    for want in [
        "Boot timeout:        default (60 s)",
        "Deploy timeout:      default (120 s)",
        "Health check:        app.json's, if any",
        "Deploy strategy:     all-at-once",
    ] {
        assert!(shown.contains(want), "{want}: {shown}");
    }
    api_task.abort();
}
