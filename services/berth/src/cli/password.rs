//! `berth accounts password`: reads the new dashboard password without showing it. From a terminal it asks
//! twice with echo off; otherwise it reads the first line of standard input (for scripts: `printf '%s\n'
//! "$PW" | berth accounts password`). The password never goes into arguments or the environment.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Context};
use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};

/// Turns the terminal's echo off until dropped.
struct NoEcho(nix::sys::termios::Termios);

impl NoEcho {
    fn new() -> anyhow::Result<Self> {
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).context("reading the terminal's settings")?;
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        tcsetattr(&stdin, SetArg::TCSANOW, &quiet).context("turning the terminal's echo off")?;
        Ok(Self(saved))
    }
}

impl Drop for NoEcho {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.0);
    }
}

fn read_line(prompt: Option<&str>) -> anyhow::Result<String> {
    if let Some(prompt) = prompt {
        eprint!("{prompt}");
        std::io::stderr().flush().ok();
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password")?;
    if prompt.is_some() {
        eprintln!();
    }
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// The new password, as typed twice on a terminal or given on standard input.
pub fn read_new_password() -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        return read_line(None);
    }
    let _quiet = NoEcho::new()?;
    let first = read_line(Some("New dashboard password: "))?;
    let second = read_line(Some("The same again: "))?;
    if first != second {
        bail!("the two passwords differ; nothing was changed");
    }
    Ok(first)
}
