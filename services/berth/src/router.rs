//! `berth router`: the HTTP router alone, so several routers can serve one platform (or one can be measured
//! on its own). With `--api URL --token T` it follows the control plane's route stream (`route_follower`),
//! keeping the last table in `--routes-file` as its cache; without `--api` it serves the table in
//! `--routes-file` as it is.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use route_follower::{Cache, FollowConfig, HttpSource};
use route_table::RouteTable;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::server::wait_for_signal;

#[derive(Debug, clap::Args)]
pub struct RouterArgs {
    /// Where the router listens for HTTP.
    #[arg(long, env = "BERTH_ROUTER_ADDR", default_value = "127.0.0.1:8080")]
    router_addr: SocketAddr,
    /// The platform's domain: apps are served at NAME.DOMAIN (named on error pages).
    #[arg(long, env = "BERTH_DOMAIN", default_value = "localhost")]
    domain: String,
    /// The control plane's API URL, whose route stream this router follows.
    #[arg(long, env = "BERTH_API")]
    api: Option<String>,
    /// A router token (`berth router-tokens create`) or an admin API token for --api.
    #[arg(long, env = "BERTH_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A file holding the token for --api (read when no --token).
    #[arg(long, env = "BERTH_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// A route table (JSON, as the control plane publishes it). Without --api: the table to serve. With
    /// --api: the cache of the last table received, served at once on start (written with mode 0600).
    #[arg(long, env = "BERTH_ROUTES_FILE")]
    routes_file: Option<PathBuf>,
    #[command(flatten)]
    listeners: RouterListenArgs,
    /// Threads serving requests (default: one per core). With 1 the whole router runs on one thread (a
    /// current-thread runtime), which measured 9-22 % less CPU per request than one worker thread plus the
    /// thread that accepts (docs/benchmarks.md).
    #[arg(long, env = "BERTH_ROUTER_THREADS")]
    threads: Option<usize>,
}

/// The router's listeners besides plain HTTP, and whom it trusts; shared by `berth server` and `berth router`.
#[derive(Debug, clap::Args)]
pub struct RouterListenArgs {
    /// Where the router serves HTTPS (certificates chosen by SNI from the route table; the platform's
    /// self-signed `*.DOMAIN` certificate otherwise). Off unless given.
    #[arg(long, env = "BERTH_ROUTER_TLS_ADDR")]
    pub router_tls_addr: Option<SocketAddr>,
    /// Where the router serves Prometheus metrics at `/metrics`. Off unless given; keep it private.
    #[arg(long, env = "BERTH_ROUTER_ADMIN_ADDR")]
    pub router_admin_addr: Option<SocketAddr>,
    /// A proxy or load balancer in front of the router (CIDR or address; repeat or separate with commas) whose
    /// X-Forwarded-For, -Proto and -Port are believed. Nobody's are by default.
    #[arg(long = "trusted-proxy", env = "BERTH_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_trusted_proxy)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

fn parse_trusted_proxy(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{text:?} is not an IP address or CIDR (like 10.0.0.0/8)"))
}

/// The router's bound listeners: plain HTTP always, HTTPS and metrics when asked for.
pub(crate) struct RouterListeners {
    http: TcpListener,
    tls: Option<TcpListener>,
    admin: Option<TcpListener>,
}

impl RouterListeners {
    /// Binds every listener now, so a port in use fails the start rather than a later request.
    pub(crate) async fn bind(http: SocketAddr, args: &RouterListenArgs) -> anyhow::Result<Self> {
        async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the {what} to {addr}"))
        }
        Ok(Self {
            http: bind(http, "router").await?,
            tls: match args.router_tls_addr {
                Some(addr) => Some(bind(addr, "router's TLS listener").await?),
                None => None,
            },
            admin: match args.router_admin_addr {
                Some(addr) => Some(bind(addr, "router's metrics listener").await?),
                None => None,
            },
        })
    }

    /// The router's configuration for these listeners: HTTPS redirects name the TLS port.
    pub(crate) fn config(&self, domain: &str, args: &RouterListenArgs) -> proxy::ProxyConfig {
        let mut config = proxy::ProxyConfig::new(domain);
        if let Some(port) = self
            .tls
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map(|a| a.port())
        {
            config.https_port = port;
        }
        config.trusted_proxies.clone_from(&args.trusted_proxies);
        config
    }

    /// Serves every listener until `stopped` resolves; the first to fail ends the others.
    pub(crate) async fn serve<F>(
        self,
        routes: watch::Receiver<Arc<RouteTable>>,
        config: proxy::ProxyConfig,
        stopped: impl Fn() -> F,
    ) -> anyhow::Result<()>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let mut tasks = tokio::task::JoinSet::new();
        if let Some(listener) = self.admin {
            tasks.spawn(proxy::serve_admin(listener, config.metrics.clone(), stopped()));
        }
        if let Some(listener) = self.tls {
            tasks.spawn(proxy::serve_tls(
                listener,
                routes.clone(),
                config.clone(),
                stopped(),
            ));
        }
        tasks.spawn(proxy::serve(self.http, routes, config, stopped()));
        while let Some(done) = tasks.join_next().await {
            done.context("a router task panicked")?
                .context("running the router")?;
        }
        Ok(())
    }
}

pub fn run(args: RouterArgs) -> ExitCode {
    let logging = crate::logging::init();
    let mut runtime = match args.threads {
        Some(0 | 1) => tokio::runtime::Builder::new_current_thread(),
        Some(threads) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(threads);
            builder
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = runtime.enable_all().build().expect("starting the tokio runtime");
    let result = runtime.block_on(serve(args));
    // Whatever the runtime's tasks log while they stop is written before the guard's final flush.
    drop(runtime);
    logging.exit(result)
}

/// Where the tables come from, decided from the flags before anything starts.
enum Source {
    Static(PathBuf),
    Follow {
        source: HttpSource,
        cache: Option<Cache>,
    },
}

fn source(args: &RouterArgs) -> anyhow::Result<Source> {
    let Some(api) = &args.api else {
        if args.token.is_some() || args.token_file.is_some() {
            bail!("--token and --token-file need --api");
        }
        let Some(file) = &args.routes_file else {
            bail!("give --api URL --token T to follow a control plane, or --routes-file F to serve a fixed table");
        };
        return Ok(Source::Static(file.clone()));
    };
    let token = match (&args.token, &args.token_file) {
        (Some(token), _) if !token.trim().is_empty() => token.trim().to_owned(),
        (_, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the API token from {}", path.display()))?;
            text.trim().to_owned()
        }
        _ => String::new(),
    };
    if token.is_empty() {
        bail!(
            "--api needs a router token (berth router-tokens create): pass --token, or set BERTH_TOKEN or \
             BERTH_TOKEN_FILE"
        );
    }
    let source = HttpSource::new(api, token).context("--api")?;
    Ok(Source::Follow {
        source,
        cache: args.routes_file.clone().map(Cache::new),
    })
}

async fn serve(args: RouterArgs) -> anyhow::Result<()> {
    let source = source(&args)?;
    let initial = match &source {
        Source::Static(file) => Cache::new(file)
            .load()?
            .with_context(|| format!("{} does not exist", file.display()))?,
        Source::Follow {
            cache: Some(cache), ..
        } => match cache.load() {
            Ok(table) => table.unwrap_or_default(),
            // The control plane will send a fresh one; a bad cache must not keep the router down.
            Err(error) => {
                tracing::warn!(error = %format!("{:#}", anyhow::Error::from(error)), "ignoring the route cache");
                RouteTable::default()
            }
        },
        Source::Follow { cache: None, .. } => RouteTable::default(),
    };
    tracing::info!(
        version = initial.version,
        hosts = initial.hosts.len(),
        "serving the initial route table"
    );
    let listeners = RouterListeners::bind(args.router_addr, &args.listeners).await?;
    let config = listeners.config(&args.domain, &args.listeners);
    let (routes_tx, routes_rx) = watch::channel(Arc::new(initial));
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let follower = match source {
        Source::Static(_) => {
            // Nothing changes the table; the sender lives as long as the router.
            let keep = routes_tx;
            let stop = stopped(stop_rx.clone());
            tokio::spawn(async move {
                stop.await;
                drop(keep);
            })
        }
        Source::Follow { source, cache } => tokio::spawn(route_follower::follow(
            source,
            cache,
            routes_tx,
            FollowConfig::default(),
            stopped(stop_rx.clone()),
        )),
    };
    tokio::spawn(async move {
        wait_for_signal().await;
        let _ = stop_tx.send(true);
    });
    let result = listeners
        .serve(routes_rx, config, || stopped(stop_rx.clone()))
        .await;
    let _ = follower.await;
    result
}
