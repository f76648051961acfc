//! Running one buildpack script (`bin/detect`, `bin/compile`, `bin/release`) in the build container: the
//! stack as the read-only base, one writable overlay upper dir shared by all steps of a build (as Heroku's
//! one build dyno), the app at `/app`, the cache at `/cache`, the config vars at `/env` (read-only) and the
//! buildpacks at `/buildpacks/N`.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use build_sandbox::BuildSandbox;
use container::{BindMount, ContainerSpec, Output};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{ClassicError, ClassicRun};

pub const BUILD_DIR: &str = "/app";
pub const CACHE_DIR: &str = "/cache";
pub const ENV_DIR: &str = "/env";

/// Lines longer than this are cut (a script printing a megabyte without a newline must not hold it all).
const MAX_LINE: usize = 4096;
/// How much of a step's standard output is kept when it is captured (`bin/detect`, `bin/release`).
const MAX_CAPTURE: usize = 1024 * 1024;
const TAIL_LINES: usize = 20;

/// Where a buildpack is in the build container.
pub fn buildpack_dir(index: usize) -> String {
    format!("/buildpacks/{index}")
}

/// How a script's output line is shown in the push: `----->` step lines and lines already indented by the
/// buildpack's own convention (7 spaces) as they are, anything else indented under the step.
pub fn push_line(line: &str) -> String {
    if line.starts_with("----->") || line.starts_with("       ") || line.is_empty() {
        line.to_owned()
    } else {
        format!("       {line}")
    }
}

/// The scripts of the classic contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    Detect,
    Compile,
    Release,
}

impl Script {
    pub const fn path(self) -> &'static str {
        match self {
            Self::Detect => "bin/detect",
            Self::Compile => "bin/compile",
            Self::Release => "bin/release",
        }
    }

    fn args(self) -> &'static [&'static str] {
        match self {
            Self::Detect | Self::Release => &[BUILD_DIR],
            Self::Compile => &[BUILD_DIR, CACHE_DIR, ENV_DIR],
        }
    }

    /// `bin/detect` prints the buildpack's name and `bin/release` its YAML; `bin/compile` talks to the user.
    fn captures_stdout(self) -> bool {
        !matches!(self, Self::Compile)
    }
}

pub struct StepOutcome {
    pub status: ExitStatus,
    /// Captured standard output (empty unless asked for).
    pub stdout: String,
    /// The last lines shown in the log, for error messages.
    pub tail: Vec<String>,
}

/// The build container's fixed parts, shared by every step of one build.
pub struct Sandbox<'a> {
    pub run: &'a ClassicRun,
    /// The writable copy of the app.
    pub app_dir: &'a Path,
    pub env_dir: &'a Path,
    /// `scratch/buildpacks`, holding one directory per buildpack.
    pub buildpacks_dir: &'a Path,
    pub scratch: &'a Path,
    pub deadline: Instant,
    /// `export` files of the buildpacks that ran, in order (container paths), sourced before each later step.
    pub exports: Vec<String>,
    /// The build's cgroup and network.
    pub build: &'a BuildSandbox,
}

impl Sandbox<'_> {
    /// Runs `script` of buildpack number `buildpack` after sourcing the exports so far. Its standard error,
    /// and its standard output unless the script's output is read ([`Script::captures_stdout`]), go to `log`
    /// through [`push_line`].
    pub async fn run(
        &self,
        buildpack: usize,
        script: Script,
        log: &mpsc::Sender<String>,
    ) -> Result<StepOutcome, ClassicError> {
        let mut argv = vec![format!("{}/{}", buildpack_dir(buildpack), script.path())];
        argv.extend(script.args().iter().map(|a| (*a).to_owned()));
        let capture_stdout = script.captures_stdout();
        // `sh -c SCRIPT NAME ARGS...`: the arguments are never parsed by the shell.
        let mut wrapper = String::new();
        for export in &self.exports {
            wrapper.push_str(&format!(". {export}\n"));
        }
        // Output the user reads keeps its order: standard error joins standard output in one pipe (two pipes
        // read apart would interleave at random).
        wrapper.push_str(if capture_stdout {
            "exec \"$@\"\n"
        } else {
            "exec \"$@\" 2>&1\n"
        });
        let mut full_argv = vec![
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            wrapper,
            "buildpack".to_owned(),
        ];
        full_argv.extend(argv);

        let spec = self.spec(full_argv);
        let oom_before = self.build.oom_kills();
        let mut container = container::spawn(&self.run.init_program, &spec, Output::Piped)
            .await
            .map_err(ClassicError::Container)?;
        let (tx, mut rx) = mpsc::channel::<String>(64);
        let stdout = container.child.stdout.take();
        let captured = if capture_stdout {
            Some(tokio::spawn(capture(stdout)))
        } else {
            forward_lines(stdout, tx.clone());
            None
        };
        forward_lines(container.child.stderr.take(), tx);

        let mut tail: VecDeque<String> = VecDeque::with_capacity(TAIL_LINES);
        let copy_output = async {
            while let Some(line) = rx.recv().await {
                let _ = log.send(push_line(&line)).await;
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        };
        let timeout = || ClassicError::Timeout {
            step: script.path(),
            seconds: self.run.timeout.as_secs(),
        };
        let finished = async {
            copy_output.await;
            container.wait().await
        };
        let finished = tokio::time::timeout_at(self.deadline, finished).await;
        let status = match finished {
            Ok(status) => status.map_err(ClassicError::Container)?,
            Err(_) => {
                let _ = container.signal(nix::sys::signal::Signal::SIGKILL);
                let _ = container.wait().await;
                return Err(timeout());
            }
        };
        if !status.success() {
            if let Some(limit) = self.build.out_of_memory(script.path(), oom_before) {
                return Err(ClassicError::Limit(limit));
            }
        }
        let stdout = match captured {
            Some(task) => task.await.map_err(|e| ClassicError::Task(e.to_string()))?,
            None => String::new(),
        };
        Ok(StepOutcome {
            status,
            stdout,
            tail: tail.into(),
        })
    }

    fn spec(&self, argv: Vec<String>) -> ContainerSpec {
        let mut binds = vec![
            bind(self.app_dir, BUILD_DIR, false),
            bind(&self.run.cache_dir, CACHE_DIR, false),
            bind(self.env_dir, ENV_DIR, true),
            // Writable: a buildpack writes its `export` file into its own directory.
            bind(self.buildpacks_dir, "/buildpacks", false),
        ];
        // Compile steps download things; the stack's own resolv.conf is whatever debootstrap's host had.
        if let Some(resolv_conf) = self.build.resolv_conf() {
            binds.push(bind(resolv_conf, "/etc/resolv.conf", true));
        }
        if let Some(bundle) = &self.run.ca_bundle {
            binds.push(bind(bundle, "/etc/ssl/certs/ca-certificates.crt", true));
        }
        let mut env: BTreeMap<String, String> = [
            (
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            ),
            ("HOME", BUILD_DIR),
            ("LANG", "C.UTF-8"),
            ("STACK", self.run.stack_name.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        if let Some(version) = &self.run.source_version {
            env.insert("SOURCE_VERSION".to_owned(), version.clone());
        }
        ContainerSpec {
            hostname: "build".to_owned(),
            layers: vec![self.run.stack_rootfs.clone()],
            upper_dir: self.scratch.join("upper"),
            work_dir: self.scratch.join("work"),
            rootfs: self.scratch.join("rootfs"),
            binds,
            network: self.build.network(),
            cwd: PathBuf::from(BUILD_DIR),
            env,
            argv,
            cgroup_dirs: self.build.cgroup_dirs(),
            security: container::Security::default(),
            user_namespace: self.run.user_namespace,
        }
    }
}

fn bind(source: &Path, target: &str, read_only: bool) -> BindMount {
    BindMount {
        source: source.to_owned(),
        target: PathBuf::from(target),
        read_only,
    }
}

/// Sends `stream`'s lines to `tx`, decoding bytes that are not UTF-8 lossily and cutting over-long lines, and
/// always reading to the end (a script whose pipe is not drained would block).
fn forward_lines(stream: Option<impl AsyncRead + Unpin + Send + 'static>, tx: mpsc::Sender<String>) {
    let Some(mut stream) = stream else { return };
    tokio::spawn(async move {
        let mut buf = [0u8; 8192];
        let mut line: Vec<u8> = Vec::new();
        let mut cut = false;
        let send = |line: &mut Vec<u8>| {
            let text = String::from_utf8_lossy(line).trim_end_matches('\r').to_owned();
            line.clear();
            let tx = tx.clone();
            async move {
                let _ = tx.send(text).await;
            }
        };
        loop {
            let n = match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            for &byte in &buf[..n] {
                if byte == b'\n' {
                    if cut {
                        cut = false;
                        line.clear();
                    } else {
                        send(&mut line).await;
                    }
                } else if !cut {
                    line.push(byte);
                    if line.len() == MAX_LINE {
                        line.extend_from_slice(b" [line cut]");
                        send(&mut line).await;
                        cut = true;
                    }
                }
            }
        }
        if !line.is_empty() && !cut {
            send(&mut line).await;
        }
    });
}

/// Reads `stream` to its end, keeping the first [`MAX_CAPTURE`] bytes.
async fn capture(stream: Option<impl AsyncRead + Unpin>) -> String {
    let Some(mut stream) = stream else {
        return String::new();
    };
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let room = MAX_CAPTURE.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
    String::from_utf8_lossy(&kept).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_lines() {
        let cases = [
            ("-----> Installing things", "-----> Installing things"),
            ("       already indented", "       already indented"),
            ("plain output", "       plain output"),
            ("  two spaces", "         two spaces"),
            ("", ""),
        ];
        for (line, shown) in cases {
            assert_eq!(push_line(line), shown, "{line:?}");
        }
    }

    #[tokio::test]
    async fn lines_are_decoded_and_cut() {
        let mut input = b"one\r\nnot utf8 \xff\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        input.extend_from_slice(b"\nlast without newline");
        let (tx, mut rx) = mpsc::channel(8);
        forward_lines(Some(std::io::Cursor::new(input)), tx);
        let mut lines = Vec::new();
        while let Some(line) = rx.recv().await {
            lines.push(line);
        }
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert_eq!(lines[0], "one");
        assert_eq!(lines[1], "not utf8 \u{fffd}");
        assert_eq!(lines[2].len(), MAX_LINE + " [line cut]".len());
        assert_eq!(lines[3], "last without newline");
    }
}
