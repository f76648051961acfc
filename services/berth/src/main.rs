//! `berth`: the one binary. `berth server` runs the whole platform on one machine; the other verbs are the
//! client, which talks to the API over HTTP. Configuration is read here, once (flags and `BERTH_*` env vars),
//! and passed down as typed structs: no other crate reads the environment.

mod app_logging;
mod cli;
mod logging;
mod router;
mod server;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "berth", version, about = "Berth: git push to a running, isolated app")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole platform on this machine: API, git receive, builder, scheduler, a node agent, the router.
    Server(server::ServerArgs),
    /// Run only the HTTP router.
    Router(router::RouterArgs),
    /// Manage the base root filesystem that app images are built on.
    Stack {
        #[command(subcommand)]
        command: server::StackCommand,
    },
    /// Called by git's pre-receive hook inside an app's repository (not for people).
    #[command(hide = true)]
    GitHook {
        /// The hook's name; only `pre-receive` is used.
        hook: String,
    },
    #[command(flatten)]
    Client(cli::ClientCommand),
}

fn main() -> ExitCode {
    // The container init must run before anything starts threads (the tokio runtime, tracing's writer).
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == container::INIT_ARG)
    {
        container::init::main();
    }
    let args = Args::parse();
    match args.command {
        Command::Server(server_args) => server::run(server_args),
        Command::Router(router_args) => router::run(router_args),
        Command::Stack { command } => server::run_stack(command),
        Command::GitHook { hook } => git_receive::hook::main(&hook),
        Command::Client(command) => cli::run(command),
    }
}
