//! Big tables and tables that change under load.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use route_table::{AppRoute, RouteTable};
use tokio::task::JoinSet;

use crate::support::{connect, send, table, Backend, Router};

/// `count` apps `app0` … at `appN.localhost`, app `i` served by `pick(i)`.
fn big_table(version: u64, count: usize, pick: impl Fn(usize) -> SocketAddr) -> Arc<RouteTable> {
    let mut table = RouteTable {
        version,
        ..RouteTable::default()
    };
    for i in 0..count {
        let app = format!("app{i}");
        table.insert_host(&format!("{app}.localhost"), &app);
        table.insert_app(
            &app,
            AppRoute {
                backends: vec![route_table::Backend {
                    addr: pick(i),
                    instance: "web.1".to_owned(),
                }],
                ..AppRoute::default()
            },
        );
    }
    Arc::new(table)
}

/// Each host is answered 200 by the backend named with it.
async fn assert_routes(router: &Router, cases: &[(&str, &str)]) {
    for (host, want) in cases {
        let reply = router.get(host, "/").await;
        assert_eq!((reply.status, reply.body.as_str()), (200, *want), "{host}");
    }
}

#[tokio::test]
async fn ten_thousand_routes_work_and_swap() {
    const APPS: usize = 10_000;
    let (even, odd) = (Backend::start("even").await, Backend::start("odd").await);
    let (e, o) = (even.addr, odd.addr);
    let router = Router::start(big_table(1, APPS, |i| if i % 2 == 0 { e } else { o })).await;
    let cases = [
        ("app0.localhost", "even"),
        ("app9999.localhost", "odd"),
        ("app4321.localhost", "odd"),
    ];
    assert_routes(&router, &cases).await;
    assert_eq!(router.get("app10000.localhost", "/").await.status, 404);

    // The same hosts, every app moved to the other backend, plus one more app.
    router
        .routes
        .send(big_table(2, APPS + 1, |i| if i % 2 == 0 { o } else { e }))
        .unwrap();
    let mut swapped = false;
    for _ in 0..1000 {
        if router.get("app10000.localhost", "/").await.status == 200 {
            swapped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(swapped, "the new table is served");
    let cases = [
        ("app0.localhost", "odd"),
        ("app9999.localhost", "even"),
        ("app4321.localhost", "even"),
    ];
    assert_routes(&router, &cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_swapped_every_few_ms_under_load_fail_no_request() {
    const CLIENTS: usize = 8;
    const PER_CLIENT: usize = 300;
    let backends = [
        Backend::start("web-1").await,
        Backend::start("web-2").await,
        Backend::start("web-3").await,
    ];
    let addrs: Vec<SocketAddr> = backends.iter().map(|b| b.addr).collect();
    let router = Router::start(table(1, &[("web.localhost", "web", addrs.clone())])).await;

    // Every non-empty subset of the three backends, in turn.
    let subsets: Vec<Vec<SocketAddr>> = (1u8..8)
        .map(|mask| {
            (0..3)
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| addrs[i])
                .collect()
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (routes, stop) = (router.routes.clone(), stop.clone());
        tokio::spawn(async move {
            let mut swaps = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let subset = subsets[swaps as usize % subsets.len()].clone();
                routes
                    .send(table(2 + swaps, &[("web.localhost", "web", subset)]))
                    .unwrap();
                swaps += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            swaps
        })
    };

    let mut clients = JoinSet::new();
    for _ in 0..CLIENTS {
        let addr = router.addr;
        clients.spawn(async move {
            let mut conn = connect(addr).await;
            for i in 0..PER_CLIENT {
                let reply = send(&mut conn, "web.localhost", "/").await;
                assert_eq!(reply.status, 200, "request {i}: {}", reply.body);
                assert!(reply.body.starts_with("web-"), "{}", reply.body);
            }
        });
    }
    while let Some(result) = clients.join_next().await {
        result.expect("every request of every client succeeded");
    }
    stop.store(true, Ordering::SeqCst);
    let swaps = swapper.await.unwrap();
    assert!(swaps > 10, "the table changed during the load ({swaps} swaps)");
}
