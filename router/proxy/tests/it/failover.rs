//! A backend that refuses connections is skipped; the request goes to the next one.

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::support::{connect, dead_addr, eventually, request, send, table, Backend, Router};

#[tokio::test]
async fn refused_backend_is_skipped_and_every_request_succeeds() {
    let live = Backend::start("web-live").await;
    let dead = dead_addr().await;
    let router = Router::start(table(1, &[("web.localhost", "web", vec![dead, live.addr])])).await;

    for i in 0..10 {
        let reply = router.get("web.localhost", "/").await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (200, "web-live"),
            "request {i}"
        );
    }
    // A request body is still delivered whole after the first attempt was refused.
    let payload = "x".repeat(100_000);
    for i in 0..4 {
        let mut conn = router.connect().await;
        let req = Request::post("/echo")
            .header("host", "web.localhost")
            .body(Full::new(Bytes::from(payload.clone())));
        let reply = request(&mut conn, req.unwrap()).await;
        assert_eq!(reply.status, 200, "request {i}");
        assert!(
            reply.body == payload,
            "request {i}: body of {} bytes came back",
            reply.body.len()
        );
    }
}

#[tokio::test]
async fn all_backends_refusing_gives_502() {
    let router = Router::start(table(
        1,
        &[("web.localhost", "web", vec![dead_addr().await, dead_addr().await])],
    ))
    .await;
    let reply = router.get("web.localhost", "/").await;
    assert_eq!(reply.status, 502);
    assert!(reply.body.contains("web could not be reached"), "{}", reply.body);
}

#[tokio::test]
async fn backend_that_stops_is_routed_around() {
    let (one, two) = (Backend::start("web-1").await, Backend::start("web-2").await);
    let router = Router::start(table(1, &[("web.localhost", "web", vec![one.addr, two.addr])])).await;
    assert_eq!(router.get("web.localhost", "/").await.status, 200);
    assert_eq!(router.get("web.localhost", "/").await.status, 200);

    // Its pooled connections die with it; the pool must not hand them out as if alive.
    one.stop().await;
    for i in 0..10 {
        let reply = router.get("web.localhost", "/").await;
        assert_eq!((reply.status, reply.body.as_str()), (200, "web-2"), "request {i}");
    }
}

#[tokio::test]
async fn backend_that_hangs_up_gives_502() {
    // Accepts the connection, then closes it without answering: the request was sent, so no retry.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hangup = tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            drop(stream);
        }
    });
    let router = Router::start(table(1, &[("web.localhost", "web", vec![addr])])).await;
    let reply = router.get("web.localhost", "/").await;
    assert_eq!(reply.status, 502);
    assert!(reply.body.contains("web failed to answer"), "{}", reply.body);
    hangup.abort();
}

#[tokio::test]
async fn backend_that_does_not_answer_in_time_gives_504() {
    let backend = Backend::start("web-1").await;
    let config = proxy::ProxyConfig {
        response_timeout: std::time::Duration::from_millis(200),
        ..proxy::ProxyConfig::new("localhost")
    };
    let router = Router::start_with(table(1, &[("web.localhost", "web", vec![backend.addr])]), config).await;
    let reply = router.get("web.localhost", "/slow").await;
    assert_eq!(reply.status, 504);
    assert!(
        reply.body.contains("web did not answer in time"),
        "{}",
        reply.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_of_three_backends_under_load_fails_no_request() {
    const CLIENTS: usize = 16;
    const PER_CLIENT: usize = 250;
    let mut backends = vec![
        Backend::start("web-1").await,
        Backend::start("web-2").await,
        Backend::start("web-3").await,
    ];
    let addrs = backends.iter().map(|b| b.addr).collect();
    let config = proxy::ProxyConfig {
        // Long enough to outlast the test however slow the machine: the victim must still be ejected at the end.
        ejection: proxy::EjectionPolicy {
            first: Duration::from_secs(600),
            max: Duration::from_secs(600),
        },
        ..proxy::ProxyConfig::new("localhost")
    };
    let traffic = config.traffic.clone();
    let router = Router::start_with(table(1, &[("web.localhost", "web", addrs)]), config).await;
    let done = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));

    let mut clients = JoinSet::new();
    for _ in 0..CLIENTS {
        let (addr, done, killed) = (router.addr, done.clone(), killed.clone());
        clients.spawn(async move {
            let mut conn = connect(addr).await;
            let mut seen_after_kill = Vec::new();
            for i in 0..PER_CLIENT {
                let after_kill = killed.load(Ordering::SeqCst);
                let reply = send(&mut conn, "web.localhost", "/").await;
                assert_eq!(reply.status, 200, "request {i}: {}", reply.body);
                if after_kill {
                    seen_after_kill.push(reply.body);
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
            seen_after_kill
        });
    }
    eventually("a quarter of the load ran", || {
        done.load(Ordering::SeqCst) >= CLIENTS * PER_CLIENT / 4
    })
    .await;
    let victim = backends.pop().unwrap();
    let (victim_name, victim_addr) = (victim.name.clone(), victim.addr);
    victim.stop().await;
    killed.store(true, Ordering::SeqCst);

    let mut after_kill = Vec::new();
    while let Some(result) = clients.join_next().await {
        after_kill.extend(result.expect("every request of every client succeeded"));
    }
    assert_eq!(done.load(Ordering::SeqCst), CLIENTS * PER_CLIENT);
    assert!(!after_kill.is_empty(), "some requests ran after the kill");
    assert!(
        !after_kill.contains(&victim_name),
        "the killed backend answered nothing after it was killed"
    );
    for backend in &backends {
        assert!(
            after_kill.contains(&backend.name),
            "{} still serves",
            backend.name
        );
        assert!(!traffic.is_ejected(backend.addr), "{} is healthy", backend.name);
    }
    assert!(
        traffic.is_ejected(victim_addr),
        "the killed backend is ejected, so it is no longer chosen"
    );
}

#[tokio::test]
async fn ejected_backend_is_probed_and_comes_back() {
    let live = Backend::start("web-live").await;
    let down = dead_addr().await;
    let config = proxy::ProxyConfig {
        ejection: proxy::EjectionPolicy {
            first: Duration::from_millis(200),
            max: Duration::from_millis(200),
        },
        ..proxy::ProxyConfig::new("localhost")
    };
    let traffic = config.traffic.clone();
    let router = Router::start_with(
        table(1, &[("web.localhost", "web", vec![live.addr, down])]),
        config,
    )
    .await;

    // Until the refusing backend was tried once, it is not ejected; every request still succeeds.
    let mut tries = 0;
    while !traffic.is_ejected(down) {
        let reply = router.get("web.localhost", "/").await;
        assert_eq!((reply.status, reply.body.as_str()), (200, "web-live"));
        tries += 1;
        assert!(tries < 1000, "the refusing backend is never tried");
    }
    // It comes back on the same address; after its ejection, a probe finds it and it takes requests again.
    let back = Backend::start_at("web-back", down).await;
    let mut served_by_back = false;
    for _ in 0..2000 {
        let reply = router.get("web.localhost", "/").await;
        assert_eq!(reply.status, 200);
        if reply.body == "web-back" {
            served_by_back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(served_by_back, "the probe reinstated the backend");
    assert!(!traffic.is_ejected(back.addr));
}
