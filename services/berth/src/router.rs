//! `berth router`: the HTTP router alone, so several routers can serve one platform (or one can be measured
//! on its own). For now it serves the route table in a JSON file (`--routes-file`); following the control
//! plane's watch stream is the next step, with that file as its on-disk cache.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use route_table::RouteTable;
use tokio::sync::watch;

use crate::server::{init_tracing, wait_for_signal};

#[derive(Debug, clap::Args)]
pub struct RouterArgs {
    /// Where the router listens for HTTP.
    #[arg(long, env = "BERTH_ROUTER_ADDR", default_value = "127.0.0.1:8080")]
    router_addr: SocketAddr,
    /// The platform's domain: apps are served at NAME.DOMAIN (named on error pages).
    #[arg(long, env = "BERTH_DOMAIN", default_value = "localhost")]
    domain: String,
    /// A route table (JSON, as the control plane publishes it) to serve.
    #[arg(long, env = "BERTH_ROUTES_FILE")]
    routes_file: PathBuf,
    /// Worker threads of the router's runtime (default: one per core).
    #[arg(long, env = "BERTH_ROUTER_THREADS")]
    threads: Option<usize>,
}

pub fn run(args: RouterArgs) -> ExitCode {
    init_tracing();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = runtime.build().expect("starting the tokio runtime");
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: RouterArgs) -> anyhow::Result<()> {
    let table = read_table(&args.routes_file)?;
    tracing::info!(
        version = table.version,
        hosts = table.hosts.len(),
        file = %args.routes_file.display(),
        "route table loaded"
    );
    let listener = tokio::net::TcpListener::bind(args.router_addr)
        .await
        .with_context(|| format!("binding the router to {}", args.router_addr))?;
    let (_routes_tx, routes_rx) = watch::channel(Arc::new(table));
    proxy::serve(
        listener,
        routes_rx,
        proxy::ProxyConfig::new(args.domain),
        wait_for_signal(),
    )
    .await
    .context("running the router")
}

fn read_table(path: &Path) -> anyhow::Result<RouteTable> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a route table", path.display()))
}
