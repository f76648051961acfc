//! The process's log goes through a non-blocking writer thread: `berth router` (no root needed) must still
//! put every access-log line on stderr, in order, before the lines it logs when it stops, and an error exit
//! must come after the lines that led to it.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::standalone_router::{backend, table};
use crate::support::{berth_bin, free_addr};

const REQUESTS: usize = 300;

fn write_table(path: &Path, backend: SocketAddr) {
    route_follower::Cache::new(path)
        .store(&table(1, backend))
        .unwrap();
}

fn router(addr: SocketAddr, routes: &Path, log: &Path) -> std::process::Child {
    let log = std::fs::File::create(log).unwrap();
    Command::new(berth_bin())
        .arg("router")
        .args(["--router-addr", &addr.to_string(), "--domain", "apps.test"])
        .args(["--routes-file", routes.to_str().unwrap(), "--threads", "1"])
        .env("BERTH_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("spawning berth router")
}

/// Where `needle` first occurs in `log` at or after `from`, or a panic showing the log.
fn position(log: &str, needle: &str, from: usize) -> usize {
    match log[from..].find(needle) {
        Some(at) => from + at,
        None => panic!("{needle:?} is not in the log after byte {from}:\n{log}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_access_line_reaches_stderr_in_order_before_the_router_exits() {
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.json");
    let log_path = dir.path().join("router.log");
    write_table(&routes, backend("A").await);
    let addr = free_addr();
    let mut child = router(addr, &routes, &log_path);

    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut served = false;
    for _ in 0..1200 {
        let reply = client
            .get(format!("http://{addr}/"))
            .header("host", "shop.apps.test")
            .send()
            .await;
        if reply.is_ok_and(|r| r.status() == 200) {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !served {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "the router never served; its log:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
    }
    for i in 0..REQUESTS {
        let reply = client
            .get(format!("http://{addr}/"))
            .header("host", "shop.apps.test")
            .header("x-request-id", format!("flush-{i:04}"))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
        reply.bytes().await.unwrap();
    }

    // SAFETY: kill with the PID of our own child, not yet reaped, and a valid signal.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(status.success(), "the router exited with {status}:\n{log}");

    // Requests were sent one after another, so their lines are in request order, and all precede the last
    // line the router logs as it stops.
    let mut at = 0;
    for i in 0..REQUESTS {
        at = position(&log, &format!("request_id=\"flush-{i:04}\""), at);
    }
    position(&log, "router stopped", at);
    assert!(!log.contains("log lines were dropped"), "{log}");
}

#[test]
fn an_error_exit_comes_after_the_log_lines_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.json");
    write_table(&routes, free_addr());
    // The router's address is taken, so it logs that it serves the table and then fails to bind.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(berth_bin())
        .arg("router")
        .args(["--router-addr", &taken.local_addr().unwrap().to_string()])
        .args(["--routes-file", routes.to_str().unwrap()])
        .env("BERTH_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .expect("running berth router");
    let stderr = String::from_utf8_lossy(&stderr);
    assert!(!status.success(), "{stderr}");
    assert!(stdout.is_empty(), "{}", String::from_utf8_lossy(&stdout));
    let served = position(&stderr, "serving the initial route table", 0);
    let error = position(&stderr, "error: ", served);
    assert!(
        !stderr[error..].trim_end().contains('\n'),
        "the error is not the last line:\n{stderr}"
    );
}
