//! The image being built: its layers, config and declared `ARG`s, and the metadata steps (`ENV`, `ARG`,
//! `WORKDIR`, `USER`, `EXPOSE`, `LABEL`, `CMD`, `ENTRYPOINT`) that change it. Pure, but for reading
//! `/etc/passwd` and `/etc/group` from unpacked layers for `--chown`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use image_store::{ImageConfig, ImageExtras, LayerInfo};

use crate::error::DockerfileError;
use crate::words::{expand, WordError};
use crate::{Command, Instruction, Kind};

/// The image being built, step by step.
pub(crate) struct State {
    pub(crate) layers: Vec<LayerInfo>,
    pub(crate) config: ImageConfig,
    pub(crate) extras: ImageExtras,
    /// Declared `ARG`s and their values (a build arg, else the default).
    pub(crate) args: BTreeMap<String, Option<String>>,
    /// `ARG`s declared before `FROM`: an `ARG NAME` after it without a default takes their value.
    pub(crate) global_args: BTreeMap<String, Option<String>>,
    /// Whether this Dockerfile set `CMD` (an `ENTRYPOINT` clears an inherited one, as in Docker).
    pub(crate) own_cmd: bool,
    /// The key of the last step (see `cache::step_key`).
    pub(crate) chain: String,
}

impl State {
    pub(crate) fn lookup(&self, name: &str) -> Option<String> {
        self.config
            .env
            .get(name)
            .cloned()
            .or_else(|| self.args.get(name).cloned().flatten())
    }
}

/// Carries out a metadata step and returns its text after substitution (for the cache key).
pub(crate) fn apply_metadata(
    state: &mut State,
    kind: &Kind,
    line: usize,
    escape: char,
    build_args: &BTreeMap<String, String>,
) -> Result<String, DockerfileError> {
    let bad = |message: String| DockerfileError::Instruction { line, message };
    let snapshot = |name: &str| state.lookup(name);
    let word = |w: &str| expand_word(line, w, escape, &snapshot);
    let text = match kind {
        Kind::Env(pairs) | Kind::Label(pairs) => {
            let expanded = pairs
                .iter()
                .map(|(k, v)| Ok((word(k)?, word(v)?)))
                .collect::<Result<Vec<_>, DockerfileError>>()?;
            let is_env = matches!(kind, Kind::Env(_));
            let text = format!("{} {expanded:?}", if is_env { "ENV" } else { "LABEL" });
            let target = if is_env {
                &mut state.config.env
            } else {
                &mut state.config.labels
            };
            target.extend(expanded);
            text
        }
        Kind::Arg { name, default } => {
            let default = default.as_deref().map(word).transpose()?;
            let inherited = || state.global_args.get(name).cloned().flatten();
            let value = build_args.get(name).cloned().or(default).or_else(inherited);
            // The value is in the key (so a changed build arg rebuilds) but never in the log.
            let text = format!("ARG {name}={value:?}");
            state.args.insert(name.clone(), value);
            text
        }
        Kind::Workdir(dir) => {
            let dir = absolute(&state.config.working_dir, &word(dir)?);
            state.config.working_dir = dir.clone();
            format!("WORKDIR {dir}")
        }
        Kind::User(user) => {
            let user = word(user)?;
            if user.is_empty() || user.contains(char::is_whitespace) {
                return Err(bad(format!("USER {user:?} is not a user")));
            }
            state.extras.user = user.clone();
            format!("USER {user}")
        }
        Kind::Expose(ports) => {
            let ports = ports
                .iter()
                .map(|p| exposed_port(&word(p)?).map_err(bad))
                .collect::<Result<Vec<_>, _>>()?;
            state.extras.exposed_ports.extend(ports);
            format!("EXPOSE {:?}", state.extras.exposed_ports)
        }
        Kind::Cmd(command) => {
            state.config.cmd = argv(command);
            state.own_cmd = true;
            format!("CMD {:?}", state.config.cmd)
        }
        Kind::Entrypoint(command) => {
            state.extras.entrypoint = argv(command);
            if !state.own_cmd {
                state.config.cmd.clear();
            }
            format!("ENTRYPOINT {:?}", state.extras.entrypoint)
        }
        Kind::From { .. } | Kind::Run(_) | Kind::Copy { .. } | Kind::Ignored { .. } => {
            unreachable!("not a metadata step")
        }
    };
    Ok(text)
}

pub(crate) fn declare_arg(
    instruction: &Instruction,
    escape: char,
    build_args: &BTreeMap<String, String>,
    args: &mut BTreeMap<String, Option<String>>,
) -> Result<(), DockerfileError> {
    let Kind::Arg { name, default } = &instruction.kind else {
        return Ok(());
    };
    let lookup = |n: &str| args.get(n).cloned().flatten();
    let default = default
        .as_deref()
        .map(|d| expand_word(instruction.line, d, escape, &lookup))
        .transpose()?;
    let value = build_args.get(name).cloned().or(default);
    args.insert(name.clone(), value);
    Ok(())
}

/// The content of `relative` in the image whose layers (overlay lower dirs, base first) are `dirs`.
pub(crate) fn image_file(dirs: &[PathBuf], relative: &str) -> Option<String> {
    for dir in dirs.iter().rev() {
        let path = dir.join(relative);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => return std::fs::read_to_string(&path).ok(),
            // Anything else (a whiteout, a symlink this builder does not follow) hides lower layers.
            Ok(_) => return None,
            Err(_) => continue,
        }
    }
    None
}

/// The id (third field) of `name` in a passwd or group file.
pub(crate) fn lookup_id(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&name))
        .and_then(|fields| fields.get(2)?.parse().ok())
}

/// `8080` → `8080/tcp`; `53/udp` kept; anything else refused.
fn exposed_port(port: &str) -> Result<String, String> {
    let (number, protocol) = port.split_once('/').unwrap_or((port, "tcp"));
    let protocol = protocol.to_ascii_lowercase();
    let valid =
        number.parse::<u16>().is_ok_and(|n| n > 0) && matches!(protocol.as_str(), "tcp" | "udp" | "sctp");
    if valid {
        Ok(format!("{number}/{protocol}"))
    } else {
        Err(format!("EXPOSE {port}: expected PORT or PORT/tcp, PORT/udp"))
    }
}

fn argv(command: &Command) -> Vec<String> {
    match command {
        Command::Shell(text) => vec!["/bin/sh".into(), "-c".into(), text.clone()],
        Command::Exec(argv) => argv.clone(),
    }
}

/// What a RUN step's processes see: the image's ENV, then declared ARGs that ENV does not set.
pub(crate) fn run_env(state: &State) -> BTreeMap<String, String> {
    let mut env = state.config.env.clone();
    for (name, value) in &state.args {
        if let Some(value) = value {
            env.entry(name.clone()).or_insert_with(|| value.clone());
        }
    }
    env
}

/// `path` made absolute against the working directory (`/` when none), normalized, keeping a trailing `/`.
pub(crate) fn absolute(workdir: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{}/{path}", if workdir.is_empty() { "/" } else { workdir })
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let trailing = if path.ends_with('/') && !parts.is_empty() {
        "/"
    } else {
        ""
    };
    format!("/{}{trailing}", parts.join("/"))
}

pub(crate) fn expand_word(
    line: usize,
    word: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, DockerfileError> {
    expand(word, escape, lookup).map_err(|WordError(message)| DockerfileError::Instruction { line, message })
}

/// Kept in the image store so that the node agent, which runs images, shares it.
pub use image_store::shell_command;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_made_absolute() {
        let cases: &[(&str, &str, &str)] = &[
            ("", "app", "/app"),
            ("/srv", "app", "/srv/app"),
            ("/srv", "/app/", "/app/"),
            ("/srv", ".", "/srv"),
            ("/srv", "./", "/srv/"),
            ("/srv/x", "../y", "/srv/y"),
            ("/", "../../etc", "/etc"),
        ];
        for (workdir, path, expected) in cases {
            assert_eq!(absolute(workdir, path), *expected, "{workdir} + {path}");
        }
    }

    #[test]
    fn shell_commands() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases: &[(&[&str], Option<&str>)] = &[
            (&[], None),
            (
                &["/bin/sh", "-c", "python3 app.py $PORT"],
                Some("python3 app.py $PORT"),
            ),
            (&["python3", "app.py"], Some("exec python3 app.py")),
            (&["echo", "it's $HOME", ""], Some("exec echo 'it'\\''s $HOME' ''")),
            (
                &["gunicorn", "-b", "0.0.0.0:8000"],
                Some("exec gunicorn -b 0.0.0.0:8000"),
            ),
        ];
        for (argv, expected) in cases {
            assert_eq!(shell_command(&s(argv)).as_deref(), *expected, "{argv:?}");
        }
    }

    #[test]
    fn passwd_lookup() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\nbad:x:notanumber\n";
        assert_eq!(lookup_id(passwd, "root"), Some(0));
        assert_eq!(lookup_id(passwd, "nobody"), Some(65534));
        assert_eq!(lookup_id(passwd, "nobod"), None);
        assert_eq!(lookup_id(passwd, "bad"), None);
        assert_eq!(lookup_id("", "root"), None);
    }

    #[test]
    fn ports() {
        assert_eq!(exposed_port("8080").unwrap(), "8080/tcp");
        assert_eq!(exposed_port("53/UDP").unwrap(), "53/udp");
        for bad in ["0", "70000", "http", "80/xyz", ""] {
            assert!(exposed_port(bad).is_err(), "{bad}");
        }
    }
}
