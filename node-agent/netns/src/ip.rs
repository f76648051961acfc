//! Links and namespaces through `ip` (iproute2): the bridge, and each attachment's network namespace and veth
//! pair.
//!
//! Shells out to `ip` for now: simple and easy to debug by hand; `rtnetlink` is the planned replacement once
//! the agent needs events or speed.

use std::net::Ipv4Addr;

use crate::NetError;

/// Runs `ip ARGS` and returns its stdout.
pub(crate) async fn ip(args: &[&str]) -> Result<String, NetError> {
    let failed = |reason: String| NetError::Ip {
        args: args.join(" "),
        reason,
    };
    let out = tokio::process::Command::new("ip")
        .args(args)
        .output()
        .await
        .map_err(|e| failed(e.to_string()))?;
    if !out.status.success() {
        return Err(failed(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Like [`ip`], treating "it does not exist" as success (for deletions).
async fn ip_delete(args: &[&str]) -> Result<(), NetError> {
    match ip(args).await {
        Err(NetError::Ip { reason, .. })
            if reason.contains("No such file")
                || reason.contains("Cannot find device")
                || reason.contains("No such device")
                || reason.contains("does not exist") =>
        {
            Ok(())
        }
        other => other.map(drop),
    }
}

/// Creates the bridge (if missing) with the gateway address and brings it up.
pub(crate) async fn ensure_bridge(bridge: &str, gateway: Ipv4Addr, prefix_len: u8) -> Result<(), NetError> {
    if ip(&["link", "show", "dev", bridge]).await.is_err() {
        ip(&["link", "add", "name", bridge, "type", "bridge"]).await?;
    }
    // A bridge whose address was never set takes the lowest MAC among its ports and changes it as ports come
    // and go; instances keep the old one in their ARP cache for the gateway, and their replies to the node
    // (the router) then go nowhere for up to half a minute. Set once, the address stays.
    ip(&[
        "link",
        "set",
        "dev",
        bridge,
        "address",
        &crate::rules::mac_for(gateway),
    ])
    .await?;
    ip(&[
        "addr",
        "replace",
        &format!("{gateway}/{prefix_len}"),
        "dev",
        bridge,
    ])
    .await?;
    ip(&["link", "set", "dev", bridge, "up"]).await?;
    Ok(())
}

pub(crate) async fn delete_bridge(bridge: &str) -> Result<(), NetError> {
    ip_delete(&["link", "del", "dev", bridge]).await
}

/// What [`create`] makes.
pub(crate) struct LinkParams<'a> {
    pub bridge: &'a str,
    pub netns: &'a str,
    pub veth: &'a str,
    pub address: Ipv4Addr,
    pub mac: &'a str,
    pub gateway: Ipv4Addr,
    pub prefix_len: u8,
}

/// Creates the namespace with `eth0` (the veth's peer, with `mac` and `address`) and `lo`, the host end on
/// the bridge, and the default route; on failure removes what it made.
pub(crate) async fn create(p: LinkParams<'_>) -> Result<(), NetError> {
    let result = async {
        let (ns, veth) = (p.netns, p.veth);
        ip(&["netns", "add", ns]).await?;
        ip(&[
            "link", "add", "name", veth, "type", "veth", "peer", "name", "eth0", "address", p.mac, "netns",
            ns,
        ])
        .await?;
        ip(&["link", "set", "dev", veth, "master", p.bridge]).await?;
        ip(&["link", "set", "dev", veth, "up"]).await?;
        ip(&[
            "-n",
            ns,
            "addr",
            "add",
            &format!("{}/{}", p.address, p.prefix_len),
            "dev",
            "eth0",
        ])
        .await?;
        ip(&["-n", ns, "link", "set", "dev", "eth0", "up"]).await?;
        ip(&["-n", ns, "link", "set", "dev", "lo", "up"]).await?;
        ip(&["-n", ns, "route", "add", "default", "via", &p.gateway.to_string()]).await?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = delete(p.netns, p.veth).await;
    }
    result
}

/// Deleting the namespace destroys `eth0` and with it the host end; the explicit delete covers a veth whose
/// peer never made it into the namespace.
pub(crate) async fn delete(netns: &str, veth: &str) -> Result<(), NetError> {
    ip_delete(&["netns", "del", netns]).await?;
    ip_delete(&["link", "del", "dev", veth]).await
}

/// Removes what a previous run with the same names left: namespaces with `netns_prefix` (after killing any
/// process still in them) and links still attached to `bridge`.
pub async fn remove_leftovers(netns_prefix: &str, bridge: &str) -> Result<(), NetError> {
    let list = ip(&["netns", "list"]).await?;
    for name in list
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(netns_prefix))
    {
        if let Ok(pids) = ip(&["netns", "pids", name]).await {
            for pid in pids.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        tracing::info!(netns = name, "removing leftover network namespace");
        ip_delete(&["netns", "del", name]).await?;
    }
    if let Ok(links) = ip(&["-o", "link", "show", "master", bridge]).await {
        for link in links.lines().filter_map(link_name) {
            tracing::info!(link, "removing leftover veth");
            ip_delete(&["link", "del", "dev", link]).await?;
        }
    }
    Ok(())
}

/// `5: bv0123456789@if4: <BROADCAST,...` → `bv0123456789`.
fn link_name(line: &str) -> Option<&str> {
    let name = line.split(": ").nth(1)?;
    Some(name.split('@').next().unwrap_or(name))
}

#[cfg(test)]
mod tests {
    #[test]
    fn link_names() {
        let cases = [
            (
                "7: bv0123456789@if2: <BROADCAST,MULTICAST,UP> mtu 1500",
                Some("bv0123456789"),
            ),
            ("3: eth0: <BROADCAST> mtu 1500", Some("eth0")),
            ("garbage", None),
        ];
        for (line, want) in cases {
            assert_eq!(super::link_name(line), want, "{line}");
        }
    }
}
