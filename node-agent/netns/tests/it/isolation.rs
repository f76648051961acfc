//! Two apps' instances, a build sandbox, the host and a namespace playing the outside world: who reaches whom.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;

use netns::{Attachment, NetworkConfig, NodeNetwork};

use crate::probe::{connect, Listener};

fn run(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program).args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn must(program: &str, args: &[&str]) -> String {
    let (ok, text) = run(program, args);
    assert!(ok, "{program} {args:?}: {text}");
    text
}

/// Everything the test made, removed on drop even when an assertion failed.
struct Made {
    tag: String,
    bridge: String,
    outside_veth: String,
}

impl Made {
    fn outside_netns(&self) -> String {
        format!("bn{}-outside", self.tag)
    }

    /// What is still there: namespaces, links, tables.
    fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        let prefix = format!("bn{}-", self.tag);
        for line in must("ip", &["netns", "list"]).lines() {
            if line.starts_with(&prefix) {
                left.push(format!("netns {line}"));
            }
        }
        for line in must("ip", &["-o", "link", "show"]).lines() {
            if line.contains(&format!("bn{}", self.tag)) {
                left.push(format!("link {line}"));
            }
        }
        let tables = must("nft", &["list", "tables"]);
        for line in tables.lines().filter(|l| l.contains(&self.bridge)) {
            left.push(line.to_string());
        }
        left
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", &self.outside_netns()]);
        let _ = run("ip", &["link", "del", "dev", &self.outside_veth]);
        for netns in must("ip", &["netns", "list"]).lines() {
            let name = netns.split_whitespace().next().unwrap_or_default();
            if name.starts_with(&format!("bn{}-", self.tag)) {
                let _ = run("ip", &["netns", "del", name]);
            }
        }
        let _ = run("ip", &["link", "del", "dev", &self.bridge]);
        let table = netns::rules::table_name(&self.bridge);
        for family in ["bridge", "inet"] {
            let _ = run("nft", &["delete", "table", family, &table]);
        }
    }
}

fn list_tables(bridge: &str) -> String {
    let table = netns::rules::table_name(bridge);
    ["bridge", "inet"]
        .map(|family| must("nft", &["list", "table", family, &table]))
        .concat()
}

fn at(a: &Attachment) -> Option<PathBuf> {
    Some(a.netns_path())
}

/// Bridged frames between ports pass the IP hooks (`inet` tables) only when `br_netfilter` says so; this
/// machine's kernel says so by default, others do not. Both ways must isolate.
#[test]
fn isolation_without_br_netfilter() {
    if crate::can_run("isolation_without_br_netfilter") {
        in_private_node(false, isolation);
    }
}

#[test]
fn isolation_with_br_netfilter() {
    if crate::can_run("isolation_with_br_netfilter") {
        in_private_node(true, isolation);
    }
}

/// Runs `test` in a thread with its own network namespace playing the node, so that nothing of the real
/// host's network (ip_forward, tables, links) is touched; threads and processes it starts inherit it.
fn in_private_node(br_netfilter: bool, test: fn()) {
    let result = std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        must("ip", &["link", "set", "dev", "lo", "up"]);
        let sysctl = "/proc/sys/net/bridge/bridge-nf-call-iptables";
        match std::fs::write(sysctl, if br_netfilter { "1" } else { "0" }) {
            Ok(()) => {}
            Err(_) if !br_netfilter => {} // no br_netfilter in this kernel: the case under test
            Err(e) => {
                println!("skipping the br_netfilter case: {sysctl}: {e}");
                return;
            }
        }
        test()
    })
    .join();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn isolation() {
    let tag = uuid::Uuid::new_v4().simple().to_string()[..6].to_string();
    // The node is a private namespace: its routing table is empty, any subnet is free.
    let x: u8 = rand::random_range(1..=250);
    let made = Made {
        bridge: format!("bn{tag}"),
        outside_veth: format!("bn{tag}o"),
        tag: tag.clone(),
    };
    // The node's resolver list: a loopback one (unreachable, skipped), one at an address of the node itself
    // and one outside.
    let dns_dir = tempfile::tempdir().unwrap();
    let resolv_conf = dns_dir.path().join("resolv.conf");
    std::fs::write(
        &resolv_conf,
        format!(
            "nameserver 127.0.0.53\nnameserver 10.252.{x}.1\nnameserver 10.252.{x}.2\nsearch example.com\n"
        ),
    )
    .unwrap();
    let cfg = NetworkConfig {
        bridge: made.bridge.clone(),
        subnet: format!("10.251.{x}.0/24").parse().unwrap(),
        netns_prefix: format!("bn{tag}-"),
        host_dns: netns::HostDns {
            resolv_conf,
            upstreams: dns_dir.path().join("absent"),
        },
        address_state: None,
    };
    let gateway = Ipv4Addr::new(10, 251, x, 1);

    // The outside world: a namespace behind a veth at 10.252.X.2, the host's end at 10.252.X.1. It has no
    // route to 10.251.X.0/24, so it can answer an attachment only if the attachment's traffic is masqueraded.
    let outside = made.outside_netns();
    must("ip", &["netns", "add", &outside]);
    must(
        "ip",
        &[
            "link",
            "add",
            "name",
            &made.outside_veth,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &outside,
        ],
    );
    must(
        "ip",
        &[
            "addr",
            "add",
            &format!("10.252.{x}.1/24"),
            "dev",
            &made.outside_veth,
        ],
    );
    must("ip", &["link", "set", "dev", &made.outside_veth, "up"]);
    must(
        "ip",
        &[
            "-n",
            &outside,
            "addr",
            "add",
            &format!("10.252.{x}.2/24"),
            "dev",
            "eth0",
        ],
    );
    must("ip", &["-n", &outside, "link", "set", "dev", "eth0", "up"]);
    let outside_path = Some(PathBuf::from("/run/netns").join(&outside));

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Installing twice leaves one copy of each table.
        let network = NodeNetwork::install(cfg.clone()).await.unwrap();
        let first = list_tables(&made.bridge);
        let network2 = NodeNetwork::install(cfg.clone()).await.unwrap();
        assert_eq!(
            list_tables(&made.bridge),
            first,
            "installing again changes nothing"
        );
        let tables = must("nft", &["list", "tables"]);
        let ours = tables
            .lines()
            .filter(|l| l.ends_with(&format!(" berth_{}", made.bridge)));
        assert_eq!(ours.count(), 2, "{tables}");
        assert!(
            first.contains(&format!(
                "ip saddr 10.251.{x}.0/24 oifname != \"{}\" masquerade",
                made.bridge
            )),
            "{first}"
        );
        drop(network2);
        assert_eq!(
            std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
                .unwrap()
                .trim(),
            "1"
        );

        let a = network
            .attach(&format!("bn{tag}-a"), &format!("bn{tag}a"))
            .await
            .unwrap();
        let b = network
            .attach(&format!("bn{tag}-b"), &format!("bn{tag}b"))
            .await
            .unwrap();
        let build = network.sandbox().await.unwrap();
        // The bridge keeps the MAC it was given while ports come and go (see `remove` below): instances' ARP
        // entries for the gateway must not go stale.
        let bridge_mac = || {
            let link = must("ip", &["-o", "link", "show", "dev", &made.bridge]);
            let mac = link.split_whitespace().skip_while(|w| *w != "link/ether").nth(1);
            mac.unwrap_or_default().to_owned()
        };
        assert_eq!(
            bridge_mac(),
            netns::rules::mac_for(gateway),
            "with ports attached"
        );
        assert!(
            build.netns.starts_with(&format!("bn{tag}-build-")),
            "{}",
            build.netns
        );

        let on_a = Listener::start(at(&a), SocketAddr::new(a.address.into(), 0));
        let on_b = Listener::start(at(&b), SocketAddr::new(b.address.into(), 0));
        let on_gateway = Listener::start(None, SocketAddr::new(gateway.into(), 0));
        let on_host_other = Listener::start(None, format!("10.252.{x}.1:0").parse().unwrap());
        let on_outside = Listener::start(outside_path.clone(), format!("10.252.{x}.2:0").parse().unwrap());

        // The host (the router, health checks) reaches every attachment, and its own listeners work.
        assert_eq!(connect(None, on_a.address), Ok(gateway.to_string()));
        assert_eq!(connect(None, on_b.address), Ok(gateway.to_string()));
        assert!(connect(None, on_gateway.address).is_ok());
        assert!(connect(None, on_host_other.address).is_ok());

        // Attachments never reach each other, nor any address of the node.
        for (from, name) in [(&a, "a"), (&b, "b"), (&build, "build")] {
            for (to, what) in [
                (&on_a, "app a"),
                (&on_b, "app b"),
                (&on_gateway, "the bridge's address"),
                (&on_host_other, "another address of the node"),
            ] {
                if to.address.ip() == std::net::IpAddr::V4(from.address) {
                    continue;
                }
                let got = connect(at(from), to.address);
                assert!(got.is_err(), "{name} reached {what}: {got:?}");
            }
            // Egress goes through NAT: the outside sees the node's address, not the attachment's.
            assert_eq!(
                connect(at(from), on_outside.address),
                Ok(format!("10.252.{x}.1")),
                "{name} egress"
            );
        }

        // Nothing from elsewhere is forwarded in, even with a route to the subnet through the node.
        let via = format!("10.252.{x}.1");
        must(
            "ip",
            &[
                "-n",
                &outside,
                "route",
                "add",
                &format!("10.251.{x}.0/24"),
                "via",
                &via,
            ],
        );
        let got = connect(outside_path.clone(), on_a.address);
        assert!(got.is_err(), "the outside reached a: {got:?}");

        // A spoofed source address is dropped; the real one works again afterwards.
        let a_ns = a.netns.clone();
        let readdress = |cidr: String| {
            must("ip", &["-n", &a_ns, "addr", "flush", "dev", "eth0"]);
            must("ip", &["-n", &a_ns, "addr", "add", &cidr, "dev", "eth0"]);
            let gw = gateway.to_string();
            must("ip", &["-n", &a_ns, "route", "add", "default", "via", &gw]);
        };
        readdress(format!("10.251.{x}.200/24"));
        let got = connect(at(&a), on_outside.address);
        assert!(got.is_err(), "a spoofed source got out: {got:?}");
        readdress(format!("{}/24", a.address));
        assert!(
            connect(at(&a), on_outside.address).is_ok(),
            "a's own address works again"
        );
        // So is a spoofed MAC.
        must(
            "ip",
            &[
                "-n",
                &a_ns,
                "link",
                "set",
                "dev",
                "eth0",
                "address",
                "02:42:00:00:00:99",
            ],
        );
        let got = connect(at(&a), on_outside.address);
        assert!(got.is_err(), "a spoofed MAC got out: {got:?}");

        // Each attachment gets the node's usable nameservers and its own name, and reaches DNS on the node's
        // own nameserver address (only there, only port 53) and outside through NAT.
        let dir = tempfile::tempdir().unwrap();
        let files = a.write_etc_files(dir.path(), "web-1").unwrap();
        assert_eq!(
            std::fs::read_to_string(&files.resolv_conf).unwrap(),
            format!(
                "# generated by berth from the node's nameservers\n\
                 nameserver 10.252.{x}.1\nnameserver 10.252.{x}.2\nsearch example.com\n"
            )
        );
        let hosts = std::fs::read_to_string(&files.hosts).unwrap();
        assert!(hosts.contains(&format!("{}\tweb-1\n", a.address)), "{hosts}");
        let dns_on_node = Listener::start(None, format!("10.252.{x}.1:53").parse().unwrap());
        let dns_outside = Listener::start(outside_path.clone(), format!("10.252.{x}.2:53").parse().unwrap());
        assert_eq!(connect(at(&b), dns_on_node.address), Ok(b.address.to_string()));
        assert_eq!(connect(at(&b), dns_outside.address), Ok(format!("10.252.{x}.1")));
        drop((dns_on_node, dns_outside));

        drop((on_a, on_b, on_gateway, on_host_other, on_outside));
        for attachment in [a, b, build] {
            attachment.remove().await.unwrap();
            assert_eq!(
                bridge_mac(),
                netns::rules::mac_for(gateway),
                "after removing a port"
            );
        }
        network.remove().await.unwrap();
        // Removing twice is fine.
        network.remove().await.unwrap();
    });
    // Deleting a namespace destroys its links asynchronously: delete the veth itself.
    must("ip", &["link", "del", "dev", &made.outside_veth]);
    must("ip", &["netns", "del", &outside]);
    drop(rt);
    let left = made.leftovers();
    assert!(left.is_empty(), "left behind: {left:?}");
}
