//! The pre-receive hook side (runs inside `git receive-pack`).

use std::process::ExitCode;

pub fn main(hook: &str) -> ExitCode {
    let _ = hook;
    todo!()
}
