//! Stopping the router lets the request in flight finish, then refuses new connections.

use std::time::Duration;

use crate::support::{table, Backend, Router};

#[tokio::test]
async fn graceful_stop_finishes_in_flight_requests() {
    let backend = Backend::start("web-1").await;
    let router = Router::start(table(1, &[("web.localhost", "web", vec![backend.addr])])).await;
    let addr = router.addr;

    let mut conn = router.connect().await;
    let in_flight =
        tokio::spawn(async move { crate::support::send(&mut conn, "web.localhost", "/slow").await });
    // Wait until the backend holds the request, then ask the router to stop.
    while backend.connections() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stopping = tokio::spawn(router.stop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !stopping.is_finished(),
        "the router waits for the request in flight"
    );

    backend.release();
    let reply = tokio::time::timeout(Duration::from_secs(5), in_flight)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((reply.status, reply.body.as_str()), (200, "web-1"));
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .unwrap()
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no new connections after the stop"
    );
}

#[tokio::test]
async fn graceful_stop_is_bounded() {
    let backend = Backend::start("web-1").await;
    let config = proxy::ProxyConfig {
        shutdown_grace: Duration::from_millis(200),
        ..proxy::ProxyConfig::new("localhost")
    };
    let router = Router::start_with(table(1, &[("web.localhost", "web", vec![backend.addr])]), config).await;
    let mut conn = router.connect().await;
    let in_flight = tokio::spawn(async move {
        let req = hyper::Request::get("/slow")
            .header("host", "web.localhost")
            .body(Default::default())
            .unwrap();
        conn.send_request(req).await
    });
    while backend.connections() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The backend never answers; the router must still stop after its grace period.
    tokio::time::timeout(Duration::from_secs(5), router.stop())
        .await
        .expect("stop within the grace");
    assert!(
        in_flight.await.unwrap().is_err(),
        "the abandoned request's connection is closed"
    );
}
