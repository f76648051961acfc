//! The pre-receive hook alone, with the same arguments as `berth git-hook pre-receive`. `berth` is what
//! servers install as the hook; this small binary lets the crate's tests run real pushes without building
//! all of `berth`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [verb, hook] if verb == "git-hook" => git_receive::hook::main(hook),
        _ => {
            eprintln!("usage: berth-git-hook git-hook pre-receive");
            ExitCode::FAILURE
        }
    }
}
