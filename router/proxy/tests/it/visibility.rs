//! What the router reports: one access record per request on the control plane's channel, and Prometheus
//! metrics on the admin listener.

use std::time::Duration;

use proxy::{AccessRecord, Metrics, ProxyConfig};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::support::{connect, dead_addr, send, table, Backend, Router};

async fn scrape(admin: std::net::SocketAddr) -> (u16, String) {
    let mut conn = connect(admin).await;
    let reply = send(&mut conn, "admin", "/metrics").await;
    (reply.status, reply.body)
}

#[tokio::test]
async fn access_records_and_metrics_describe_the_traffic() {
    let backend = Backend::start("web-1").await;
    let (records_tx, mut records) = mpsc::channel::<AccessRecord>(100);
    let metrics = Metrics::new();
    let config = ProxyConfig {
        access_log: Some(records_tx),
        metrics: metrics.clone(),
        ..ProxyConfig::new("localhost")
    };
    let routes = table(
        7,
        &[
            ("web.localhost", "web", vec![backend.addr]),
            (
                "gone.localhost",
                "gone",
                vec![dead_addr().await, dead_addr().await],
            ),
        ],
    );
    let router = Router::start_with(routes, config).await;
    let admin_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = admin_listener.local_addr().unwrap();
    let (stop_admin, admin_stopped) = tokio::sync::oneshot::channel::<()>();
    let admin_task = tokio::spawn(proxy::serve_admin(admin_listener, metrics, async move {
        let _ = admin_stopped.await;
    }));

    for _ in 0..5 {
        assert_eq!(router.get("web.localhost", "/").await.status, 200);
    }
    assert_eq!(router.get("nope.localhost", "/").await.status, 404);
    assert_eq!(router.get("gone.localhost", "/").await.status, 502);

    let mut got = Vec::new();
    for _ in 0..7 {
        let record = tokio::time::timeout(Duration::from_secs(10), records.recv())
            .await
            .expect("a record per request")
            .unwrap();
        got.push(record);
    }
    let ok: Vec<_> = got.iter().filter(|r| r.status == 200).collect();
    assert_eq!(ok.len(), 5, "{got:?}");
    for record in ok {
        assert_eq!(record.app.as_deref(), Some("web"));
        assert_eq!(record.instance.as_deref(), Some("web.1"));
        assert_eq!(record.backend, Some(backend.addr));
        assert_eq!((record.method.as_str(), record.path.as_str()), ("GET", "/"));
        assert_eq!(record.bytes, "web-1".len() as u64);
        assert!(record.upstream.is_some() && record.total >= record.upstream.unwrap());
        assert_eq!(record.request_id.as_deref().map(str::len), Some(36));
        assert_eq!(record.error, None);
    }
    let unknown = got.iter().find(|r| r.status == 404).expect("the 404 record");
    assert_eq!((unknown.app.as_deref(), unknown.error), (None, Some("B1")));
    let gone = got.iter().find(|r| r.status == 502).expect("the 502 record");
    assert_eq!((gone.app.as_deref(), gone.error), (Some("gone"), Some("H21")));

    let (status, text) = scrape(admin).await;
    assert_eq!(status, 200);
    for line in [
        "berth_router_requests_total{app=\"web\",class=\"2xx\"} 5",
        "berth_router_requests_total{app=\"-\",class=\"4xx\"} 1",
        "berth_router_requests_total{app=\"gone\",class=\"5xx\"} 1",
        "berth_router_request_duration_seconds_count{app=\"web\"} 5",
        "berth_router_route_table_version 7",
        // Of two refusing backends one is ejected; the other is the app's last and stays.
        "berth_router_backends_ejected 1",
        "berth_router_in_flight 0",
        "berth_router_access_log_dropped_total 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
    }

    router.routes.send(table(8, &[])).unwrap();
    let mut followed = false;
    for _ in 0..1000 {
        if scrape(admin)
            .await
            .1
            .lines()
            .any(|l| l == "berth_router_route_table_version 8")
        {
            followed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(followed, "the table version gauge follows swaps");
    let mut conn = connect(admin).await;
    assert_eq!(send(&mut conn, "admin", "/other").await.status, 404);
    let _ = stop_admin.send(());
    admin_task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_client_that_leaves_early_is_logged_as_interrupted() {
    let backend = Backend::start("web-1").await;
    let (records_tx, mut records) = mpsc::channel::<AccessRecord>(10);
    let config = ProxyConfig {
        access_log: Some(records_tx),
        ..ProxyConfig::new("localhost")
    };
    let traffic = config.traffic.clone();
    let router = Router::start_with(table(1, &[("web.localhost", "web", vec![backend.addr])]), config).await;

    let mut conn = connect(router.addr).await;
    let waiting = tokio::spawn(async move { send(&mut conn, "web.localhost", "/slow").await });
    crate::support::eventually("the request waits at the backend", || {
        traffic.in_flight(backend.addr) == 1
    })
    .await;
    // The client gives up: its connection closes with the request unanswered.
    waiting.abort();
    let record = tokio::time::timeout(Duration::from_secs(10), records.recv())
        .await
        .expect("a record for the abandoned request")
        .unwrap();
    assert_eq!((record.status, record.error), (499, Some("H27")), "{record:?}");
    assert_eq!(record.instance.as_deref(), Some("web.1"));
    crate::support::eventually("the abandoned request no longer counts", || {
        traffic.in_flight(backend.addr) == 0
    })
    .await;
}
