//! The client verbs (`berth apps`, `berth scale`, ...): thin HTTP calls to the API.

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ClientCommand {}

pub fn run(command: ClientCommand) -> ExitCode {
    match command {}
}
