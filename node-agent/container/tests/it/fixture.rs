//! A throwaway image layer made of a static busybox, and helpers to run a container on it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use container::{ContainerSpec, Network, Output};
use tokio::io::AsyncReadExt;

const APPLETS: &[&str] = &[
    "sh", "cat", "echo", "hostname", "ls", "sleep", "touch", "rm", "ps", "grep", "wc", "httpd", "true",
    "mkdir", "mount", "unshare", "nsenter", "chroot", "mknod", "find", "id", "stat", "chown",
];

pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    /// Panics (test failure) if busybox is missing: the tests cannot run without it.
    pub fn new() -> Self {
        let busybox = Path::new("/bin/busybox");
        assert!(
            busybox.exists(),
            "needs a static /bin/busybox (apt-get install busybox-static)"
        );
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("layer/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy(busybox, bin.join("busybox")).unwrap();
        for applet in APPLETS {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
        std::fs::write(dir.path().join("layer/marker"), "from the layer\n").unwrap();
        for sub in ["upper", "work", "rootfs"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        Fixture { dir }
    }

    pub fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    pub fn spec(&self, script: &str) -> ContainerSpec {
        ContainerSpec {
            hostname: "box-test".into(),
            layers: vec![self.path("layer")],
            upper_dir: self.path("upper"),
            work_dir: self.path("work"),
            rootfs: self.path("rootfs"),
            binds: vec![],
            network: Network::Host,
            cwd: "/".into(),
            env: BTreeMap::from([("PATH".to_string(), "/bin".to_string())]),
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            cgroup_dirs: vec![],
            security: Default::default(),
            user_namespace: None,
        }
    }
}

pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs a container to completion (at most 20 s) and collects its output.
pub fn run(spec: &ContainerSpec) -> Outcome {
    runtime().block_on(async {
        let init = std::env::current_exe().unwrap();
        let mut c = container::spawn(&init, spec, Output::Piped).await.unwrap();
        let mut stdout = c.child.stdout.take().unwrap();
        let mut stderr = c.child.stderr.take().unwrap();
        let (mut out, mut err) = (String::new(), String::new());
        let collect = async {
            let (a, b) = tokio::join!(stdout.read_to_string(&mut out), stderr.read_to_string(&mut err));
            a.unwrap();
            b.unwrap();
            c.wait().await.unwrap()
        };
        let status = tokio::time::timeout(Duration::from_secs(20), collect)
            .await
            .expect("container timed out");
        let outcome = Outcome {
            code: status.code(),
            stdout: out,
            stderr: err,
        };
        if outcome.code != Some(0) {
            eprintln!("container exited {:?}; stderr:\n{}", outcome.code, outcome.stderr);
        }
        outcome
    })
}

/// Mount points anywhere on the host (our mount namespace) below `dir`.
pub fn host_mounts_below(dir: &Path) -> Vec<String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir = dir.to_string_lossy().to_string();
    mountinfo
        .lines()
        .filter(|l| l.split(' ').nth(4).is_some_and(|mp| mp.starts_with(&dir)))
        .map(String::from)
        .collect()
}
