//! `berth server` and `berth stack`: wiring every component together in one process tree.

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, clap::Args)]
pub struct ServerArgs {}

#[derive(Debug, Subcommand)]
pub enum StackCommand {}

pub fn run(args: ServerArgs) -> ExitCode {
    let _ = (args, crate::default_data_dir());
    todo!()
}

pub fn run_stack(command: StackCommand) -> ExitCode {
    match command {}
}
