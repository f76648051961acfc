//! Integration tests of the container, as root. A custom `main` (no libtest harness) because the test binary
//! itself is the container's init program: it is re-executed with `INIT_ARG`.

mod attack;
mod fixture;
mod hardening;
mod isolation;
mod lifecycle;
mod userns;

use std::panic::AssertUnwindSafe;

type Test = (&'static str, fn());

fn main() {
    if std::env::args().nth(1).as_deref() == Some(container::INIT_ARG) {
        container::init::main();
    }
    if !nix::unistd::geteuid().is_root() {
        if std::env::var_os("CI").is_some() {
            panic!("container tests need root (CI is set, so not skipping)");
        }
        println!("skipping container integration tests: needs root");
        return;
    }
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let tests: Vec<Test> = isolation::TESTS
        .iter()
        .chain(lifecycle::TESTS)
        .chain(hardening::TESTS)
        .chain(attack::TESTS)
        .chain(userns::TESTS)
        .copied()
        .collect();
    let mut failed = Vec::new();
    for (name, test) in tests {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        println!("test {name} ...");
        match std::panic::catch_unwind(AssertUnwindSafe(test)) {
            Ok(()) => println!("test {name} ... ok"),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed.push(name);
            }
        }
    }
    if !failed.is_empty() {
        println!("failed: {failed:?}");
        std::process::exit(1);
    }
}
