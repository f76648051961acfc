//! `berth admin ...`: the operator's commands (admin tokens only). Nodes (list, cordon, uncordon, drain,
//! remove) here; accounts, every account's apps and the audit log in `access.rs`.

use api_contract::admin_nodes::NodeInfo;
use clap::Subcommand;
use reqwest::Method;

use super::client::Client;
use super::output;

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// List the nodes with capacity, allocation, state, health and labels; or cordon, uncordon, drain or
    /// remove one.
    Nodes {
        #[command(subcommand)]
        command: Option<NodesCommand>,
    },
    #[command(flatten)]
    Tenancy(super::access::AdminCommand),
}

#[derive(Debug, Subcommand)]
pub enum NodesCommand {
    /// Take no new instances on NODE; what runs there keeps running.
    Cordon { node: String },
    /// Let NODE take new instances again (also ends a drain).
    Uncordon { node: String },
    /// Cordon NODE and move its instances elsewhere, each replacement running before the old one stops.
    Drain { node: String },
    /// Forget NODE; only once nothing is placed on it (drain it first).
    Remove { node: String },
}

pub async fn execute(client: &Client, command: AdminCommand) -> anyhow::Result<()> {
    let command = match command {
        AdminCommand::Nodes { command } => command,
        AdminCommand::Tenancy(command) => return super::access::admin(client, command).await,
    };
    let action = |node: &str, action: &str| format!("/v1/admin/nodes/{}/{action}", path_segment(node));
    match command {
        None => {
            let nodes: Vec<NodeInfo> = client.get("/v1/admin/nodes").await?;
            print!("{}", nodes_table(&nodes, chrono::Utc::now()));
        }
        Some(NodesCommand::Cordon { node }) => {
            let _: NodeInfo = client.send(Method::POST, &action(&node, "cordon"), &()).await?;
            println!("Cordoned {node}: it takes no new instances; what runs there keeps running.");
        }
        Some(NodesCommand::Uncordon { node }) => {
            let _: NodeInfo = client.send(Method::POST, &action(&node, "uncordon"), &()).await?;
            println!("Uncordoned {node}: it takes new instances again.");
        }
        Some(NodesCommand::Drain { node }) => {
            let info: NodeInfo = client.send(Method::POST, &action(&node, "drain"), &()).await?;
            println!(
                "Draining {node}: its {} instance(s) are replaced elsewhere, then stopped. \
                 `berth admin nodes` shows when it runs nothing.",
                info.instances
            );
        }
        Some(NodesCommand::Remove { node }) => {
            client
                .delete(&format!("/v1/admin/nodes/{}", path_segment(&node)))
                .await?;
            println!("Removed node {node}.");
        }
    }
    Ok(())
}

/// Node names and IDs are plain; anything else is refused by the server as unknown, so escape only `/`.
fn path_segment(node: &str) -> String {
    node.replace('/', "%2F")
}

/// `berth admin nodes`.
pub fn nodes_table(nodes: &[NodeInfo], now: chrono::DateTime<chrono::Utc>) -> String {
    if nodes.is_empty() {
        return "No nodes are registered.\n".to_owned();
    }
    let mut rows = vec![[
        "NAME",
        "STATE",
        "HEALTH",
        "INSTANCES",
        "MEMORY",
        "CPU",
        "DISK",
        "HEARTBEAT",
        "VERSION",
        "LABELS",
    ]
    .map(str::to_owned)
    .to_vec()];
    for n in nodes {
        rows.push(vec![
            n.name.clone(),
            n.state.clone(),
            n.health.clone(),
            n.instances.to_string(),
            format!(
                "{}/{}",
                output::memory(n.allocated_memory_bytes),
                output::memory(n.memory_bytes)
            ),
            format!("{}/{}m", n.allocated_cpu_millicores, n.cpu_millicores),
            output::memory(n.disk_bytes),
            n.last_heartbeat_at.map_or_else(
                || "never".to_owned(),
                |at| format!("{} ago", output::duration((now - at).num_seconds())),
            ),
            n.agent_version.clone(),
            vocabulary::labels_text(&n.labels),
        ]);
    }
    output::table(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_table() {
        let now = chrono::Utc::now();
        let node = NodeInfo {
            id: "id".into(),
            name: "local".into(),
            state: "cordoned".into(),
            health: "up".into(),
            memory_bytes: 8 << 30,
            cpu_millicores: 4000,
            disk_bytes: 100 << 30,
            allocated_memory_bytes: 512 << 20,
            allocated_cpu_millicores: 2000,
            instances: 2,
            labels: [("region".to_owned(), "eu".to_owned())].into(),
            agent_version: "0.1.0".into(),
            last_heartbeat_at: Some(now - chrono::Duration::seconds(3)),
        };
        assert_eq!(
            nodes_table(&[node], now),
            "NAME   STATE     HEALTH  INSTANCES  MEMORY   CPU         DISK  HEARTBEAT  VERSION  LABELS\n\
             local  cordoned  up      2          512M/8G  2000/4000m  100G  3s ago     0.1.0    region=eu\n"
        );
        assert_eq!(nodes_table(&[], now), "No nodes are registered.\n");
    }
}
