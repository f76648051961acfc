//! Two `berth server`s sharing one PostgreSQL database: both serve the API, one at a time leads (reconciles),
//! and when the leader stops the other takes over.

use std::time::{Duration, Instant};

use crate::end_to_end::last_line;
use crate::support::*;

/// How long to wait for something that should happen within a few leader retries (a bound, not a goal).
const PATIENCE: Duration = Duration::from_secs(60);

fn wait_for_log(server: &Server, needle: &str) {
    let deadline = Instant::now() + PATIENCE;
    while !server.log().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the server's log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn two_control_processes_on_postgres_take_turns_leading() {
    let test = "control_processes::two_control_processes_on_postgres_take_turns_leading";
    if !require(test, true, &["git", "debootstrap", "ip", "nft"]) {
        return;
    }
    let Some(database) = TestPostgres::new(test) else {
        return;
    };
    let flags = ["--database-url", database.url.as_str()];
    let work = tempfile::tempdir().unwrap();
    let (first_dir, second_dir) = (work.path().join("first"), work.path().join("second"));
    std::fs::create_dir_all(&first_dir).unwrap();
    std::fs::create_dir_all(&second_dir).unwrap();

    let mut first = Server::start_with(&first_dir, &HostNames::unique(), &flags);
    wait_for_log(&first, "became leader");
    let second = Server::start_with(&second_dir, &HostNames::unique(), &flags);
    // Both serve the API on the same data: the admin the first made answers on the second.
    let admin = first.admin_token();
    let alice = last_line(&first.berth_ok(&admin, &["accounts", "create", "alice"]));
    second.berth_ok(&alice, &["apps", "create", "shop"]);
    assert!(first.berth_ok(&alice, &["apps"]).contains("shop"));
    assert!(
        !second.log().contains("became leader"),
        "two leaders:\n{}",
        second.log()
    );

    // The leader stops: the other takes over.
    let status = first.stop();
    assert!(status.success(), "{status}:\n{}", first.log());
    wait_for_log(&second, "became leader");
    drop(second);
}
