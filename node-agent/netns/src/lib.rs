//! Node networking: the node's bridge, a network namespace per instance or build joined to it by a veth
//! pair, and the nftables rules that isolate them; egress through NAT and DNS through the host's nameservers.
//!
//! [`NodeNetwork::install`] creates the bridge, turns on IPv4 forwarding and (re)creates the bridge's
//! nftables tables in one transaction ([`rules`]); [`NodeNetwork::attach`] gives a namespace an address from
//! the subnet, a veth whose host end may only send from that address and MAC, and the set elements that say
//! so; [`NodeNetwork::sandbox`] does the same for a build under a generated name. What an attachment can
//! reach: the outside world through NAT (the node's nameservers included), replies to connections the node
//! opened to it; not the node's own addresses, not other attachments, not link-local metadata services.
//!
//! It shells out to `ip` and `nft`. It knows nothing of containers, apps or images: the agent and the
//! builders depend on it, it depends on no Berth crate.

mod addresses;
pub mod dns;
mod ip;
pub mod rules;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use ipnet::Ipv4Net;

use crate::addresses::AddressPool;
pub use crate::ip::remove_leftovers;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("bad network config: {0}")]
    Config(String),
    #[error("ip {args}: {reason}")]
    Ip { args: String, reason: String },
    #[error("nft ({what}): {reason}")]
    Nft { what: String, reason: String },
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no free address in {subnet}")]
    NoAddress { subnet: Ipv4Net },
}

/// One node network: a bridge and its subnet.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// The bridge (1-15 letters, digits, `-` or `_`); created if missing.
    pub bridge: String,
    /// The attachments' subnet; its first host is the bridge's address and the attachments' gateway.
    pub subnet: Ipv4Net,
    /// Prefix of the names of namespaces [`NodeNetwork::sandbox`] makes.
    pub netns_prefix: String,
    /// Where the host's nameservers are read from.
    pub host_dns: HostDns,
    /// Where the address pool keeps its position between runs (see `addresses`); `None`: in memory only.
    pub address_state: Option<PathBuf>,
}

/// The host's resolver files (see [`dns`]).
#[derive(Debug, Clone)]
pub struct HostDns {
    /// Normally `/etc/resolv.conf`.
    pub resolv_conf: PathBuf,
    /// systemd-resolved's upstream servers, used when `resolv_conf` lists only loopback ones.
    pub upstreams: PathBuf,
}

impl Default for HostDns {
    fn default() -> Self {
        HostDns {
            resolv_conf: "/etc/resolv.conf".into(),
            upstreams: dns::SYSTEMD_RESOLVED_UPSTREAMS.into(),
        }
    }
}

/// An installed node network. Clones share the address pool.
#[derive(Debug, Clone)]
pub struct NodeNetwork(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    cfg: NetworkConfig,
    addresses: Mutex<AddressPool>,
    resolv_conf: String,
}

/// A network namespace attached to a [`NodeNetwork`]. Removing it is up to the owner ([`Attachment::remove`]).
#[derive(Debug)]
pub struct Attachment {
    /// The namespace's name (`ip netns`); its file is [`Attachment::netns_path`].
    pub netns: String,
    /// The host end of the veth pair, a port of the bridge.
    pub veth: String,
    pub address: Ipv4Addr,
    /// The MAC of `eth0` in the namespace.
    pub mac: String,
    network: NodeNetwork,
}

/// Files for a container's `/etc`, written by [`Attachment::write_etc_files`].
#[derive(Debug, Clone)]
pub struct EtcFiles {
    /// To bind read-only at `/etc/resolv.conf`.
    pub resolv_conf: PathBuf,
    /// To bind read-only at `/etc/hosts`.
    pub hosts: PathBuf,
}

fn name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl NetworkConfig {
    pub fn check(&self) -> Result<(), NetError> {
        let bad = |m: String| Err(NetError::Config(m));
        if !name_ok(&self.bridge) || self.bridge.len() > 15 {
            return bad(format!(
                "bridge name {:?}: 1-15 letters, digits, - or _",
                self.bridge
            ));
        }
        if !name_ok(&self.netns_prefix) {
            return bad(format!(
                "netns prefix {:?}: letters, digits, - or _",
                self.netns_prefix
            ));
        }
        if self.subnet.prefix_len() > 30 {
            return bad(format!("subnet {} is too small", self.subnet));
        }
        Ok(())
    }
}

impl NodeNetwork {
    /// Creates the bridge (if missing), turns on `net.ipv4.ip_forward` (left on afterwards: other bridges may
    /// rely on it, as with Docker) and replaces the bridge's nftables tables. Does not remove leftover
    /// namespaces or veths: call [`remove_leftovers`] first.
    pub async fn install(cfg: NetworkConfig) -> Result<NodeNetwork, NetError> {
        cfg.check()?;
        let pool = AddressPool::new(cfg.subnet, cfg.address_state.clone())
            .ok_or_else(|| NetError::Config(format!("subnet {} is too small", cfg.subnet)))?;
        ip::ensure_bridge(&cfg.bridge, pool.gateway(), cfg.subnet.prefix_len()).await?;
        enable_ip_forward()?;
        let host = read_optional(&cfg.host_dns.resolv_conf)?.unwrap_or_default();
        let upstreams = read_optional(&cfg.host_dns.upstreams)?;
        let resolv_conf = dns::resolv_conf(&host, upstreams.as_deref());
        let nameservers = dns::usable_nameservers(&resolv_conf);
        if nameservers.is_empty() {
            tracing::warn!(bridge = %cfg.bridge, "the node has no nameserver attachments can reach: DNS will fail inside");
        }
        rules::apply(
            "installing the bridge's tables",
            &rules::render_tables(&cfg.bridge, cfg.subnet, &nameservers),
        )
        .await?;
        tracing::info!(bridge = %cfg.bridge, subnet = %cfg.subnet, "node network installed");
        Ok(NodeNetwork(Arc::new(Inner {
            cfg,
            addresses: Mutex::new(pool),
            resolv_conf,
        })))
    }

    pub fn config(&self) -> &NetworkConfig {
        &self.0.cfg
    }

    /// The bridge's own address, the attachments' gateway.
    pub fn gateway(&self) -> Ipv4Addr {
        self.0.addresses.lock().expect("address pool lock").gateway()
    }

    /// The resolv.conf attachments get (see [`dns`]).
    pub fn resolv_conf(&self) -> &str {
        &self.0.resolv_conf
    }

    /// Creates the namespace `netns` with `eth0` at the next free address (round robin, see `addresses`), the veth `veth` (≤ 15
    /// characters) on the bridge, and the rules' set elements; on failure removes what it made.
    pub async fn attach(&self, netns: &str, veth: &str) -> Result<Attachment, NetError> {
        if !name_ok(netns) || !name_ok(veth) || veth.len() > 15 {
            return Err(NetError::Config(format!(
                "attachment names {netns:?} and {veth:?}: letters, digits, - or _ (veth ≤ 15)"
            )));
        }
        let cfg = &self.0.cfg;
        let (address, gateway) = {
            let mut pool = self.0.addresses.lock().expect("address pool lock");
            (pool.allocate(), pool.gateway())
        };
        let address = address.ok_or(NetError::NoAddress { subnet: cfg.subnet })?;
        let attachment = Attachment {
            netns: netns.to_string(),
            veth: veth.to_string(),
            address,
            mac: rules::mac_for(address),
            network: self.clone(),
        };
        let made = async {
            ip::create(ip::LinkParams {
                bridge: &cfg.bridge,
                netns,
                veth,
                address,
                mac: &attachment.mac,
                gateway,
                prefix_len: cfg.subnet.prefix_len(),
            })
            .await?;
            rules::apply(
                "adding an attachment",
                &rules::render_elements("add", &cfg.bridge, veth, &attachment.mac, address),
            )
            .await
        }
        .await;
        match made {
            Ok(()) => Ok(attachment),
            Err(e) => {
                let _ = attachment.remove().await;
                Err(e)
            }
        }
    }

    /// A network namespace for one build: like an instance's (egress through NAT, DNS, nothing on the node,
    /// no other attachment), under a generated name `<netns_prefix>build-<hex>`.
    pub async fn sandbox(&self) -> Result<Attachment, NetError> {
        let tag = format!("{:010x}", rand::random::<u64>() & 0xff_ffff_ffff);
        let netns = format!("{}build-{tag}", self.0.cfg.netns_prefix);
        self.attach(&netns, &format!("bb{tag}")).await
    }

    /// Removes the bridge's tables and the bridge. Attachments still present lose their veths; remove them
    /// first.
    pub async fn remove(&self) -> Result<(), NetError> {
        let bridge = &self.0.cfg.bridge;
        rules::apply("removing the bridge's tables", &rules::render_delete(bridge)).await?;
        ip::delete_bridge(bridge).await?;
        tracing::info!(bridge = %bridge, "node network removed");
        Ok(())
    }
}

impl Attachment {
    pub fn netns_path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.netns)
    }

    /// Writes `resolv.conf` and `hosts` (naming `hostname`) into `dir`, for binding into a container.
    pub fn write_etc_files(&self, dir: &Path, hostname: &str) -> Result<EtcFiles, NetError> {
        let files = EtcFiles {
            resolv_conf: dir.join("resolv.conf"),
            hosts: dir.join("hosts"),
        };
        for (path, text) in [
            (&files.resolv_conf, self.network.resolv_conf().to_string()),
            (&files.hosts, dns::hosts(hostname, self.address)),
        ] {
            std::fs::write(path, text).map_err(|source| NetError::Io {
                path: path.clone(),
                source,
            })?;
        }
        Ok(files)
    }

    /// Removes the set elements, the namespace and the veth, and frees the address.
    pub async fn remove(self) -> Result<(), NetError> {
        let bridge = &self.network.0.cfg.bridge;
        // Adding before deleting makes the deletion succeed when the elements were never added.
        let script = format!(
            "{}{}",
            rules::render_elements("add", bridge, &self.veth, &self.mac, self.address),
            rules::render_elements("delete", bridge, &self.veth, &self.mac, self.address)
        );
        let elements = match rules::apply("removing an attachment", &script).await {
            Err(NetError::Nft { reason, .. }) if reason.contains("No such file or directory") => Ok(()),
            other => other,
        };
        let links = ip::delete(&self.netns, &self.veth).await;
        self.network
            .0
            .addresses
            .lock()
            .expect("address pool lock")
            .release(self.address);
        elements.and(links)
    }
}

fn read_optional(path: &Path) -> Result<Option<String>, NetError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(NetError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Turns on IPv4 forwarding, needed for NAT egress; logs when it was off.
fn enable_ip_forward() -> Result<(), NetError> {
    let path = Path::new("/proc/sys/net/ipv4/ip_forward");
    let io = |source| NetError::Io {
        path: path.to_path_buf(),
        source,
    };
    if std::fs::read_to_string(path).map_err(io)?.trim() != "1" {
        std::fs::write(path, "1").map_err(io)?;
        tracing::info!("turned on net.ipv4.ip_forward for NAT egress");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_checks() {
        let cfg = |bridge: &str, subnet: &str, prefix: &str| NetworkConfig {
            bridge: bridge.into(),
            subnet: subnet.parse().unwrap(),
            netns_prefix: prefix.into(),
            host_dns: HostDns::default(),
            address_state: None,
        };
        let cases = [
            (cfg("berth0", "10.203.0.0/24", "berth-"), None),
            (cfg("", "10.203.0.0/24", "berth-"), Some("bridge name \"\"")),
            (cfg("a-very-long-bridge", "10.203.0.0/24", "b-"), Some("1-15")),
            (cfg("br;rm", "10.203.0.0/24", "b-"), Some("bridge name")),
            (cfg("berth0", "10.203.0.0/24", "a b"), Some("netns prefix")),
            (cfg("berth0", "10.203.0.0/31", "b-"), Some("too small")),
        ];
        for (c, want) in cases {
            match (c.check(), want) {
                (Ok(()), None) => {}
                (Err(e), Some(w)) => assert!(e.to_string().contains(w), "{e} should say {w}"),
                (got, want) => panic!("{c:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
