//! The client verbs (`berth apps`, `berth scale`, ...): thin HTTP calls to the API, printed for people.
//!
//! Each verb takes `--api URL` (`BERTH_API`) and `--token T` (`BERTH_TOKEN`, or a file named by
//! `BERTH_TOKEN_FILE`). API errors print `error: MESSAGE` on stderr and exit 1. Request and response bodies
//! are `api_contract`'s types, shared with the server.

mod access;
mod admin;
mod client;
mod image_deploy;
mod images;
mod lifecycle;
mod logs;
mod output;
mod password;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use api_contract::{
    AccountCreate, AccountCreated, AccountInfo, AppCreate, AppInfo, AppUpdate, CertificateCreate,
    CertificateInfo, DomainCreate, DomainInfo, FormationInfo, InstanceInfo, ReleaseInfo, RouterTokenCreated,
    ScaleRequest,
};
use clap::{Args, Subcommand};
use reqwest::Method;

use client::Client;

/// Where the API is and who is calling; accepted by every client verb (before or after its subcommand).
#[derive(Debug, Args)]
pub struct ApiArgs {
    /// The Berth API's URL.
    #[arg(
        long,
        env = "BERTH_API",
        default_value = "http://127.0.0.1:7070",
        global = true
    )]
    api: String,
    /// Your API token.
    #[arg(long, env = "BERTH_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// A file holding your API token (such as the server's DATA_DIR/admin.token); read when no --token.
    #[arg(long, env = "BERTH_TOKEN_FILE", global = true)]
    token_file: Option<PathBuf>,
}

impl ApiArgs {
    fn token(&self) -> anyhow::Result<String> {
        if let Some(token) = self.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            return Ok(token.to_owned());
        }
        if let Some(path) = &self.token_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the API token from {}", path.display()))?;
            let token = text.trim();
            if token.is_empty() {
                bail!("the token file {} is empty", path.display());
            }
            return Ok(token.to_owned());
        }
        bail!(
            "no API token: pass --token, or set BERTH_TOKEN or BERTH_TOKEN_FILE \
             (the admin's token is in the server's DATA_DIR/admin.token)"
        )
    }
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// List your apps, or create or delete one.
    Apps {
        #[command(subcommand)]
        command: Option<AppsCommand>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Set how many instances of each process type run, e.g. `berth scale web=2 worker=1 -a NAME`.
    Scale {
        /// TYPE=N pairs, N from 0 to 100.
        #[arg(required = true, value_name = "TYPE=N", value_parser = parse_scale)]
        changes: Vec<(String, i64)>,
        /// The app.
        #[arg(short, long)]
        app: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// List an app's instances, restart them (`berth ps restart [web.1] -a NAME`), or kill a one-off
    /// (`berth ps stop run.3 -a NAME`).
    Ps {
        #[command(subcommand)]
        command: Option<PsCommand>,
        /// The app.
        #[arg(short, long, global = true)]
        app: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// List an app's releases, newest first, or show one (`berth releases info v3 -a NAME`).
    Releases {
        #[command(subcommand)]
        command: Option<ReleasesCommand>,
        /// The app.
        #[arg(short, long, global = true)]
        app: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Show an app's config vars as KEY=VALUE lines, or change them (`berth config set K=V -a NAME`). Each
    /// change makes a new release and restarts the app with it.
    Config {
        #[command(subcommand)]
        command: Option<ConfigCommand>,
        /// The app.
        #[arg(short, long, global = true)]
        app: Option<String>,
        /// Print them as a JSON object instead.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Make a new release with an earlier release's image, processes and config, and deploy it
    /// (default: the release before the current one).
    Rollback {
        /// The release to go back to, such as v3.
        #[arg(value_name = "vN", value_parser = lifecycle::parse_version)]
        version: Option<vocabulary::ReleaseVersion>,
        /// The app.
        #[arg(short, long)]
        app: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Run a command in a one-off instance of an app's current release, attached to this terminal (with a
    /// TTY when this side has one) and exiting with its code: `berth run -a NAME -- COMMAND ARGS`.
    Run {
        /// The app.
        #[arg(short, long)]
        app: String,
        /// Start it in the background and return at once; its output goes to the app's log.
        #[arg(short, long)]
        detach: bool,
        /// Its memory, such as 512M or 1G (the platform's default otherwise).
        #[arg(long, value_parser = run::parse_size)]
        size: Option<u64>,
        /// The command and its arguments (after `--`).
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            required = true,
            value_name = "COMMAND"
        )]
        command: Vec<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Show an app's log: its instances' output, the router's lines and the platform's events
    /// (`TIMESTAMP SOURCE[PROCESS]: TEXT`); `-f` keeps printing new lines as they come.
    Logs {
        /// The app.
        #[arg(short, long)]
        app: String,
        /// How many of the most recent lines to show first.
        #[arg(short = 'n', long = "num", default_value_t = 100)]
        lines: usize,
        /// Keep following: print new lines as they are written, until interrupted.
        #[arg(short, long)]
        follow: bool,
        /// Only this process (`web.1`), or every instance of a type (`web`).
        #[arg(long)]
        ps: Option<String>,
        /// Only lines from `app`, `router` or `berth`.
        #[arg(long, value_parser = ["app", "router", "berth"])]
        source: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// List an app's events (deploys, scale changes, crashes, ...), newest first.
    Events {
        /// The app.
        #[arg(short, long)]
        app: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Move an app's current release onto the current stack without rebuilding it (a new release).
    Rebase {
        /// The app.
        #[arg(short, long)]
        app: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// List an app's custom domains, or add or remove one (`berth domains add www.example.com -a NAME`).
    Domains {
        #[command(subcommand)]
        command: Option<DomainsCommand>,
        /// The app.
        #[arg(short, long, global = true)]
        app: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// List an app's TLS certificates, or add or remove one
    /// (`berth certs add --cert fullchain.pem --key privkey.pem -a NAME`).
    Certs {
        #[command(subcommand)]
        command: Option<CertsCommand>,
        /// The app.
        #[arg(short, long, global = true)]
        app: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Make tokens for routers on other machines (admin only): they can read the route stream and nothing else.
    RouterTokens {
        #[command(subcommand)]
        command: RouterTokensCommand,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// The operator's commands (admin only): nodes (`berth admin nodes drain NODE`), accounts, quotas and
    /// suspension, every account's apps, the audit log.
    Admin {
        #[command(subcommand)]
        command: admin::AdminCommand,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Create accounts (admin only); set your dashboard password.
    Accounts {
        #[command(subcommand)]
        command: AccountsCommand,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Copy an app's image to another registry
    /// (`berth images push -a NAME REGISTRY/REPO:TAG`; needs skopeo).
    Images {
        #[command(subcommand)]
        command: ImagesCommand,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Deploy an existing image from a registry instead of a git push
    /// (`berth deploy --image REGISTRY/REPO:TAG -a NAME`; the server pulls it with skopeo).
    Deploy {
        /// The app.
        #[arg(short, long)]
        app: String,
        #[command(flatten)]
        image: ImageArgs,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// List who may deploy an app (owner and collaborators), or add or remove a collaborator
    /// (`berth access add ACCOUNT -a NAME`).
    Access {
        #[command(subcommand)]
        command: Option<access::AccessCommand>,
        /// The app.
        #[arg(short, long, global = true)]
        app: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// List your API tokens, create one (`--read-only` for GET-only), or revoke one.
    Tokens {
        #[command(subcommand)]
        command: Option<access::TokensCommand>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Show which account your token belongs to.
    Whoami {
        #[command(flatten)]
        api: ApiArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum AppsCommand {
    /// Create an app; prints its URL and git remote. With --image, deploys that image at once.
    Create {
        name: String,
        #[command(flatten)]
        image: ImageArgs,
        /// Place instances only on nodes with this label (`region=eu`); repeat for more (all must match).
        #[arg(long = "constraint", value_name = "KEY=VALUE")]
        constraints: Vec<String>,
    },
    /// Delete an app, its releases and its instances.
    Delete { name: String },
    /// Show one app.
    Info { name: String },
    /// Stop every instance of an app; its formation is kept for `berth apps start`.
    Stop { name: String },
    /// Run a stopped app's formation again.
    Start { name: String },
    /// Change how routers serve an app (`berth apps update NAME ...` or `berth apps update -a NAME ...`).
    Update {
        #[arg(required_unless_present = "app", conflicts_with = "app")]
        name: Option<String>,
        /// The app (instead of NAME).
        #[arg(short, long)]
        app: Option<String>,
        /// Answer plain HTTP with a redirect to HTTPS.
        #[arg(long, value_name = "on|off", value_parser = parse_on_off)]
        redirect_https: Option<bool>,
        /// Seconds a backend may take to send its response head (1 to 300), or `default` for the routers'
        /// default (30).
        #[arg(long, value_name = "SECONDS|default", value_parser = parse_timeout)]
        first_byte_timeout: Option<Timeout>,
        /// How long a whole build may take (1m to 2h: `30m`, `1h`, `90s`, or seconds), or `default` (15m).
        #[arg(long, value_name = "DURATION|default", value_parser = parse_duration)]
        build_timeout: Option<Timeout>,
        /// How long a stopping instance gets between SIGTERM and SIGKILL (1s to 10m: `45s`, `2m`), or
        /// `default` (30s). Applies to running instances too.
        #[arg(long, value_name = "DURATION|default", value_parser = parse_duration)]
        stop_grace: Option<Timeout>,
        #[command(flatten)]
        deploys: DeployArgs,
        #[command(flatten)]
        placement: PlacementArgs,
    },
}

/// Where an app's instances may run (`berth apps update`).
#[derive(Debug, Args, Default, PartialEq, Eq)]
pub struct PlacementArgs {
    /// Place instances only on nodes with this label (`region=eu`); repeat for more. Replaces the app's
    /// constraints; instances already running elsewhere keep running.
    #[arg(
        long = "constraint",
        value_name = "KEY=VALUE",
        conflicts_with = "no_constraints"
    )]
    constraints: Vec<String>,
    /// Remove the app's constraints: instances may run on any node.
    #[arg(long)]
    no_constraints: bool,
}

impl PlacementArgs {
    /// Fills the constraints of an API update; a bad label is refused here, before any request.
    fn apply(self, update: &mut AppUpdate) -> anyhow::Result<()> {
        if self.no_constraints {
            update.constraints = Some(std::collections::BTreeMap::new());
        } else if !self.constraints.is_empty() {
            update.constraints = Some(vocabulary::Label::parse_all(&self.constraints)?);
        }
        Ok(())
    }
}

/// How deploys of an app go (`berth apps update`).
#[derive(Debug, Args, Default, PartialEq, Eq)]
pub struct DeployArgs {
    /// How long a web instance has to listen on PORT and answer before it is stopped with R10 (1s to 10m), or
    /// `default` (60s).
    #[arg(long, value_name = "DURATION|default", value_parser = parse_duration)]
    boot_timeout: Option<Timeout>,
    /// How long a deploy waits for its new instances before rolling back (1s to 1h), or `default` (2m).
    #[arg(long, value_name = "DURATION|default", value_parser = parse_duration)]
    deploy_timeout: Option<Timeout>,
    /// A path such as /health that web instances must answer with 2xx before they get traffic (wins over
    /// app.json's check), or `none` to clear it.
    #[arg(long, value_name = "PATH|none")]
    health_check: Option<String>,
    /// rolling (one new instance at a time, an old one stopped as each comes up) or all-at-once (default).
    #[arg(long, value_name = "rolling|all-at-once")]
    deploy_strategy: Option<String>,
}

impl DeployArgs {
    /// Fills the deploy fields of an API update.
    fn apply(self, update: &mut AppUpdate) {
        update.boot_timeout = self.boot_timeout.map(Timeout::to_api);
        update.deploy_timeout = self.deploy_timeout.map(Timeout::to_api);
        update.health_check = self.health_check.map(|p| (p != "none").then_some(p));
        update.deploy_strategy = self.deploy_strategy;
    }
}

/// An image to deploy (`--image REF`), for `apps create` and `deploy`.
#[derive(Debug, Args)]
pub struct ImageArgs {
    /// REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:HEX, such as registry.example.com/team/shop:v3.
    #[arg(long, value_name = "REF")]
    image: Option<String>,
    /// Require HTTPS with a valid certificate at the image's registry (false for a plain-HTTP registry).
    #[arg(long, value_name = "true|false", default_value_t = true, action = clap::ArgAction::Set)]
    src_tls_verify: bool,
}

/// A timeout setting as typed: seconds, or back to the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    Seconds(i64),
    Default,
}

impl Timeout {
    /// The API's form: `null` resets.
    fn to_api(self) -> Option<i64> {
        match self {
            Timeout::Seconds(secs) => Some(secs),
            Timeout::Default => None,
        }
    }
}

/// Parses `on` / `off`.
fn parse_on_off(arg: &str) -> Result<bool, String> {
    match arg {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        _ => Err(format!("expected on or off, got {arg:?}")),
    }
}

#[derive(Debug, Subcommand)]
pub enum PsCommand {
    /// Replace instances with fresh ones of the same release: one (`web.1`), a process type (`web`) or all.
    /// Each fresh instance starts before the one it replaces stops.
    Restart {
        /// `web.1` or `web` (default: every instance).
        instance: Option<String>,
    },
    /// Kill a one-off (`berth ps stop run.3`): a detached `berth run` or a release phase. Formation instances
    /// are scaled (`berth scale`) or restarted instead.
    Stop {
        /// The one-off, as `berth ps` lists it: `run.3`.
        one_off: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReleasesCommand {
    /// Show one release: kind, image, processes and config vars.
    Info {
        /// The release, such as v3.
        #[arg(value_name = "vN", value_parser = lifecycle::parse_version)]
        version: vocabulary::ReleaseVersion,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Set config vars: `berth config set GREETING=hello LEVEL=3 -a NAME` (one new release).
    Set {
        #[arg(required = true, value_name = "NAME=VALUE", value_parser = lifecycle::parse_assignment)]
        assignments: Vec<(String, String)>,
    },
    /// Remove config vars: `berth config unset GREETING -a NAME` (one new release).
    Unset {
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
    /// Print one config var's value exactly as set.
    Get { name: String },
}

#[derive(Debug, Subcommand)]
pub enum DomainsCommand {
    /// Serve the app at a domain too: `shop.example.com`, or `*.example.com` for every name below it. Point
    /// the domain's DNS at the router.
    Add { domain: String },
    /// Stop serving the app at a domain.
    Remove { domain: String },
}

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Upload a certificate for some of the app's custom domains; routers serve it by SNI at once.
    Add {
        /// The PEM certificate chain, leaf first.
        #[arg(long)]
        cert: PathBuf,
        /// The PEM private key.
        #[arg(long)]
        key: PathBuf,
    },
    /// Remove a certificate by its ID (see `berth certs -a NAME`).
    Remove { id: String },
}

#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// Push a release's image (the current one unless --release) to a registry, digests unchanged. The
    /// destination's credentials come from --dest-creds, or else skopeo's own (`skopeo login REGISTRY`).
    Push {
        /// The app.
        #[arg(short, long)]
        app: String,
        /// The release to push, such as v3 (default: the current release).
        #[arg(long, value_name = "vN")]
        release: Option<String>,
        /// Where to: REGISTRY/REPO:TAG, such as registry.example.com/team/shop:v3.
        destination: String,
        /// Require HTTPS with a valid certificate at the destination (false for a plain-HTTP registry).
        #[arg(long, value_name = "true|false", default_value_t = true, action = clap::ArgAction::Set)]
        dest_tls_verify: bool,
        /// USER:PASSWORD for the destination registry.
        #[arg(long, env = "BERTH_DEST_CREDS", hide_env_values = true)]
        dest_creds: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RouterTokensCommand {
    /// Create a router token; prints it alone on the last line (for `berth router --api URL --token T`).
    Create,
}

#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Create an account; prints its API token alone on the last line.
    Create { name: String },
    /// Set your account's password for the web dashboard (read from the terminal without echo, or the first
    /// line of standard input); at least 12 characters.
    Password,
}

/// An app name as typed, checked here so that it can go into a URL path as it is.
fn app_name(name: &str) -> anyhow::Result<vocabulary::AppName> {
    Ok(vocabulary::AppName::new(name)?)
}

/// The `-a NAME` a verb needs, checked.
fn required_app(app: Option<String>) -> anyhow::Result<vocabulary::AppName> {
    match app {
        Some(app) => app_name(&app),
        None => bail!("which app? pass -a NAME"),
    }
}

/// Parses `90` or `default`; the range is the server's to check.
fn parse_timeout(arg: &str) -> Result<Timeout, String> {
    if arg == "default" {
        return Ok(Timeout::Default);
    }
    arg.parse()
        .map(Timeout::Seconds)
        .map_err(|_| format!("expected a number of seconds or default, got {arg:?}"))
}

/// Parses `30m`, `2h`, `90s`, `900` (seconds) or `default`.
fn parse_duration(arg: &str) -> Result<Timeout, String> {
    if arg == "default" {
        return Ok(Timeout::Default);
    }
    let (number, unit) = match arg.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => arg.split_at(at),
        None => (arg, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        _ => 0,
    };
    match number.parse::<i64>() {
        Ok(n) if scale > 0 => Ok(Timeout::Seconds(n.saturating_mul(scale))),
        _ => Err(format!(
            "expected a duration such as 30m, 1h or 90s, or default, got {arg:?}"
        )),
    }
}

/// Parses `web=2`.
fn parse_scale(arg: &str) -> Result<(String, i64), String> {
    let (process_type, quantity) = arg
        .split_once('=')
        .ok_or_else(|| format!("expected TYPE=N such as web=2, got {arg:?}"))?;
    if process_type.is_empty() {
        return Err(format!("expected TYPE=N such as web=2, got {arg:?}"));
    }
    let quantity = quantity
        .parse()
        .map_err(|_| format!("{quantity:?} is not a number in {arg:?}"))?;
    Ok((process_type.to_owned(), quantity))
}

pub fn run(command: ClientCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: starting the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = match command {
        // The one verb whose exit code is someone else's: the command's.
        ClientCommand::Run {
            app,
            detach,
            size,
            command,
            api,
        } => runtime.block_on(async {
            let client = Client::new(&api.api, api.token()?)?;
            let request = run::Run {
                app: app_name(&app)?,
                command,
                detach,
                memory_mib: size,
            };
            run::run(&client, request).await
        }),
        command => runtime.block_on(execute(command)).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: ClientCommand) -> anyhow::Result<()> {
    match command {
        ClientCommand::Apps { command, api } => {
            let client = Client::new(&api.api, api.token()?)?;
            match command {
                None => {
                    let apps: Vec<AppInfo> = client.get("/v1/apps").await?;
                    print!("{}", output::apps(&apps));
                }
                Some(AppsCommand::Create {
                    name,
                    image,
                    constraints,
                }) => {
                    // A bad reference or label is refused before the app exists.
                    if let Some(reference) = &image.image {
                        controller::ImageRef::parse(reference).map_err(anyhow::Error::msg)?;
                    }
                    let constraints = vocabulary::Label::parse_all(&constraints)?;
                    let create = AppCreate { name, constraints };
                    let app: AppInfo = client.send(Method::POST, "/v1/apps", &create).await?;
                    print!(
                        "{}",
                        output::app_created(&app, &client.git_url(app.name.as_str()))
                    );
                    if let Some(reference) = &image.image {
                        image_deploy::deploy_image(&client, &app.name, reference, image.src_tls_verify)
                            .await?;
                    }
                }
                Some(AppsCommand::Delete { name }) => {
                    client.delete(&format!("/v1/apps/{}", app_name(&name)?)).await?;
                    println!("Deleted app {name}, its releases and its instances.");
                }
                Some(AppsCommand::Update {
                    name,
                    app,
                    redirect_https,
                    first_byte_timeout,
                    build_timeout,
                    stop_grace,
                    deploys,
                    placement,
                }) => {
                    let name = required_app(name.or(app))?;
                    let mut update = AppUpdate {
                        redirect_https,
                        first_byte_timeout: first_byte_timeout.map(Timeout::to_api),
                        build_timeout: build_timeout.map(Timeout::to_api),
                        stop_grace: stop_grace.map(Timeout::to_api),
                        ..AppUpdate::default()
                    };
                    deploys.apply(&mut update);
                    placement.apply(&mut update)?;
                    if update == AppUpdate::default() {
                        bail!(
                            "nothing to change: pass --redirect-https on|off, --first-byte-timeout \
                             SECONDS|default, --build-timeout DURATION|default, --stop-grace \
                             DURATION|default, --boot-timeout DURATION|default, --deploy-timeout \
                             DURATION|default, --health-check PATH|none, --deploy-strategy \
                             rolling|all-at-once and/or --constraint KEY=VALUE|--no-constraints"
                        );
                    }
                    let path = format!("/v1/apps/{name}");
                    let app: AppInfo = client.send(Method::PATCH, &path, &update).await?;
                    print!("{}", output::app_info(&app, &client.git_url(app.name.as_str())));
                }
                Some(AppsCommand::Info { name }) => {
                    let app: AppInfo = client.get(&format!("/v1/apps/{}", app_name(&name)?)).await?;
                    print!("{}", output::app_info(&app, &client.git_url(app.name.as_str())));
                }
                Some(AppsCommand::Stop { name }) => {
                    lifecycle::act(&client, &app_name(&name)?, "stop", None).await?;
                }
                Some(AppsCommand::Start { name }) => {
                    lifecycle::act(&client, &app_name(&name)?, "start", None).await?;
                }
            }
        }
        ClientCommand::Scale { changes, app, api } => {
            let client = Client::new(&api.api, api.token()?)?;
            let request = ScaleRequest(changes.into_iter().collect());
            let path = format!("/v1/apps/{}/formation", app_name(&app)?);
            let formation: Vec<FormationInfo> = client.send(Method::PATCH, &path, &request).await?;
            println!("Scaled {app}: {}", output::formation(&formation));
        }
        ClientCommand::Ps { command, app, api } => {
            let app = required_app(app)?;
            let client = Client::new(&api.api, api.token()?)?;
            match command {
                None => {
                    let instances: Vec<InstanceInfo> =
                        client.get(&format!("/v1/apps/{app}/instances")).await?;
                    print!(
                        "{}",
                        output::instances(app.as_str(), &instances, chrono::Utc::now())
                    );
                    // One-offs running now, apart from the formation (an older server has no list).
                    let runs: Vec<api_contract::RunInfo> = client
                        .get(&format!("/v1/apps/{app}/runs"))
                        .await
                        .unwrap_or_default();
                    print!("{}", output::one_offs(&runs, chrono::Utc::now()));
                }
                Some(PsCommand::Restart { instance }) => {
                    lifecycle::act(&client, &app, "restart", instance).await?;
                }
                Some(PsCommand::Stop { one_off }) => {
                    if !one_off.starts_with("run.") && !one_off.starts_with("release.") {
                        anyhow::bail!(
                            "{one_off} is not a one-off: `berth ps stop` kills `run.N` and `release.N`; \
                             scale the formation with `berth scale` or replace an instance with `berth ps restart`"
                        );
                    }
                    client.delete(&format!("/v1/apps/{app}/runs/{one_off}")).await?;
                    println!("Stopped {one_off} of {app}");
                }
            }
        }
        ClientCommand::Releases { command, app, api } => {
            let app = required_app(app)?;
            let client = Client::new(&api.api, api.token()?)?;
            match command {
                None => {
                    let releases: Vec<ReleaseInfo> = client.get(&format!("/v1/apps/{app}/releases")).await?;
                    print!("{}", output::releases(app.as_str(), &releases));
                }
                Some(ReleasesCommand::Info { version }) => {
                    lifecycle::release_info(&client, &app, version).await?;
                }
            }
        }
        ClientCommand::Config {
            command,
            app,
            json,
            api,
        } => {
            let app = required_app(app)?;
            let client = Client::new(&api.api, api.token()?)?;
            match command {
                None => lifecycle::show_config(&client, &app, json).await?,
                Some(ConfigCommand::Get { name }) => lifecycle::get_config(&client, &app, &name).await?,
                Some(ConfigCommand::Set { assignments }) => {
                    let changes = assignments.into_iter().map(|(k, v)| (k, Some(v))).collect();
                    lifecycle::change_config(&client, &app, changes).await?;
                }
                Some(ConfigCommand::Unset { names }) => {
                    let changes = names.into_iter().map(|k| (k, None)).collect();
                    lifecycle::change_config(&client, &app, changes).await?;
                }
            }
        }
        ClientCommand::Rollback { version, app, api } => {
            let client = Client::new(&api.api, api.token()?)?;
            lifecycle::rollback(&client, &app_name(&app)?, version).await?;
        }
        ClientCommand::Rebase { app, api } => rebase(&app, &api).await?,
        ClientCommand::Logs {
            app,
            lines,
            follow,
            ps,
            source,
            api,
        } => {
            let client = Client::new(&api.api, api.token()?)?;
            let request = logs::LogsRequest {
                lines,
                follow,
                ps,
                source,
            };
            logs::logs(&client, &app_name(&app)?, &request).await?;
        }
        ClientCommand::Events { app, api } => {
            let client = Client::new(&api.api, api.token()?)?;
            let events: Vec<api_contract::EventInfo> = client
                .get(&format!("/v1/apps/{}/events", app_name(&app)?))
                .await?;
            print!("{}", logs::events(&events));
        }
        ClientCommand::Domains { command, app, api } => {
            let app = required_app(app)?;
            let client = Client::new(&api.api, api.token()?)?;
            let path = format!("/v1/apps/{app}/domains");
            match command {
                None => {
                    let domains: Vec<DomainInfo> = client.get(&path).await?;
                    print!("{}", output::domains(app.as_str(), &domains));
                }
                Some(DomainsCommand::Add { domain }) => {
                    let added: DomainInfo = client
                        .send(Method::POST, &path, &DomainCreate { name: domain })
                        .await?;
                    println!("Added {} to {app}. Point its DNS at the router.", added.name);
                }
                Some(DomainsCommand::Remove { domain }) => {
                    let domain = vocabulary::DomainName::from_input(&domain)?;
                    client.delete(&format!("{path}/{domain}")).await?;
                    println!("Removed {domain} from {app}.");
                }
            }
        }
        ClientCommand::Certs { command, app, api } => {
            let app = required_app(app)?;
            let client = Client::new(&api.api, api.token()?)?;
            let path = format!("/v1/apps/{app}/certificates");
            match command {
                None => {
                    let certificates: Vec<CertificateInfo> = client.get(&path).await?;
                    print!("{}", output::certificates(app.as_str(), &certificates));
                }
                Some(CertsCommand::Add { cert, key }) => {
                    let read = |path: &PathBuf, what: &str| {
                        std::fs::read_to_string(path)
                            .with_context(|| format!("reading the {what} from {}", path.display()))
                    };
                    let body = CertificateCreate {
                        cert_pem: read(&cert, "certificate")?,
                        key_pem: read(&key, "private key")?,
                    };
                    let added: CertificateInfo = client.send(Method::POST, &path, &body).await?;
                    println!(
                        "Added certificate {} to {app} for {} (expires {}).",
                        added.id,
                        added.hosts.join(", "),
                        added.not_after.format("%Y-%m-%d")
                    );
                }
                Some(CertsCommand::Remove { id }) => {
                    let id: vocabulary::CertificateId = id
                        .parse()
                        .map_err(|_| anyhow::anyhow!("{id:?} is not a certificate ID"))?;
                    client.delete(&format!("{path}/{id}")).await?;
                    println!("Removed certificate {id} from {app}.");
                }
            }
        }
        ClientCommand::Admin { command, api } => {
            let client = Client::new(&api.api, api.token()?)?;
            admin::execute(&client, command).await?;
        }
        ClientCommand::RouterTokens {
            command: RouterTokensCommand::Create,
            api,
        } => {
            let client = Client::new(&api.api, api.token()?)?;
            let created: RouterTokenCreated = client.send(Method::POST, "/v1/router-tokens", &()).await?;
            println!("Created a router token (it can only read routes). Shown only this once:");
            println!("{}", created.token);
        }
        ClientCommand::Accounts {
            command: AccountsCommand::Create { name },
            api,
        } => {
            let client = Client::new(&api.api, api.token()?)?;
            let created: AccountCreated = client
                .send(Method::POST, "/v1/accounts", &AccountCreate { name })
                .await?;
            println!(
                "Created account {}. Its API token, shown only this once:",
                created.name
            );
            println!("{}", created.token);
        }
        ClientCommand::Accounts {
            command: AccountsCommand::Password,
            api,
        } => {
            let client = Client::new(&api.api, api.token()?)?;
            let password = password::read_new_password()?;
            client
                .put("/v1/account/password", &api_contract::PasswordSet { password })
                .await?;
            println!("Password set: sign in to the dashboard with your account name and it.");
        }
        ClientCommand::Images {
            command:
                ImagesCommand::Push {
                    app,
                    release,
                    destination,
                    dest_tls_verify,
                    dest_creds,
                },
            api,
        } => {
            let token = api.token()?;
            let client = Client::new(&api.api, token.clone())?;
            let request = images::PushRequest {
                app: app_name(&app)?,
                release: release
                    .map(|r| {
                        r.parse()
                            .map_err(|_| anyhow::anyhow!("--release {r:?} is not a version such as v3"))
                    })
                    .transpose()?,
                destination: destination.clone(),
                dest_tls_verify,
                dest_creds,
            };
            // Checked before asking the API, so a typo is not reported as something else.
            images::destination(&destination)?;
            let releases: Vec<ReleaseInfo> =
                client.get(&format!("/v1/apps/{}/releases", request.app)).await?;
            let release = images::pick_release(&request.app, &releases, request.release)?;
            println!(
                "Pushing {} {} ({}) to {destination}",
                request.app, release.version, release.image_digest
            );
            let pushed = images::push(&api.api, &token, &request, release).await?;
            println!(
                "Pushed {} {} to {destination} ({pushed})",
                request.app, release.version
            );
        }
        ClientCommand::Deploy { app, image, api } => {
            let client = Client::new(&api.api, api.token()?)?;
            let app = app_name(&app)?;
            let Some(reference) = &image.image else {
                bail!("what to deploy? pass --image REGISTRY/REPO:TAG (or deploy with git push)");
            };
            image_deploy::deploy_image(&client, &app, reference, image.src_tls_verify).await?;
        }
        // Handled by `run`, which passes the command's exit code on.
        ClientCommand::Run { .. } => bail!("berth run is not run here"),
        ClientCommand::Access { command, app, api } => {
            let client = Client::new(&api.api, api.token()?)?;
            access::access(&client, &required_app(app)?, command).await?;
        }
        ClientCommand::Tokens { command, api } => {
            access::tokens(&Client::new(&api.api, api.token()?)?, command).await?;
        }
        ClientCommand::Whoami { api } => {
            let client = Client::new(&api.api, api.token()?)?;
            let me: AccountInfo = client.get("/v1/account").await?;
            println!("{}{}", me.name, if me.is_admin { " (admin)" } else { "" });
        }
    }
    Ok(())
}

/// `berth rebase -a NAME`: says which stack the app moved from and to, and the new release.
async fn rebase(app: &str, api: &ApiArgs) -> anyhow::Result<()> {
    let client = Client::new(&api.api, api.token()?)?;
    let path = format!("/v1/apps/{}/rebase", app_name(app)?);
    let info: api_contract::RebaseInfo = client.send(Method::POST, &path, &()).await?;
    println!("{}", output::rebase(app, &info));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_arguments() {
        assert_eq!(parse_scale("web=2"), Ok(("web".to_owned(), 2)));
        assert_eq!(parse_scale("worker=0"), Ok(("worker".to_owned(), 0)));
        // Range and name checks are the server's, so the message is the same for every client.
        assert_eq!(parse_scale("web=-1"), Ok(("web".to_owned(), -1)));
        for bad in ["web", "=2", "web=two", "web=", ""] {
            assert!(parse_scale(bad).is_err(), "{bad}");
        }
    }

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        command: ClientCommand,
    }

    #[test]
    fn image_deploy_arguments() {
        use clap::Parser;
        let parse = |args: &[&str]| Cli::try_parse_from([&["berth"], args].concat()).map(|c| c.command);
        type Case<'a> = (&'a [&'a str], Option<(&'a str, bool)>);
        let cases: &[Case] = &[
            (&["apps", "create", "web1"], None),
            (
                &[
                    "apps",
                    "create",
                    "web1",
                    "--image",
                    "127.0.0.1:5000/x:1",
                    "--src-tls-verify=false",
                ],
                Some(("127.0.0.1:5000/x:1", false)),
            ),
            (
                &["deploy", "--image", "reg.io/x:1", "-a", "web1"],
                Some(("reg.io/x:1", true)),
            ),
            (
                &[
                    "deploy",
                    "-a",
                    "web1",
                    "--image=reg.io/x:1",
                    "--src-tls-verify",
                    "false",
                ],
                Some(("reg.io/x:1", false)),
            ),
        ];
        for (args, expected) in cases {
            let image = match parse(args) {
                Ok(ClientCommand::Apps {
                    command: Some(AppsCommand::Create { image, .. }),
                    ..
                }) => image,
                Ok(ClientCommand::Deploy { app, image, .. }) => {
                    assert_eq!(app, "web1");
                    image
                }
                other => panic!("{args:?}: {other:?}"),
            };
            let got = image.image.as_deref().map(|i| (i, image.src_tls_verify));
            assert_eq!(got, *expected, "{args:?}");
        }
        assert!(parse(&[
            "deploy",
            "--image",
            "reg.io/x:1",
            "--src-tls-verify=maybe",
            "-a",
            "w"
        ])
        .is_err());
    }

    #[test]
    fn domains_take_the_app_before_or_after_the_subcommand() {
        use clap::Parser;
        let parse = |args: &[&str]| Cli::try_parse_from([&["berth"], args].concat()).map(|c| c.command);
        for args in [
            &["domains", "add", "www.example.com", "-a", "shop"][..],
            &["domains", "-a", "shop", "add", "www.example.com"][..],
        ] {
            match parse(args) {
                Ok(ClientCommand::Domains {
                    command: Some(DomainsCommand::Add { domain }),
                    app: Some(app),
                    ..
                }) => assert_eq!((domain.as_str(), app.as_str()), ("www.example.com", "shop")),
                other => panic!("{args:?}: {other:?}"),
            }
        }
        assert!(matches!(
            parse(&["domains", "-a", "shop"]),
            Ok(ClientCommand::Domains { command: None, .. })
        ));
        assert!(matches!(
            parse(&["domains", "remove", "x.example.com", "--app", "shop"]),
            Ok(ClientCommand::Domains {
                command: Some(DomainsCommand::Remove { .. }),
                ..
            })
        ));
        match parse(&[
            "apps",
            "update",
            "shop",
            "--redirect-https",
            "on",
            "--first-byte-timeout",
            "90",
        ]) {
            Ok(ClientCommand::Apps {
                command:
                    Some(AppsCommand::Update {
                        name: Some(name),
                        app: None,
                        redirect_https: Some(true),
                        first_byte_timeout: Some(Timeout::Seconds(90)),
                        build_timeout: None,
                        stop_grace: None,
                        ..
                    }),
                ..
            }) => assert_eq!(name, "shop"),
            other => panic!("{other:?}"),
        }
        match parse(&["apps", "update", "-a", "shop", "--first-byte-timeout", "default"]) {
            Ok(ClientCommand::Apps {
                command:
                    Some(AppsCommand::Update {
                        name: None,
                        app: Some(app),
                        redirect_https: None,
                        first_byte_timeout: Some(Timeout::Default),
                        build_timeout: None,
                        stop_grace: None,
                        ..
                    }),
                ..
            }) => assert_eq!(app, "shop"),
            other => panic!("{other:?}"),
        }
        let durations = [
            ("30m", Some(Timeout::Seconds(1800))),
            ("2h", Some(Timeout::Seconds(7200))),
            ("90s", Some(Timeout::Seconds(90))),
            ("600", Some(Timeout::Seconds(600))),
            ("5min", Some(Timeout::Seconds(300))),
            ("default", Some(Timeout::Default)),
            ("soon", None),
            ("10d", None),
            ("m", None),
        ];
        for (arg, want) in durations {
            assert_eq!(parse_duration(arg).ok(), want, "{arg}");
        }
        match parse(&["apps", "update", "shop", "--stop-grace", "45s"]) {
            Ok(ClientCommand::Apps {
                command:
                    Some(AppsCommand::Update {
                        stop_grace: Some(Timeout::Seconds(45)),
                        build_timeout: None,
                        ..
                    }),
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        match parse(&[
            "apps",
            "update",
            "shop",
            "--boot-timeout",
            "90s",
            "--deploy-timeout",
            "5m",
            "--health-check",
            "none",
            "--deploy-strategy",
            "rolling",
        ]) {
            Ok(ClientCommand::Apps {
                command: Some(AppsCommand::Update { deploys, .. }),
                ..
            }) => {
                let mut update = AppUpdate::default();
                deploys.apply(&mut update);
                assert_eq!(update.boot_timeout, Some(Some(90)));
                assert_eq!(update.deploy_timeout, Some(Some(300)));
                assert_eq!(update.health_check, Some(None));
                assert_eq!(update.deploy_strategy.as_deref(), Some("rolling"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(Timeout::Default.to_api(), None);
        assert_eq!(Timeout::Seconds(60).to_api(), Some(60));
        for bad in [
            &["apps", "update", "shop", "--redirect-https", "maybe"][..],
            &["apps", "update", "shop", "--first-byte-timeout", "soon"],
            &[
                "apps",
                "update",
                "shop",
                "-a",
                "blog",
                "--first-byte-timeout",
                "60",
            ],
            &["apps", "update", "--first-byte-timeout", "60"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let err = required_app(None).unwrap_err().to_string();
        assert!(err.contains("-a NAME"), "{err}");
    }

    fn api_args(token: Option<&str>, token_file: Option<PathBuf>) -> ApiArgs {
        ApiArgs {
            api: "http://127.0.0.1:7070".to_owned(),
            token: token.map(str::to_owned),
            token_file,
        }
    }

    #[test]
    fn token_comes_from_flag_then_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("admin.token");
        std::fs::write(&file, "berth_fromfile\n").unwrap();
        assert_eq!(
            api_args(Some("berth_flag"), Some(file.clone())).token().unwrap(),
            "berth_flag"
        );
        assert_eq!(
            api_args(None, Some(file.clone())).token().unwrap(),
            "berth_fromfile"
        );
        assert_eq!(api_args(Some(""), Some(file)).token().unwrap(), "berth_fromfile");
        let err = api_args(None, None).token().unwrap_err().to_string();
        assert!(err.contains("no API token"), "{err}");
        let err = format!(
            "{:#}",
            api_args(None, Some(dir.path().join("missing")))
                .token()
                .unwrap_err()
        );
        assert!(err.contains("missing"), "{err}");
    }
}
