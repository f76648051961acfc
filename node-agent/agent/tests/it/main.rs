//! Integration test of the node agent, as root: real cgroups, namespaces, veths and a bridge, with a test's
//! own names and subnet so that it never touches a running server. A custom `main` (no libtest harness)
//! because the test binary is also the container init program.

mod disk;
mod exits;
mod health;
mod leak;
mod node;
mod one_off;

fn main() {
    if std::env::args().nth(1).as_deref() == Some(container::INIT_ARG) {
        container::init::main();
    }
    let need = |what: &str, ok: bool| {
        if !ok {
            if std::env::var_os("CI").is_some() {
                panic!("agent tests need {what} (CI is set, so not skipping)");
            }
            println!("skipping agent integration tests: needs {what}");
            std::process::exit(0);
        }
    };
    need("root", nix::unistd::geteuid().is_root());
    need(
        "a static /bin/busybox (busybox-static)",
        std::path::Path::new("/bin/busybox").exists(),
    );
    need(
        "ip (iproute2)",
        std::process::Command::new("ip").arg("-V").output().is_ok(),
    );
    need(
        "nft (nftables)",
        std::process::Command::new("nft").arg("-v").output().is_ok(),
    );
    let tests: &[(&str, fn())] = &[
        ("node::instance_lifecycle", node::instance_lifecycle),
        ("exits::exit_reasons", exits::exit_reasons),
        ("one_off::one_offs", one_off::one_offs),
        ("exits::stop_grace", exits::stop_grace),
        (
            "health::boot_timeout_and_workers",
            health::boot_timeout_and_workers,
        ),
        ("health::health_checks", health::health_checks),
        (
            "disk::writes_past_the_disk_bound_fail",
            disk::writes_past_the_disk_bound_fail,
        ),
        (
            "leak::two_hundred_instances_leave_nothing",
            leak::two_hundred_instances_leave_nothing,
        ),
    ];
    // `it NAME` runs the tests whose names contain NAME.
    let filter = std::env::args().nth(1).unwrap_or_default();
    for (name, test) in tests.iter().filter(|(n, _)| n.contains(&filter)) {
        println!("test {name} ...");
        test();
        println!("test {name} ... ok");
    }
}
