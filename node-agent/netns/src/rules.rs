//! The node network's nftables rules, rendered as `nft -f` scripts by pure functions and applied by piping
//! them to `nft` (one script is one kernel transaction: all of it applies or none does).
//!
//! Two tables per bridge, both named `berth_<bridge>`, so that they never touch anyone else's rules:
//! - `bridge berth_<bridge>`: frames between two ports of the bridge are dropped (instances and builds never
//!   reach each other; `br_netfilter` may be off, so `inet` rules alone would not see them), and a port may
//!   only send IPv4 and ARP from the MAC and address it was given (set `attachments`: port . MAC . address).
//! - `inet berth_<bridge>`: nothing coming in from the bridge reaches the node itself (any of its addresses)
//!   except replies to connections the node opened (the router, health checks); nothing from elsewhere is
//!   forwarded into the bridge unless it answers the bridge's own connections; the link-local range (cloud
//!   metadata services) is unreachable; traffic from the subnet leaving by another interface is masqueraded.
//!
//! Applying is idempotent: the script declares each table, deletes it and declares it again in the same
//! transaction, so an agent restart replaces the rules instead of doubling them (and empties the sets, which
//! matches removing every leftover namespace first).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::NetError;

/// The name of both tables of `bridge`.
pub fn table_name(bridge: &str) -> String {
    format!("berth_{bridge}")
}

/// The script that (re)creates both tables of `bridge` with empty sets. `nameservers` are the attachments'
/// nameservers: should one be an address of the node itself, DNS to it is let in.
pub fn render_tables(bridge: &str, subnet: Ipv4Net, nameservers: &[Ipv4Addr]) -> String {
    let table = table_name(bridge);
    let subnet = subnet.trunc();
    let dns = if nameservers.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = nameservers.iter().map(Ipv4Addr::to_string).collect();
        format!(
            "\t\tiifname \"{bridge}\" ip daddr {{ {} }} meta l4proto {{ tcp, udp }} th dport 53 accept\n",
            list.join(", ")
        )
    };
    format!(
        r#"table bridge {table} {{}}
delete table bridge {table}
table bridge {table} {{
	set ports {{
		type ifname
	}}
	set attachments {{
		type ifname . ether_addr . ipv4_addr
	}}
	chain prerouting {{
		type filter hook prerouting priority filter; policy accept;
		iifname != @ports accept
		iifname . ether saddr . ip saddr @attachments accept
		iifname . ether saddr . arp saddr ip @attachments iifname . arp saddr ether . arp saddr ip @attachments accept
		drop
	}}
	chain forward {{
		type filter hook forward priority filter; policy accept;
		iifname @ports drop
		oifname @ports drop
	}}
}}
table inet {table} {{}}
delete table inet {table}
table inet {table} {{
	chain input {{
		type filter hook input priority filter; policy accept;
		iifname "{bridge}" ct state established,related accept
{dns}		iifname "{bridge}" drop
	}}
	chain forward {{
		type filter hook forward priority filter; policy accept;
		iifname "{bridge}" oifname "{bridge}" drop
		oifname "{bridge}" ct state established,related accept
		oifname "{bridge}" drop
		iifname "{bridge}" ip daddr 169.254.0.0/16 drop
	}}
	chain postrouting {{
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr {subnet} oifname != "{bridge}" masquerade
	}}
}}
"#
    )
}

/// The script that removes both tables of `bridge`, whether or not they exist.
pub fn render_delete(bridge: &str) -> String {
    let table = table_name(bridge);
    format!(
        "table bridge {table} {{}}\ndelete table bridge {table}\ntable inet {table} {{}}\ndelete table inet {table}\n"
    )
}

/// One attachment's set elements: its port may send from `mac` and `address` only.
pub fn render_elements(verb: &str, bridge: &str, port: &str, mac: &str, address: Ipv4Addr) -> String {
    let table = table_name(bridge);
    format!(
        "{verb} element bridge {table} ports {{ \"{port}\" }}\n{verb} element bridge {table} attachments {{ \"{port}\" . {mac} . {address} }}\n"
    )
}

/// The MAC address given to an attachment's `eth0`: locally administered, derived from its address (as
/// Docker does), so the rules can name it before the link exists.
pub fn mac_for(address: Ipv4Addr) -> String {
    let [a, b, c, d] = address.octets();
    format!("02:42:{a:02x}:{b:02x}:{c:02x}:{d:02x}")
}

/// Pipes `script` to `nft -f -`; `what` names it in errors.
pub(crate) async fn apply(what: &str, script: &str) -> Result<(), NetError> {
    use tokio::io::AsyncWriteExt;
    let failed = |reason: String| NetError::Nft {
        what: what.to_string(),
        reason,
    };
    let mut child = tokio::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin
        .write_all(script.as_bytes())
        .await
        .map_err(|e| failed(e.to_string()))?;
    drop(stdin);
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| failed(e.to_string()))?;
    if !out.status.success() {
        return Err(failed(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_name_the_bridge_and_subnet() {
        let script = render_tables("berth0", "10.203.0.9/24".parse().unwrap(), &[]);
        for want in [
            "delete table bridge berth_berth0\n",
            "delete table inet berth_berth0\n",
            "iifname \"berth0\" ct state established,related accept\n\t\tiifname \"berth0\" drop\n",
            "ip saddr 10.203.0.0/24 oifname != \"berth0\" masquerade",
            "iifname @ports drop\n\t\toifname @ports drop",
        ] {
            assert!(script.contains(want), "missing {want:?} in\n{script}");
        }
        // Each table is declared before it is deleted, so the first apply does not fail on a missing table.
        for family in ["bridge", "inet"] {
            let declare = script.find(&format!("table {family} berth_berth0 {{}}")).unwrap();
            let delete = script
                .find(&format!("delete table {family} berth_berth0"))
                .unwrap();
            assert!(declare < delete, "{family}");
        }
    }

    #[test]
    fn dns_to_the_nameservers_is_let_in() {
        let servers = [Ipv4Addr::new(10, 0, 0, 53), Ipv4Addr::new(192, 0, 2, 1)];
        let script = render_tables("b0", "10.203.0.0/24".parse().unwrap(), &servers);
        let want = "\t\tiifname \"b0\" ct state established,related accept\n\
                    \t\tiifname \"b0\" ip daddr { 10.0.0.53, 192.0.2.1 } meta l4proto { tcp, udp } th dport 53 accept\n\
                    \t\tiifname \"b0\" drop\n";
        assert!(script.contains(want), "{script}");
    }

    #[test]
    fn elements_and_macs() {
        let address = Ipv4Addr::new(10, 203, 0, 17);
        assert_eq!(mac_for(address), "02:42:0a:cb:00:11");
        assert_eq!(
            render_elements("add", "b0", "bv1", &mac_for(address), address),
            "add element bridge berth_b0 ports { \"bv1\" }\n\
             add element bridge berth_b0 attachments { \"bv1\" . 02:42:0a:cb:00:11 . 10.203.0.17 }\n"
        );
    }

    #[test]
    fn delete_is_safe_when_absent() {
        assert_eq!(
            render_delete("b0"),
            "table bridge berth_b0 {}\ndelete table bridge berth_b0\ntable inet berth_b0 {}\ndelete table inet berth_b0\n"
        );
    }
}
