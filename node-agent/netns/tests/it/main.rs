//! Integration tests of the node network, as root: a real bridge, namespaces, veths and nftables tables with a
//! test's own names and subnet (10.251.X.0/24, and 10.252.X.0/24 for a namespace playing the outside world),
//! all removed at the end. Traffic goes only between the test's own namespaces and the host.

mod isolation;
mod probe;

/// `true` when the test can run; otherwise prints why and returns `false` (or panics when `CI` is set).
pub fn can_run(test: &str) -> bool {
    let missing = if !nix::unistd::geteuid().is_root() {
        Some("root")
    } else if std::process::Command::new("ip").arg("-V").output().is_err() {
        Some("ip (iproute2)")
    } else if std::process::Command::new("nft").arg("-v").output().is_err() {
        Some("nft (nftables)")
    } else {
        None
    };
    match missing {
        None => true,
        Some(what) if std::env::var_os("CI").is_some() => {
            panic!("{test} needs {what} (CI is set, so not skipping)")
        }
        Some(what) => {
            println!("skipping {test}: needs {what}");
            false
        }
    }
}
