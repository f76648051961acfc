//! A server on 127.0.0.1:0 with a temp store and a deployer that records what it was given, plus helpers to
//! drive the real `git` client.

use std::collections::BTreeMap;
use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use git_receive::{DeployRequest, Deployer, GitReceive, GitReceiveConfig};
use store::{Account, App, Store};
use tokio::sync::{mpsc, Notify};
use vocabulary::{AccountName, AppName};

/// True when `git` is installed; otherwise says why the test is skipped (or fails, under CI).
pub fn have_git(test: &str) -> bool {
    let found = std::process::Command::new("git")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test} needs git, and CI is set"
        );
        eprintln!("skipping {test}: needs git");
    }
    found
}

/// What one deploy saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub app: String,
    pub account: String,
    pub commit: String,
    pub source_dir: PathBuf,
    /// Relative path → "file 644", "file 755", "link -> TARGET" or "dir".
    pub tree: BTreeMap<String, String>,
}

/// Logs two lines and succeeds, unless the pushed tree has a file `fail` (then fails with its content). A
/// file `wait` makes it log one line, tell the test (`started`) and wait for `go` before going on.
#[derive(Clone, Default)]
pub struct TestDeployer(Arc<DeployerState>);

#[derive(Default)]
pub struct DeployerState {
    pub seen: Mutex<Vec<Seen>>,
    pub started: Notify,
    pub go: Notify,
}

impl std::ops::Deref for TestDeployer {
    type Target = DeployerState;
    fn deref(&self) -> &DeployerState {
        &self.0
    }
}

impl Deployer for TestDeployer {
    fn deploy(
        &self,
        req: DeployRequest,
        log: mpsc::Sender<String>,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send>> {
        let this = self.clone();
        Box::pin(async move {
            let tree = snapshot(&req.source_dir);
            this.seen.lock().unwrap().push(Seen {
                app: req.app.name.to_string(),
                account: req.account.name.to_string(),
                commit: req.commit.clone(),
                source_dir: req.source_dir.clone(),
                tree: tree.clone(),
            });
            let _ = log
                .send(format!("-----> Building {} ({})", req.app.name, &req.commit[..7]))
                .await;
            if tree.contains_key("wait") {
                this.started.notify_one();
                this.go.notified().await;
            }
            let _ = log.send(format!("       {} files", tree.len())).await;
            match std::fs::read_to_string(req.source_dir.join("fail")) {
                Ok(reason) => Err(format!("build failed: {}", reason.trim())),
                Err(_) => Ok(format!(
                    "deployed {} to http://{}.localhost",
                    &req.commit[..7],
                    req.app.name
                )),
            }
        })
    }
}

fn snapshot(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                out.insert(
                    rel,
                    format!("link -> {}", std::fs::read_link(&path).unwrap().display()),
                );
            } else if meta.is_dir() {
                out.insert(rel, "dir".into());
                walk(root, &path, out);
            } else {
                out.insert(rel, format!("file {:o}", meta.permissions().mode() & 0o777));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

pub struct Server {
    pub url: String,
    pub repos_dir: PathBuf,
    pub store: Store,
    pub deployer: TestDeployer,
    /// A SQLite file in `_dir`, or a PostgreSQL database with `BERTH_TEST_BACKEND=postgres` (store::testing).
    _database: store::testing::TestDatabase,
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    pub async fn start(max_push_bytes: u64) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let database = store::testing::TestDatabase::from_env(&dir.path().join("berth.db"))
            .await
            .unwrap();
        let store = database.store.clone();
        let repos_dir = dir.path().join("repos");
        // Left by a server that stopped mid-deploy: removed at start.
        let stale = repos_dir.join(".checkouts/checkout-stale");
        std::fs::create_dir_all(&stale).unwrap();
        let deployer = TestDeployer::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let git = GitReceive::new(GitReceiveConfig {
            repos_dir: repos_dir.clone(),
            store: store.clone(),
            deployer: Arc::new(deployer.clone()),
            hook_program: PathBuf::from(env!("CARGO_BIN_EXE_berth-git-hook")),
            hook_url: format!("http://{addr}/internal/git-hooks/pre-receive"),
            max_push_bytes,
        });
        assert!(!stale.exists(), "stale checkouts are removed at start");
        let app = git_receive::routes(git);
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Server {
            url: format!("http://{addr}"),
            repos_dir,
            store,
            deployer,
            _database: database,
            _dir: dir,
            task,
        }
    }

    /// A new account with one app; returns the account's token.
    pub async fn tenant(&self, account: &str, app: Option<&str>) -> (Account, String, Option<App>) {
        let (account, token) = self
            .store
            .create_account(&AccountName::new(account).unwrap(), false)
            .await
            .unwrap();
        let app = match app {
            Some(name) => Some(
                self.store
                    .create_app(account.id, &AppName::new(name).unwrap())
                    .await
                    .unwrap(),
            ),
            None => None,
        };
        (account, token, app)
    }

    pub fn remote(&self, token: &str, app: &str) -> String {
        let host = self.url.trim_start_matches("http://");
        format!("http://git:{token}@{host}/git/{app}.git")
    }

    /// The commit `branch` points at in the server's repository of `app`, if any.
    pub fn server_ref(&self, app: &str, branch: &str) -> Option<String> {
        let repo = git2::Repository::open_bare(self.repos_dir.join(format!("{app}.git"))).ok()?;
        let reference = repo.find_reference(&format!("refs/heads/{branch}")).ok()?;
        reference.target().map(|oid| oid.to_string())
    }

    pub fn deploys(&self) -> Vec<Seen> {
        self.deployer.seen.lock().unwrap().clone()
    }
}

/// A work tree with its own git environment (no user or system config of this machine).
pub struct Work {
    pub dir: tempfile::TempDir,
    home: tempfile::TempDir,
}

impl Work {
    pub async fn new() -> Work {
        let work = Work {
            dir: tempfile::tempdir().unwrap(),
            home: tempfile::tempdir().unwrap(),
        };
        work.ok(&["init", "-q", "-b", "main"]).await;
        work
    }

    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("git");
        command
            .args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("LANG", "C")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.com")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.com")
            .kill_on_drop(true);
        command
    }

    /// Runs git, bounded in time.
    pub async fn git(&self, args: &[&str]) -> Output {
        tokio::time::timeout(Duration::from_secs(120), self.command(args).output())
            .await
            .unwrap_or_else(|_| panic!("git {args:?} took over 120 s"))
            .unwrap()
    }

    pub async fn ok(&self, args: &[&str]) -> String {
        let output = self.git(args).await;
        assert!(
            output.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    pub fn write(&self, path: &str, content: &str) {
        let path = self.dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    /// Commits everything; returns the commit id.
    pub async fn commit(&self, message: &str) -> String {
        self.ok(&["add", "-A"]).await;
        self.ok(&["commit", "-q", "-m", message]).await;
        self.ok(&["rev-parse", "HEAD"]).await
    }
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
