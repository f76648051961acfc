//! `berth server` and `berth stack`: every component of the platform wired together in one process tree on
//! one machine. Configuration is read here once and passed down as typed structs.

use std::collections::HashMap;
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Subcommand;
use tokio::sync::{mpsc, watch};
use vocabulary::{AccountName, NodeId};

/// Flags of `berth server`; each has a `BERTH_*` environment variable.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// Where all state lives: the SQLite database, git repositories, images, instances.
    #[arg(long, env = "BERTH_DATA_DIR", default_value = "/var/lib/berth")]
    pub data_dir: PathBuf,
    /// The database: `postgres://USER:PASSWORD@HOST/DB` to share one PostgreSQL with other control processes
    /// (one at a time leads and reconciles), or `sqlite:PATH`. Default: the SQLite file `DATA_DIR/berth.db`.
    #[arg(long, env = "BERTH_DATABASE_URL", hide_env_values = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// The API and git endpoint.
    #[arg(long, env = "BERTH_API_ADDR", default_value = "127.0.0.1:7070")]
    pub api_addr: SocketAddr,
    /// The router: apps are served here by `Host: NAME.DOMAIN`.
    #[arg(long, env = "BERTH_ROUTER_ADDR", default_value = "127.0.0.1:8080")]
    pub router_addr: SocketAddr,
    /// Apps are served at `NAME.DOMAIN`.
    #[arg(long, env = "BERTH_DOMAIN", default_value = "localhost")]
    pub domain: String,
    /// Seconds an instance being replaced or scaled down may finish its requests before it is stopped.
    #[arg(long, env = "BERTH_DRAIN_GRACE", default_value_t = 30, value_name = "SECONDS")]
    pub drain_grace: u64,
    #[command(flatten)]
    pub router: crate::router::RouterListenArgs,
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub stack: StackArgs,
    /// Let apps' classic buildpack URLs (`.buildpacks`, `BUILDPACK_URL`) name `file://` repositories on this
    /// machine. Off by default: any tenant could then read the host's git repositories. For single-tenant
    /// platforms and tests.
    #[arg(long, env = "BERTH_ALLOW_FILE_BUILDPACKS")]
    pub allow_file_buildpacks: bool,
    /// Let Dockerfiles' `FROM 127.0.0.1:PORT/...` (or `localhost`) pull from a registry on this machine without
    /// TLS. Off by default: every `FROM` registry needs valid HTTPS. For single-machine setups and tests.
    #[arg(long, env = "BERTH_INSECURE_LOOPBACK_REGISTRIES")]
    pub insecure_loopback_registries: bool,
    /// Mark the web dashboard's session cookie `Secure` on every sign-in, for an API served over HTTPS by a
    /// proxy that does not send `X-Forwarded-Proto: https` (with it, the cookie is `Secure` anyway).
    #[arg(long, env = "BERTH_SECURE_COOKIES")]
    pub secure_cookies: bool,
    #[command(flatten)]
    pub quotas: QuotaArgs,
}

/// Every account's limits unless an operator sets its own (`berth admin accounts quotas NAME ...`).
#[derive(Debug, clap::Args)]
pub struct QuotaArgs {
    /// Apps an account may own.
    #[arg(long, env = "BERTH_DEFAULT_QUOTA_APPS", default_value_t = 20)]
    pub default_quota_apps: u64,
    /// Instances an account's formations may ask for, all apps together.
    #[arg(long, env = "BERTH_DEFAULT_QUOTA_INSTANCES", default_value_t = 50)]
    pub default_quota_instances: u64,
    /// Memory of an account's instances together (quantity × memory each): `16G`, `512M`.
    #[arg(long, env = "BERTH_DEFAULT_QUOTA_MEMORY", default_value = "16G", value_parser = parse_size)]
    pub default_quota_memory: u64,
    /// Builds an account may run at once.
    #[arg(long, env = "BERTH_DEFAULT_QUOTA_BUILDS", default_value_t = 2)]
    pub default_quota_builds: u64,
}

impl QuotaArgs {
    fn quotas(&self) -> controller::quota::Quotas {
        controller::quota::Quotas::new(controller::quota::QuotaLimits {
            apps: self.default_quota_apps,
            instances: self.default_quota_instances,
            memory_bytes: self.default_quota_memory,
            builds: self.default_quota_builds,
        })
    }
}

/// How this machine's node agent isolates instances. Tests give each server its own names so that two
/// servers on one machine never touch each other's bridges, cgroups or namespaces.
#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    /// The Linux bridge that instances' veth pairs join.
    #[arg(long, env = "BERTH_BRIDGE", default_value = "berth0")]
    pub bridge: String,
    /// The instances' IPv4 subnet; the bridge takes the first address.
    #[arg(long, env = "BERTH_SUBNET", default_value = "10.203.0.0/24")]
    pub subnet: String,
    /// The cgroup (under each controller) that holds every instance's cgroup; also prefixes network
    /// namespace names.
    #[arg(long, env = "BERTH_CGROUP_PARENT", default_value = "berth")]
    pub cgroup_parent: String,
    /// Memory this node offers to instances, in MiB (default: the machine's total memory).
    #[arg(long, env = "BERTH_NODE_MEMORY_MIB")]
    pub node_memory_mib: Option<u64>,
    /// CPUs this node offers to instances (each reserves one; default: the CPUs this process may use).
    #[arg(long, env = "BERTH_NODE_CPUS", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub node_cpus: Option<u32>,
    /// A label of this node that apps' constraints match (`region=eu`); repeat for more.
    #[arg(long = "node-label", env = "BERTH_NODE_LABELS", value_delimiter = ',')]
    pub node_labels: Vec<String>,
    /// Memory per instance for a new process type, in MiB.
    #[arg(long, env = "BERTH_INSTANCE_MEMORY_MIB", default_value_t = 512)]
    pub instance_memory_mib: u64,
    #[command(flatten)]
    pub builds: BuildLimitArgs,
}

/// What each build may use; builds' cgroups are under `CGROUP_PARENT/builds`.
#[derive(Debug, clap::Args)]
pub struct BuildLimitArgs {
    /// Memory of one build, all its processes together, without swap: `2G`, `512M`, or bytes.
    #[arg(long, env = "BERTH_BUILD_MEMORY", default_value = "2G", value_parser = parse_size)]
    pub build_memory: u64,
    /// CPU time of one build, in cores (`2`, `0.5`).
    #[arg(long, env = "BERTH_BUILD_CPUS", default_value_t = 2.0)]
    pub build_cpus: f64,
    /// Processes and threads of one build.
    #[arg(long, env = "BERTH_BUILD_PIDS", default_value_t = 4096)]
    pub build_pids: u32,
    /// The largest image a build may make, its compressed layers together (stack included): `4G`, `500M`.
    #[arg(long, env = "BERTH_MAX_IMAGE_SIZE", default_value = "4G", value_parser = parse_size)]
    pub max_image_size: u64,
    /// How builds compress the layers they write (app, dependencies, Dockerfile steps): `gzip` or `zstd`.
    /// The stack layer is always gzip.
    #[arg(long, env = "BERTH_LAYER_COMPRESSION", default_value = "gzip")]
    pub layer_compression: image_store::LayerCompression,
}

impl BuildLimitArgs {
    fn sandbox(&self, node: &NodeArgs) -> anyhow::Result<build_sandbox::SandboxConfig> {
        if !(0.01..=1024.0).contains(&self.build_cpus) {
            bail!(
                "--build-cpus must be between 0.01 and 1024, got {}",
                self.build_cpus
            );
        }
        if self.build_memory < 16 << 20 || self.build_pids < 16 {
            bail!("--build-memory must be at least 16M and --build-pids at least 16");
        }
        Ok(build_sandbox::SandboxConfig {
            cgroup_parent: format!("{}/builds", node.cgroup_parent),
            limits: build_sandbox::BuildLimits {
                memory_bytes: self.build_memory,
                cpu_millicores: (self.build_cpus * 1000.0).round() as u32,
                pids_max: self.build_pids,
            },
            network: None,
        })
    }
}

/// Parses `2G`, `512M`, `64K` (powers of 1024) or a number of bytes.
fn parse_size(arg: &str) -> Result<u64, String> {
    let (number, scale) = match arg.trim_end_matches(['B', 'b', 'i']).char_indices().last() {
        Some((at, unit @ ('K' | 'k' | 'M' | 'm' | 'G' | 'g'))) => {
            let scale = match unit.to_ascii_uppercase() {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                _ => 1 << 30,
            };
            (&arg[..at], scale)
        }
        _ => (arg, 1),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("expected a size such as 2G, 512M or a number of bytes, got {arg:?}"))
}

#[derive(Debug, clap::Args)]
pub struct StackArgs {
    /// The Debian mirror debootstrap installs the stack from (default: this machine's apt source).
    #[arg(long, env = "BERTH_STACK_MIRROR")]
    pub stack_mirror: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum StackCommand {
    /// Build the base root filesystem now (the first deploy does it otherwise), showing progress.
    Build {
        #[arg(long, env = "BERTH_DATA_DIR", default_value = "/var/lib/berth")]
        data_dir: PathBuf,
        #[command(flatten)]
        stack: StackArgs,
        /// Build it again even if one is recorded (picks up Debian's updates).
        #[arg(long)]
        rebuild: bool,
    },
    /// Make a stack image from a registry the current stack (`berth stack pull REGISTRY/REPO:TAG`; needs
    /// skopeo): one gzip layer of Debian with the stack's packages. Builds and `berth rebase` then use it.
    Pull(StackPullArgs),
}

#[derive(Debug, clap::Args)]
pub struct StackPullArgs {
    #[arg(long, env = "BERTH_DATA_DIR", default_value = "/var/lib/berth")]
    data_dir: PathBuf,
    /// The image, such as registry.example.com/berth/bookworm:2026-11.
    reference: String,
    /// Require HTTPS with a valid certificate at the source (false for a plain-HTTP registry).
    #[arg(long, value_name = "true|false", default_value_t = true, action = clap::ArgAction::Set)]
    src_tls_verify: bool,
}

pub fn run(args: ServerArgs) -> ExitCode {
    let logging = crate::logging::init();
    let runtime = tokio::runtime::Runtime::new().expect("starting the tokio runtime");
    let result = runtime.block_on(serve(args));
    // Whatever the runtime's tasks log while they stop is written before the guard's final flush.
    drop(runtime);
    logging.exit(result)
}

pub fn run_stack(command: StackCommand) -> ExitCode {
    if let StackCommand::Pull(args) = command {
        return run_stack_pull(args);
    }
    let logging = crate::logging::init();
    let StackCommand::Build {
        data_dir,
        stack,
        rebuild,
    } = command
    else {
        unreachable!("pull returned above")
    };
    let runtime = tokio::runtime::Runtime::new().expect("starting the tokio runtime");
    let result = runtime.block_on(async {
        check_prerequisites(&["debootstrap"])?;
        let layout = DataLayout::new(&data_dir)?;
        let images = image_store::ImageStore::open(&layout.images).context("opening the image store")?;
        let config = stack_config(&layout, &stack);
        let progress = |line: &str| println!("{line}");
        let layer = if rebuild {
            stack::rebuild_stack(&config, &images, &progress).await
        } else {
            stack::ensure_stack(&config, &images, &progress).await
        }
        .context("building the stack")?;
        println!("stack ready: layer {}", layer.layer.digest);
        anyhow::Ok(())
    });
    drop(runtime);
    logging.exit(result)
}

/// `berth stack pull`: as root on the server's machine, like `berth stack build` (it writes the data dir).
fn run_stack_pull(args: StackPullArgs) -> ExitCode {
    let logging = crate::logging::init();
    let runtime = tokio::runtime::Runtime::new().expect("starting the tokio runtime");
    let result = runtime.block_on(async {
        if which("skopeo").is_none() {
            bail!("skopeo is not installed: run apt-get install skopeo");
        }
        let layout = DataLayout::new(&args.data_dir)?;
        let images = image_store::ImageStore::open(&layout.images).context("opening the image store")?;
        let config = stack::StackConfig::new(layout.stacks.clone());
        let options = stack::PullOptions {
            reference: args.reference.clone(),
            src_tls_verify: args.src_tls_verify,
            skopeo: "skopeo".into(),
        };
        let progress = |line: &str| println!("{line}");
        let stack = stack::pull_stack(&config, &images, &options, &progress)
            .await
            .context("pulling the stack")?;
        println!("stack ready: layer {}", stack.layer.digest);
        anyhow::Ok(())
    });
    drop(runtime);
    logging.exit(result)
}
/// The largest image `berth deploy --image` accepts, in bytes of layers (compressed or uncompressed).
const MAX_IMAGE_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// Where each component keeps its files under the data dir.
struct DataLayout {
    root: PathBuf,
    database: PathBuf,
    admin_token: PathBuf,
    repos: PathBuf,
    images: PathBuf,
    stacks: PathBuf,
    build_cache: PathBuf,
    /// Temporary OCI layouts of images being pulled for `berth deploy --image`.
    pulls: PathBuf,
    node: PathBuf,
    tls: PathBuf,
    /// The apps' logs, a directory per app (`app-logs`).
    logs: PathBuf,
}

impl DataLayout {
    fn new(root: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root).with_context(|| format!("creating the data dir {}", root.display()))?;
        let root = root
            .canonicalize()
            .with_context(|| format!("resolving {}", root.display()))?;
        let layout = Self {
            database: root.join("berth.db"),
            admin_token: root.join("admin.token"),
            repos: root.join("repos"),
            images: root.join("images"),
            stacks: root.join("stacks"),
            build_cache: root.join("build-cache"),
            pulls: root.join("pulls"),
            node: root.join("node"),
            tls: root.join("tls"),
            logs: root.join("logs"),
            root,
        };
        for dir in [
            &layout.repos,
            &layout.images,
            &layout.stacks,
            &layout.build_cache,
            &layout.pulls,
            &layout.node,
            &layout.tls,
            &layout.logs,
        ] {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        Ok(layout)
    }
}

fn stack_config(layout: &DataLayout, args: &StackArgs) -> stack::StackConfig {
    let mut config = stack::StackConfig::new(layout.stacks.clone());
    config.mirror = args.stack_mirror.clone();
    config
}

/// Says clearly what is missing, rather than failing later in the middle of a push.
fn check_prerequisites(tools: &[&str]) -> anyhow::Result<()> {
    if !nix_is_root() {
        bail!("berth server must run as root: it creates namespaces, cgroups and network interfaces");
    }
    let missing: Vec<&str> = tools.iter().copied().filter(|t| which(t).is_none()).collect();
    if !missing.is_empty() {
        bail!(
            "missing tools: {} (on Debian or Ubuntu: apt-get install {}); see README.md",
            missing.join(", "),
            missing
                .iter()
                .map(|t| if *t == "ip" { "iproute2" } else { t })
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    Ok(())
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

/// The node's ID survives restarts, so instance placements in the store stay meaningful.
fn node_id(layout: &DataLayout) -> anyhow::Result<NodeId> {
    let path = layout.node.join("node-id");
    match std::fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .parse()
            .with_context(|| format!("{} is corrupt", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = NodeId::new();
            std::fs::write(&path, id.to_string()).with_context(|| format!("writing {}", path.display()))?;
            Ok(id)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// How often the in-process agent tells the inventory it is alive (the controller marks a node down after
/// `controller::NODE_DOWN_AFTER` without one).
const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);

/// Records a heartbeat for the in-process node every [`HEARTBEAT_EVERY`] until the process ends.
async fn heartbeats(store: store::Store, node: NodeId) {
    let mut every = tokio::time::interval(HEARTBEAT_EVERY);
    loop {
        every.tick().await;
        if let Err(error) = store.record_heartbeat(node, chrono::Utc::now()).await {
            tracing::warn!(node = %node, error = %format!("{:#}", anyhow::Error::new(error)), "recording a heartbeat");
        }
    }
}

/// The CPUs this process may use, in millicores.
fn cpu_millicores() -> u64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u64) * 1000
}

/// The size of the file system that holds the node's data (images and instances' layers).
fn disk_bytes(dir: &std::path::Path) -> anyhow::Result<u64> {
    let stat = nix::sys::statvfs::statvfs(dir).with_context(|| format!("statvfs {}", dir.display()))?;
    Ok(stat.blocks() * stat.fragment_size())
}

fn total_memory_bytes() -> anyhow::Result<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").context("reading /proc/meminfo")?;
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no MemTotal in /proc/meminfo")?;
    Ok(kib * 1024)
}

/// On first start: an admin account whose token goes to `DATA_DIR/admin.token` (mode 0600).
async fn ensure_admin(store: &store::Store, layout: &DataLayout) -> anyhow::Result<()> {
    if store.has_admin().await? {
        return Ok(());
    }
    let (account, token) = match store
        .create_account(&AccountName::new("admin").expect("valid name"), true)
        .await
    {
        Ok(made) => made,
        // Another control process sharing the database made it first (its token is in its data dir).
        Err(store::StoreError::Conflict { .. }) => return Ok(()),
        Err(error) => return Err(error.into()),
    };
    write_private(&layout.admin_token, &format!("{token}\n"))?;
    // Through the log, not eprintln!, so that it appears in order with the lines still queued for stderr.
    tracing::info!(account = %account.name, token_file = %layout.admin_token.display(), "created the admin account; its API token is in token_file");
    Ok(())
}

/// The platform's self-signed certificate for `*.DOMAIN` and `DOMAIN`, made with rcgen at first start and kept
/// in `DATA_DIR/tls/DOMAIN.crt` and `DOMAIN.key` (mode 0600), so routers present the same one across restarts.
fn platform_certificate(layout: &DataLayout, domain: &str) -> anyhow::Result<route_table::Certificate> {
    let sane = !domain.is_empty()
        && !domain.starts_with('.')
        && domain
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if !sane {
        bail!("--domain {domain:?} is not a lowercase DNS name");
    }
    let cert_path = layout.tls.join(format!("{domain}.crt"));
    let key_path = layout.tls.join(format!("{domain}.key"));
    let hosts = vec![format!("*.{domain}"), domain.to_owned()];
    if cert_path.exists() && key_path.exists() {
        let read = |path: &Path| {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
        };
        return Ok(route_table::Certificate {
            hosts,
            cert_pem: read(&cert_path)?,
            key_pem: read(&key_path)?,
        });
    }
    let mut params =
        rcgen::CertificateParams::new(hosts.clone()).context("the platform certificate's names")?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("*.{domain}"));
    let key = rcgen::KeyPair::generate().context("making the platform certificate's key")?;
    let cert = params
        .self_signed(&key)
        .context("making the platform certificate")?;
    let key_pem = key.serialize_pem();
    write_private(&key_path, &key_pem)?;
    std::fs::write(&cert_path, cert.pem()).with_context(|| format!("writing {}", cert_path.display()))?;
    tracing::info!(path = %cert_path.display(), "made a self-signed certificate for *.{domain}");
    Ok(route_table::Certificate {
        hosts,
        cert_pem: cert.pem(),
        key_pem,
    })
}

/// Writes a secret file readable by root only (mode 0600 from the start, never wider).
pub(crate) fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

async fn serve(args: ServerArgs) -> anyhow::Result<()> {
    check_prerequisites(&["git", "debootstrap", "ip"])?;
    let layout = DataLayout::new(&args.data_dir)?;
    tracing::info!(data_dir = %layout.root.display(), "starting berth server");
    // Pull layouts a previous run left behind (stopped mid-deploy) are of no use: no deploy is running yet.
    for entry in
        std::fs::read_dir(&layout.pulls).with_context(|| format!("reading {}", layout.pulls.display()))?
    {
        let path = entry?.path();
        std::fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))?;
    }

    let store = match &args.database_url {
        Some(url) => store::Store::connect(url).await,
        None => store::Store::open_sqlite(&layout.database).await,
    }
    .context("opening the database")?;
    ensure_admin(&store, &layout).await?;
    // Every control process serves the API; only the one that leads reconciles (always this one on SQLite).
    let (leading, leadership_task) =
        controller::follow_leadership(store.clone(), controller::LeadershipConfig::default());
    let logs = app_logs::AppLogs::open(app_logs::LogsConfig::new(layout.logs.clone()))
        .context("opening the apps' logs")?;
    crate::app_logging::forward_events(logs.clone(), &store);
    let (output_tx, output_rx) = mpsc::channel(crate::app_logging::OUTPUT_CHANNEL_LINES);
    let instance_output = crate::app_logging::forward_instance_output(logs.clone(), output_rx);

    // The container init re-executes this very binary through /proc/self/exe, which keeps working even if the
    // file is replaced while the server runs. git's hook is run by git, so it needs the binary's real path.
    let init_program = PathBuf::from("/proc/self/exe");
    let hook_program = std::env::current_exe().context("finding the berth binary")?;
    // Builds write through this handle (and its clones): their layers' compression and the image size limit.
    let images = image_store::ImageStore::open(&layout.images)
        .context("opening the image store")?
        .with_layer_compression(args.node.builds.layer_compression)
        .with_max_image_size(args.node.builds.max_image_size);

    // The node agent for this machine.
    let node = node_id(&layout)?;
    let memory_capacity = match args.node.node_memory_mib {
        Some(mib) => mib * 1024 * 1024,
        None => total_memory_bytes()?,
    };
    let labels = vocabulary::Label::parse_all(&args.node.node_labels).context("--node-label")?;
    store
        .register_node(&store::NodeRegistration {
            id: node,
            name: "local".into(),
            memory_capacity_bytes: memory_capacity,
            cpu_millicores: args
                .node
                .node_cpus
                .map_or_else(cpu_millicores, |n| u64::from(n) * 1000),
            disk_bytes: disk_bytes(&layout.node)?,
            labels,
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        })
        .await?;
    tokio::spawn(heartbeats(store.clone(), node));
    let (agent, mut agent_reports) = agent::Agent::start(agent::AgentConfig {
        node,
        data_dir: layout.node.clone(),
        image_store: images.clone(),
        init_program: init_program.clone(),
        cgroup_parent: args.node.cgroup_parent.clone(),
        bridge: args.node.bridge.clone(),
        subnet: args.node.subnet.parse().context("--subnet")?,
        netns_prefix: format!("{}-", args.node.cgroup_parent),
        // The default; an app's `stop_grace` setting overrides it per instance.
        stop_grace: Duration::from_secs(30),
        output: Some(output_tx),
    })
    .await
    .context("starting the node agent")?;
    let agent = Arc::new(agent);

    // The controller, fed by API events and the agent's reports.
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let controller_handle = controller::ControllerHandle::new(events_tx);
    let (reports_tx, reports_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while agent_reports.changed().await.is_ok() {
            let report = agent_reports.borrow_and_update().clone();
            if reports_tx.send(report).is_err() {
                break;
            }
        }
    });
    let (routes_tx, routes_rx) = watch::channel(Arc::new(route_table::RouteTable::default()));
    // The same table goes to the in-process router and, through the API's watch stream, to standalone ones.
    let api_routes_rx = routes_rx.clone();
    let mut links: HashMap<NodeId, Arc<dyn controller::NodeLink>> = HashMap::new();
    links.insert(node, Arc::new(InProcessAgent(Arc::downgrade(&agent))));
    // The router's listeners first, so a port already in use fails the start instead of a later request.
    let router_listeners = crate::router::RouterListeners::bind(args.router_addr, &args.router).await?;
    let mut router_config = router_listeners.config(&args.domain, &args.router);
    let (access_tx, access_rx) = mpsc::channel(crate::app_logging::ACCESS_CHANNEL_RECORDS);
    router_config.access_log = Some(access_tx);
    crate::app_logging::forward_access_records(logs.clone(), store.clone(), access_rx, routes_rx.clone());
    let controller_config = controller::ControllerConfig {
        domain: args.domain.clone(),
        instance_port: 5000,
        cpu_millicores: controller::INSTANCE_CPU_MILLICORES,
        pids_max: 512,
        tick: Duration::from_secs(2),
        platform_certificate: Some(platform_certificate(&layout, &args.domain)?),
        drain: controller::DrainPolicy {
            grace: Duration::from_secs(args.drain_grace),
            ..controller::DrainPolicy::default()
        },
    };
    // One-off runs (`berth run`, release phases) go to the same nodes, with the same instance specs.
    let one_offs = controller::OneOffs::new(
        controller_config.clone(),
        controller::OneOffLimits {
            default_memory_bytes: args.node.instance_memory_mib * 1024 * 1024,
            ..controller::OneOffLimits::default()
        },
        store.clone(),
        &links,
    );
    let controller = controller::Controller::new(
        controller_config,
        store.clone(),
        links,
        routes_tx,
        Arc::new(RouterTraffic(router_config.traffic.clone())),
    )
    .with_leadership(leading);
    let passes = controller.passes();

    let mut builder_config = buildpacks::BuilderConfig::new(
        images.clone(),
        stack_config(&layout, &args.stack),
        layout.build_cache.clone(),
        init_program.clone(),
    );
    builder_config.buildpack_sources.allow_file_urls = args.allow_file_buildpacks;
    let mut sandbox = args.node.builds.sandbox(&args.node)?;
    // Builds get their own network namespace on the agent's bridge: egress through NAT and DNS, no route to
    // this node's ports (the API), its instances or other builds.
    sandbox.network = Some(agent.network());
    builder_config.sandbox = sandbox.clone();
    let builder = buildpacks::Builder::new(builder_config);
    let mut dockerfile_config = dockerfile::DockerfileConfig::new(
        images.clone(),
        stack_config(&layout, &args.stack),
        layout.build_cache.join("dockerfile"),
        init_program.clone(),
    );
    dockerfile_config.sandbox = sandbox;
    dockerfile_config.max_base_bytes = MAX_IMAGE_BYTES;
    dockerfile_config.insecure_loopback_registries = args.insecure_loopback_registries;
    let dockerfiles = dockerfile::DockerfileBuilder::new(dockerfile_config);
    let deployments = controller::Deployments::new(
        controller::DeployConfig {
            domain: args.domain.clone(),
            router_port: args.router_addr.port(),
            default_memory_bytes: args.node.instance_memory_mib * 1024 * 1024,
            rollout_timeout: Duration::from_secs(120),
            app_logs: Some(logs.clone()),
        },
        store.clone(),
        builder,
        dockerfiles,
        controller_handle.clone(),
        passes,
    )
    .with_one_offs(one_offs)
    .with_quotas(args.quotas.quotas());
    let lifecycle = deployments.lifecycle();
    let image_deploys = deployments.image_deploys(
        controller::ImageDeployConfig {
            skopeo: PathBuf::from("skopeo"),
            work_dir: layout.pulls.clone(),
            max_image_bytes: MAX_IMAGE_BYTES,
            pull_timeout: Duration::from_secs(600),
        },
        images.clone(),
    );

    let api_listener = tokio::net::TcpListener::bind(args.api_addr)
        .await
        .with_context(|| format!("binding the API to {}", args.api_addr))?;
    let api_port = api_listener.local_addr()?.port();

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let shutdown = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };

    let controller_task = tokio::spawn(controller.run(events_rx, reports_rx, shutdown(shutdown_rx.clone())));
    let router_stop = shutdown_rx.clone();
    let router_task =
        tokio::spawn(router_listeners.serve(routes_rx, router_config, move || shutdown(router_stop.clone())));

    let git = git_receive::GitReceive::new(git_receive::GitReceiveConfig {
        repos_dir: layout.repos.clone(),
        store: store.clone(),
        deployer: Arc::new(deployments),
        hook_program,
        hook_url: format!("http://127.0.0.1:{api_port}/internal/git-hooks/pre-receive"),
        max_push_bytes: 1024 * 1024 * 1024,
    });
    let app = api::router(api::ApiState {
        store: store.clone(),
        controller: controller_handle.clone(),
        default_memory_bytes: args.node.instance_memory_mib * 1024 * 1024,
        domain: args.domain.clone(),
        router_port: args.router_addr.port(),
        repos_dir: layout.repos.clone(),
        routes: api_routes_rx,
        route_heartbeat: Duration::from_secs(api_contract::ROUTE_HEARTBEAT_SECS),
        images: images.clone(),
        stacks_dir: layout.stacks.clone(),
        image_deploys: Some(image_deploys),
        logs: logs.clone(),
        lifecycle,
    })
    .merge(git_receive::routes(git))
    .merge(dashboard::routes(dashboard::DashboardConfig {
        store: store.clone(),
        secure_cookies: args.secure_cookies,
        session_lifetime: dashboard::DEFAULT_SESSION_LIFETIME,
    }));
    tracing::info!(api = %args.api_addr, router = %args.router_addr, domain = %args.domain, "berth server ready");
    let api_task = tokio::spawn(
        axum::serve(api_listener, app)
            .with_graceful_shutdown(shutdown(shutdown_rx.clone()))
            .into_future(),
    );

    wait_for_signal().await;
    tracing::info!("shutting down: stopping instances and removing what they used");
    let _ = shutdown_tx.send(true);
    // `berth logs -f` would hold the API's graceful shutdown open forever.
    logs.end_followers();
    let _ = api_task.await;
    let _ = controller_task.await;
    // Another control process may take the lead at once.
    leadership_task.abort();
    match router_task.await {
        Ok(Err(error)) => tracing::error!(error = %format!("{error:#}"), "the router failed"),
        Err(error) => tracing::error!(%error, "the router task panicked"),
        Ok(Ok(())) => {}
    }
    match Arc::try_unwrap(agent) {
        Ok(agent) => agent.shutdown().await,
        Err(_) => bail!("the node agent is still in use at shutdown"),
    }
    // The instances' last lines, and the agent's about stopping them, are kept for the next start.
    let _ = tokio::time::timeout(Duration::from_secs(5), instance_output).await;
    logs.flush().await;
    tracing::info!("berth server stopped");
    Ok(())
}

/// Tells the controller what the in-process router still has in flight to an instance it drains.
struct RouterTraffic(proxy::Traffic);

impl controller::DrainProbe for RouterTraffic {
    fn in_flight(&self, backend: SocketAddr) -> usize {
        self.0.in_flight(backend)
    }
}

/// Hands the controller's desired set and one-off runs to the agent in this process. Weak, so that the
/// shutdown owns the agent alone whatever still holds a link (a deploy's release phase, the API's one-offs).
struct InProcessAgent(std::sync::Weak<agent::AgentHandle>);

impl controller::NodeLink for InProcessAgent {
    fn set_desired(&self, specs: Vec<agent_contract::InstanceSpec>) {
        if let Some(agent) = self.0.upgrade() {
            agent.set_desired(specs);
        }
    }

    fn run_one_off(&self, request: agent_contract::OneOffRequest) -> controller::OneOffStart<'_> {
        Box::pin(async move {
            let agent = self.0.upgrade().ok_or("the node agent is shutting down")?;
            agent
                .run_one_off(request)
                .await
                .map_err(|e| format!("{:#}", anyhow::Error::new(e)))
        })
    }
}

pub(crate) async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn sizes() {
        let cases = [
            ("2G", Some(2 << 30)),
            ("256M", Some(256 << 20)),
            ("256MiB", Some(256 << 20)),
            ("64k", Some(64 << 10)),
            ("1000", Some(1000)),
            ("", None),
            ("G", None),
            ("2T", None),
            ("-1M", None),
        ];
        for (arg, want) in cases {
            assert_eq!(parse_size(arg).ok(), want, "{arg}");
        }
    }

    #[test]
    fn build_image_flags() {
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            builds: BuildLimitArgs,
        }
        let parse = |args: &[&str]| {
            <Flags as clap::Parser>::try_parse_from(std::iter::once("berth").chain(args.iter().copied()))
                .map(|f| (f.builds.max_image_size, f.builds.layer_compression))
                .map_err(|e| e.to_string())
        };
        use image_store::LayerCompression::{Gzip, Zstd};
        assert_eq!(parse(&[]), Ok((4 << 30, Gzip)));
        assert_eq!(
            parse(&["--max-image-size", "500M", "--layer-compression", "zstd"]),
            Ok((500 << 20, Zstd))
        );
        let bad = parse(&["--layer-compression", "lz4"]).unwrap_err();
        assert!(bad.contains("use gzip or zstd"), "{bad}");
        assert!(parse(&["--max-image-size", "4T"]).is_err());
    }

    #[test]
    fn the_platform_certificate_is_made_once_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let layout = DataLayout::new(dir.path()).unwrap();
        let first = platform_certificate(&layout, "apps.test").unwrap();
        assert_eq!(first.hosts, ["*.apps.test", "apps.test"]);
        assert!(first.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(first.key_pem.contains("PRIVATE KEY"));
        let key_mode = std::fs::metadata(layout.tls.join("apps.test.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(key_mode & 0o777, 0o600);
        let again = platform_certificate(&layout, "apps.test").unwrap();
        assert_eq!(again, first);
        let other = platform_certificate(&layout, "other.test").unwrap();
        assert_ne!(other.cert_pem, first.cert_pem);
        for bad in ["../etc", "", "Apps.Test", "a/b"] {
            assert!(platform_certificate(&layout, bad).is_err(), "{bad}");
        }
    }
}
