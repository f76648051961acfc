//! Draining: a backend that leaves the table finishes what it has, gets nothing new, and `Traffic` says when
//! it is idle.

use crate::support::{eventually, send, table, Backend, Router};

#[tokio::test]
async fn removed_backend_finishes_in_flight_requests_and_gets_no_new_ones() {
    let (old, new) = (Backend::start("web-old").await, Backend::start("web-new").await);
    let config = proxy::ProxyConfig::new("localhost");
    let traffic = config.traffic.clone();
    let router = Router::start_with(table(1, &[("web.localhost", "web", vec![old.addr])]), config).await;

    let mut slow_conn = router.connect().await;
    let slow = tokio::spawn(async move { send(&mut slow_conn, "web.localhost", "/slow").await });
    eventually("the slow request reaches the old backend", || {
        traffic.in_flight(old.addr) == 1
    })
    .await;

    router
        .routes
        .send(table(2, &[("web.localhost", "web", vec![new.addr])]))
        .unwrap();
    assert_eq!(traffic.table_version(), 1);
    eventually("the router routes by the new table", || {
        traffic.table_version() == 2
    })
    .await;
    // From then on, nothing new reaches the old backend.
    for i in 0..20 {
        let reply = router.get("web.localhost", "/").await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (200, "web-new"),
            "request {i}"
        );
    }
    assert_eq!(
        traffic.in_flight(old.addr),
        1,
        "the removed backend's request still counts"
    );
    assert_eq!(traffic.in_flight(new.addr), 0);

    old.release();
    let reply = slow.await.unwrap();
    assert_eq!((reply.status, reply.body.as_str()), (200, "web-old"));
    eventually("the old backend drained", || traffic.in_flight(old.addr) == 0).await;
    assert_eq!(
        old.seen(),
        ["GET /slow"],
        "only the drained request reached the old backend"
    );
}
