//! Scheduling as users and operators type it (no root needed): the CLI against the real API in-process, with
//! the real controller planning onto two registered nodes whose links record what they are told.
//! `berth apps create --constraint`, `berth ps` showing a pending instance and why, `berth admin nodes`.

use std::collections::{BTreeMap, HashMap};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use route_table::RouteTable;
use tokio::sync::watch;

use crate::standalone_router::{serve_api, store_with_account};
use crate::support::berth_bin;

#[derive(Default)]
struct RecordingNode(Mutex<usize>);

impl controller::NodeLink for RecordingNode {
    fn set_desired(&self, specs: Vec<agent_contract::InstanceSpec>) {
        *self.0.lock().unwrap() = specs.len();
    }
}

async fn berth(api: std::net::SocketAddr, token: &str, args: &[&str]) -> Output {
    let mut command = Command::new(berth_bin());
    command
        .args(args)
        .env("BERTH_API", format!("http://{api}"))
        .env("BERTH_TOKEN", token)
        .env_remove("BERTH_TOKEN_FILE");
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn stdout_ok(output: Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn constraints_pending_reasons_and_the_node_list_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _admin, admin) = store_with_account(dir.path(), "admin", true).await;
    let (alice, tenant) = store
        .create_account(&vocabulary::AccountName::new("alice").unwrap(), false)
        .await
        .unwrap();
    let mut links: HashMap<vocabulary::NodeId, Arc<dyn controller::NodeLink>> = HashMap::new();
    let mut recorders = Vec::new();
    for (name, region) in [("node-eu", "eu"), ("node-us", "us")] {
        let id = vocabulary::NodeId::new();
        store
            .register_node(&store::NodeRegistration {
                id,
                name: name.to_owned(),
                memory_capacity_bytes: 4 << 30,
                cpu_millicores: 2000,
                disk_bytes: 10 << 30,
                labels: BTreeMap::from([("region".to_owned(), region.to_owned())]),
                agent_version: "test".to_owned(),
            })
            .await
            .unwrap();
        let link = Arc::new(RecordingNode::default());
        links.insert(id, link.clone());
        recorders.push(link);
    }
    let (routes_tx, routes_rx) = watch::channel(Arc::new(RouteTable::default()));
    let (api, api_task) = serve_api(store.clone(), dir.path(), routes_rx).await;
    let controller = controller::Controller::new(
        controller::ControllerConfig {
            domain: "apps.test".into(),
            instance_port: 5000,
            cpu_millicores: controller::INSTANCE_CPU_MILLICORES,
            pids_max: 100,
            tick: std::time::Duration::from_secs(3600),
            platform_certificate: None,
            drain: controller::DrainPolicy::default(),
        },
        store.clone(),
        links,
        routes_tx,
        Arc::new(controller::NothingInFlight),
    );

    // The app may only run in ap, which no node offers; a bad label never reaches the server.
    let bad = berth(
        api,
        &tenant,
        &["apps", "create", "shop", "--constraint", "region"],
    )
    .await;
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("must be KEY=VALUE"));
    stdout_ok(
        berth(
            api,
            &tenant,
            &["apps", "create", "shop", "--constraint", "region=ap"],
        )
        .await,
    );
    let info = stdout_ok(berth(api, &tenant, &["apps", "info", "shop"]).await);
    assert!(info.contains("Constraints:         region=ap"), "{info}");
    let app = store
        .app_by_name(&vocabulary::AppName::new("shop").unwrap())
        .await
        .unwrap()
        .unwrap();
    store
        .create_release(store::NewRelease {
            app: app.id,
            image_digest: format!("sha256:{}", "ab".repeat(32)),
            processes: BTreeMap::from([(vocabulary::ProcessType::web(), "run".to_owned())]),
            config: BTreeMap::new(),
            description: "Deploy".to_owned(),
            created_by: alice.id,
        })
        .await
        .unwrap();
    stdout_ok(berth(api, &tenant, &["scale", "web=2", "-a", "shop"]).await);
    controller.reconcile().await.unwrap();
    let ps = stdout_ok(berth(api, &tenant, &["ps", "-a", "shop"]).await);
    for index in [1, 2] {
        let line = format!("web.{index}  pending  no node matches region=ap (for ");
        assert!(ps.contains(&line), "{line}: {ps}");
    }

    // In eu: one node can take both; they run there, and nothing is pending any more.
    stdout_ok(
        berth(
            api,
            &tenant,
            &["apps", "update", "shop", "--constraint", "region=eu"],
        )
        .await,
    );
    controller.reconcile().await.unwrap();
    let ps = stdout_ok(berth(api, &tenant, &["ps", "-a", "shop"]).await);
    assert!(!ps.contains("pending"), "{ps}");
    assert_eq!(ps.matches("node-eu").count(), 2, "{ps}");
    assert_eq!(
        (*recorders[0].0.lock().unwrap(), *recorders[1].0.lock().unwrap()),
        (2, 0)
    );

    // Operators see the nodes; tenants may not.
    let nodes = stdout_ok(berth(api, &admin, &["admin", "nodes"]).await);
    let eu = nodes
        .lines()
        .find(|l| l.starts_with("node-eu"))
        .expect("node-eu listed");
    for want in ["ready", "up", " 2 ", "128M/4G", "200/2000m", "region=eu"] {
        assert!(eu.contains(want), "{want}: {nodes}");
    }
    let refused = berth(api, &tenant, &["admin", "nodes"]).await;
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("only an admin account may list nodes"));

    // Cordon the eu node and scale up: the new instance waits, saying why.
    stdout_ok(berth(api, &admin, &["admin", "nodes", "cordon", "node-eu"]).await);
    stdout_ok(berth(api, &tenant, &["scale", "web=3", "-a", "shop"]).await);
    controller.reconcile().await.unwrap();
    let ps = stdout_ok(berth(api, &tenant, &["ps", "-a", "shop"]).await);
    assert!(
        ps.contains("web.3  pending  no schedulable node matches region=eu (1 cordoned)"),
        "{ps}"
    );
    let removed = berth(api, &admin, &["admin", "nodes", "remove", "node-eu"]).await;
    assert!(!removed.status.success());
    assert!(String::from_utf8_lossy(&removed.stderr).contains("drain it first"));
    stdout_ok(berth(api, &admin, &["admin", "nodes", "remove", "node-us"]).await);
    api_task.abort();
}

/// The real server registers its node with the machine's CPUs, its labels and its version, and heartbeats.
#[test]
fn the_server_registers_its_node_with_labels() {
    use crate::support::{leftovers, require, HostNames, Server};
    if !require("the_server_registers_its_node_with_labels", true, &["ip", "nft"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let data_dir = work.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    let names = HostNames::unique();
    let mut server = Server::start_with(
        &data_dir,
        &names,
        &["--node-label", "region=eu", "--node-label", "disk=ssd"],
    );
    let admin = server.admin_token();
    let nodes = server.berth_ok(&admin, &["admin", "nodes"]);
    let local = nodes
        .lines()
        .find(|l| l.starts_with("local "))
        .unwrap_or_else(|| panic!("no local node:\n{nodes}"));
    let cpus = std::thread::available_parallelism().unwrap().get() * 1000;
    for want in [
        "ready".to_owned(),
        " up ".to_owned(),
        format!("0/{cpus}m"),
        env!("CARGO_PKG_VERSION").to_owned(),
        "disk=ssd,region=eu".to_owned(),
    ] {
        assert!(local.contains(&want), "{want}: {nodes}");
    }
    let alice = server
        .berth_ok(&admin, &["accounts", "create", "alice"])
        .lines()
        .last()
        .unwrap()
        .to_owned();
    let refused = server.berth(&alice, &["admin", "nodes"]);
    assert!(!refused.status.success(), "a tenant must not list nodes");
    server.stop();
    assert_eq!(leftovers(&names, &data_dir), Vec::<String>::new());

    // A bad label stops the server at once with a clear error.
    let bad = std::process::Command::new(crate::support::berth_bin())
        .args([
            "server",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--node-label",
            "region",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--node-label"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
