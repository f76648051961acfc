//! One instance's supervisor: sets up its layers, directories, cgroup and network, runs the container, probes
//! its port, keeps its output, restarts it with backoff when it exits, and tears everything down on stop.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_contract::OutputLine;
use agent_contract::{InstanceSpec, InstanceState, InstanceStatus};
use container::{BindMount, ContainerSpec, Network, Output};
use nix::sys::signal::Signal;
use tokio::io::AsyncRead;
use tokio::sync::watch;

use crate::{layers, output, AgentError, Event, Shared};
use cgroups::Cgroup;
use netns::{Attachment, EtcFiles};

const PROBE_INTERVAL: Duration = Duration::from_millis(100);
/// An instance up this long has its backoff reset.
const STABLE_AFTER: Duration = Duration::from_secs(60);

/// 1 s, 2 s, 4 s, ... capped at 30 s.
pub fn backoff(step: u32) -> Duration {
    Duration::from_secs(1u64 << step.min(5)).min(Duration::from_secs(30))
}

/// What an instance holds on the host, acquired step by step and released by [`Resources::release`].
#[derive(Default)]
struct Resources {
    layers: Option<(Vec<PathBuf>, image_store::ImageConfig, image_store::ImageExtras)>,
    dir: Option<PathBuf>,
    cgroup: Option<Cgroup>,
    net: Option<Attachment>,
    /// The instance's `/etc/resolv.conf` and `/etc/hosts`, bound read-only.
    etc: Option<EtcFiles>,
}

/// The instance's argv: the image's `ENTRYPOINT` + `CMD` as they are (exec form, no shell needed in the
/// image) when the release's command is exactly that command (a Dockerfile or image deploy without a
/// Procfile entry, see [`image_store::shell_command`]), else `/bin/sh -c COMMAND`.
fn argv(command: &str, entrypoint: &[String], cmd: &[String]) -> Vec<String> {
    let image: Vec<String> = entrypoint.iter().chain(cmd).cloned().collect();
    if image_store::shell_command(&image).as_deref() == Some(command) {
        image
    } else {
        vec!["/bin/sh".into(), "-c".into(), command.into()]
    }
}

enum RunEnd {
    Stopped,
    Exited { code: Option<i32>, ran_for: Duration },
}

struct Supervisor {
    shared: Arc<Shared>,
    spec: InstanceSpec,
    short: String,
    res: Resources,
}

pub async fn supervise(shared: Arc<Shared>, spec: InstanceSpec, mut stop: watch::Receiver<bool>) {
    let short = spec.id.short();
    let mut sup = Supervisor {
        shared,
        spec,
        short,
        res: Resources::default(),
    };
    sup.report(InstanceState::Starting);
    let (mut restarts, mut step) = (0u32, 0u32);
    loop {
        let (code, ran_for) = match sup.run_once(&mut stop).await {
            Ok(RunEnd::Stopped) => break,
            Ok(RunEnd::Exited { code, ran_for }) => (code, ran_for),
            Err(e) => {
                tracing::warn!(app = %sup.spec.app, instance = %sup.short, error = %e, "instance failed to start");
                (None, Duration::ZERO)
            }
        };
        if *stop.borrow() {
            break;
        }
        if ran_for >= STABLE_AFTER {
            step = 0;
        }
        let delay = backoff(step);
        step += 1;
        restarts += 1;
        tracing::info!(app = %sup.spec.app, instance = %sup.short, exit_code = ?code, restarts, delay_ms = delay.as_millis() as u64, "instance crashed");
        sup.platform_line(match code {
            Some(code) => format!(
                "Process exited with status {code}, restarting in {} s",
                delay.as_secs()
            ),
            None => format!(
                "Process ended without an exit status (killed or failed to start), restarting in {} s",
                delay.as_secs()
            ),
        });
        sup.report(InstanceState::Crashed {
            exit_code: code,
            restarts,
        });
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => break,
        }
    }
    sup.report(InstanceState::Stopping);
    sup.platform_line("Stopping".into());
    sup.release().await;
    let _ = sup.shared.events.send(Event::Gone(sup.spec.id));
}

impl Supervisor {
    fn forwarder(&self) -> output::Forwarder {
        output::Forwarder::new(
            self.shared.cfg.output.clone(),
            self.spec.app_id,
            self.spec.dyno_name(),
        )
    }

    /// A line about this instance in the app's log (`berth[web.1]: ...`).
    fn platform_line(&self, text: String) {
        self.forwarder().send(OutputLine::Platform(text));
    }

    fn report(&self, state: InstanceState) {
        let address = self
            .res
            .net
            .as_ref()
            .map(|n| SocketAddr::new(n.address.into(), self.spec.port));
        let status = InstanceStatus {
            id: self.spec.id,
            state,
            address,
            hostname: self.short.clone(),
        };
        let _ = self.shared.events.send(Event::Status(status));
    }

    async fn prepare(&mut self) -> Result<(), AgentError> {
        let cfg = &self.shared.cfg;
        if self.res.layers.is_none() {
            let _one_at_a_time = self.shared.unpack_lock.lock().await;
            let store = cfg.image_store.clone();
            let digest = self.spec.image.manifest_digest.clone();
            let layers_dir = cfg.data_dir.join("layers");
            let prepared = tokio::task::spawn_blocking(move || {
                let image = store.read_image(&digest).map_err(|source| AgentError::Image {
                    digest: digest.clone(),
                    source,
                })?;
                let extras = store
                    .read_image_extras(&digest)
                    .map_err(|source| AgentError::Image {
                        digest: digest.clone(),
                        source,
                    })?;
                let dirs = layers::ensure(&store, &layers_dir, &image.layers)?;
                Ok::<_, AgentError>((dirs, image.config, extras))
            })
            .await
            .map_err(|e| AgentError::Task(e.to_string()))??;
            self.res.layers = Some(prepared);
        }
        let dir = cfg.data_dir.join("instances").join(&self.short);
        self.res.dir = Some(dir.clone());
        // A fresh writable layer on every start, like a new dyno.
        for sub in ["upper", "work"] {
            let path = dir.join(sub);
            if path.exists() {
                tokio::fs::remove_dir_all(&path)
                    .await
                    .map_err(|source| AgentError::Io {
                        path: path.clone(),
                        source,
                    })?;
            }
        }
        for sub in ["upper", "work", "rootfs"] {
            let path = dir.join(sub);
            tokio::fs::create_dir_all(&path)
                .await
                .map_err(|source| AgentError::Io { path, source })?;
        }
        if self.res.cgroup.is_none() {
            let limits = &self.spec.limits;
            self.res.cgroup = Some(Cgroup::create(
                &cfg.cgroup_parent,
                &self.short,
                &cgroups::Limits {
                    memory_bytes: limits.memory_bytes,
                    cpu_millicores: limits.cpu_millicores,
                    pids_max: limits.pids_max,
                },
            )?);
        }
        if self.res.net.is_none() {
            let netns = format!("{}{}", cfg.netns_prefix, self.short);
            let veth = format!("bv{}", &self.spec.id.as_uuid().simple().to_string()[..10]);
            self.res.net = Some(self.shared.network.attach(&netns, &veth).await?);
        }
        let net = self.res.net.as_ref().expect("attached");
        self.res.etc = Some(net.write_etc_files(&dir, &self.short)?);
        Ok(())
    }

    fn container_spec(&self) -> ContainerSpec {
        let (layers, config, extras) = self.res.layers.as_ref().expect("prepared");
        let dir = self.res.dir.as_ref().expect("prepared");
        let mut env: BTreeMap<String, String> = config.env.clone();
        env.extend(self.spec.env.clone());
        env.entry("PORT".into())
            .or_insert_with(|| self.spec.port.to_string());
        let cwd = if config.working_dir.is_empty() {
            "/".into()
        } else {
            PathBuf::from(&config.working_dir)
        };
        ContainerSpec {
            hostname: self.short.clone(),
            layers: layers.clone(),
            upper_dir: dir.join("upper"),
            work_dir: dir.join("work"),
            rootfs: dir.join("rootfs"),
            binds: self.etc_binds(),
            network: Network::Join(self.res.net.as_ref().expect("prepared").netns_path()),
            cwd,
            env,
            argv: argv(&self.spec.command, &extras.entrypoint, &config.cmd),
            cgroup_dirs: self.res.cgroup.as_ref().expect("prepared").dirs(),
            security: container::Security {
                user: (!extras.user.is_empty()).then(|| extras.user.clone()),
                ..Default::default()
            },
            user_namespace: self.spec.id_range.map(Into::into),
        }
    }

    fn etc_binds(&self) -> Vec<BindMount> {
        let etc = self.res.etc.as_ref().expect("prepared");
        [(&etc.resolv_conf, "/etc/resolv.conf"), (&etc.hosts, "/etc/hosts")]
            .into_iter()
            .map(|(source, target)| BindMount {
                source: source.clone(),
                target: target.into(),
                read_only: true,
            })
            .collect()
    }

    async fn run_once(&mut self, stop: &mut watch::Receiver<bool>) -> Result<RunEnd, AgentError> {
        self.prepare().await?;
        let spec = self.container_spec();
        let log_path = self.res.dir.as_ref().expect("prepared").join("output.log");
        self.platform_line(format!("Starting process with command `{}`", self.spec.command));
        let mut c = container::spawn(&self.shared.cfg.init_program, &spec, Output::Piped).await?;
        let started = Instant::now();
        self.report(InstanceState::Starting);
        let mut pumps = Vec::new();
        for (stream, reader) in [
            (
                "stdout",
                c.child
                    .stdout
                    .take()
                    .map(|r| Box::new(r) as Box<dyn AsyncRead + Send + Unpin>),
            ),
            (
                "stderr",
                c.child
                    .stderr
                    .take()
                    .map(|r| Box::new(r) as Box<dyn AsyncRead + Send + Unpin>),
            ),
        ] {
            if let Some(reader) = reader {
                pumps.push(tokio::spawn(output::pump(
                    reader,
                    log_path.clone(),
                    stream,
                    self.forwarder(),
                )));
            }
        }
        let target = SocketAddr::new(
            self.res.net.as_ref().expect("prepared").address.into(),
            self.spec.port,
        );
        let mut running = false;
        let mut probe = tokio::time::interval(PROBE_INTERVAL);
        let end = loop {
            tokio::select! {
                status = c.wait() => {
                    break RunEnd::Exited { code: status?.code(), ran_for: started.elapsed() };
                }
                _ = probe.tick(), if !running => {
                    let connect = tokio::net::TcpStream::connect(target);
                    if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(500), connect).await {
                        running = true;
                        tracing::info!(app = %self.spec.app, instance = %self.short, %target, "instance accepts connections");
                        self.platform_line(format!("Up: accepting connections on port {}", self.spec.port));
                        self.report(InstanceState::Running);
                    }
                }
                _ = stop.changed() => {
                    self.stop_container(&mut c).await;
                    break RunEnd::Stopped;
                }
            }
        };
        // The init killed everything in its PID namespace when it exited; this covers a killed init.
        if let Some(cgroup) = &self.res.cgroup {
            cgroup.kill_all();
        }
        for p in pumps {
            let _ = p.await;
        }
        Ok(end)
    }

    /// SIGTERM, then SIGKILL after the grace period.
    async fn stop_container(&self, c: &mut container::Container) {
        let _ = c.signal(Signal::SIGTERM);
        if tokio::time::timeout(self.shared.cfg.stop_grace, c.wait())
            .await
            .is_err()
        {
            tracing::info!(app = %self.spec.app, instance = %self.short, "grace period over, killing");
            let _ = c.signal(Signal::SIGKILL);
            if let Some(cgroup) = &self.res.cgroup {
                cgroup.kill_all();
            }
            let _ = c.wait().await;
        }
    }

    async fn release(&mut self) {
        let fields = (self.spec.app.to_string(), self.short.clone());
        if let Some(cgroup) = self.res.cgroup.take() {
            if let Err(e) = cgroup.remove().await {
                tracing::error!(app = %fields.0, instance = %fields.1, error = %e, "removing cgroup");
            }
        }
        if let Some(n) = self.res.net.take() {
            if let Err(e) = n.remove().await {
                tracing::error!(app = %fields.0, instance = %fields.1, error = %e, "removing network");
            }
        }
        if let Some(dir) = self.res.dir.take() {
            if let Err(e) = tokio::fs::remove_dir_all(&dir).await {
                tracing::error!(app = %fields.0, instance = %fields.1, error = %e, "removing instance directory");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_30s() {
        let got: Vec<u64> = (0..8).map(|s| super::backoff(s).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 30, 30, 30]);
    }

    #[test]
    fn the_image_command_runs_as_is() {
        let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        let sh = |c: &str| s(&["/bin/sh", "-c", c]);
        type Case = (
            &'static str,
            &'static [&'static str],
            &'static [&'static str],
            Vec<String>,
        );
        let cases: &[Case] = &[
            // An exec-form ENTRYPOINT + CMD: as they are.
            (
                "exec httpd -f -p 80",
                &["httpd", "-f"],
                &["-p", "80"],
                s(&["httpd", "-f", "-p", "80"]),
            ),
            (
                "exec python3 'a b.py'",
                &[],
                &["python3", "a b.py"],
                s(&["python3", "a b.py"]),
            ),
            // A shell form is the same either way.
            (
                "python3 app.py $PORT",
                &[],
                &["/bin/sh", "-c", "python3 app.py $PORT"],
                sh("python3 app.py $PORT"),
            ),
            // A Procfile command (another process type, or the buildpacks' images) runs in a shell.
            ("exec worker", &["httpd"], &[], sh("exec worker")),
            ("gunicorn app:app", &[], &[], sh("gunicorn app:app")),
        ];
        for (command, entrypoint, cmd, want) in cases {
            assert_eq!(&argv(command, &s(entrypoint), &s(cmd)), want, "{command}");
        }
    }
}
