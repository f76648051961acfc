//! Getting a buildpack into the build's scratch directory: a copy of a host directory, or a shallow fetch
//! of a git repository with the host's `git`, restricted to the allowed URL schemes and blind to the host's
//! git configuration.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::time::Instant;

use super::source::{allowed_protocols, redact_url, BuildpackSource, SourcePolicy};
use super::step::Script;
use super::ClassicError;

/// Puts `source` at `dest` (which must not exist). Returns the commit for a git source.
pub async fn fetch(
    source: &BuildpackSource,
    dest: &Path,
    git: &GitFetch<'_>,
) -> Result<Option<String>, ClassicError> {
    let commit = match source {
        BuildpackSource::Dir(dir) => {
            let (dir, dest) = (dir.clone(), dest.to_owned());
            tokio::task::spawn_blocking(move || copy_tree(&dir, &dest))
                .await
                .map_err(|e| ClassicError::Task(e.to_string()))??;
            None
        }
        BuildpackSource::Git { url, reference } => {
            Some(git.fetch(source, url, reference.as_deref(), dest).await?)
        }
    };
    check_scripts(source, dest)?;
    Ok(commit)
}

/// `bin/detect` and `bin/compile` must be regular files (never links); all scripts are made executable (as
/// heroku-buildpack-multi does: zips and some repositories lose the bit).
fn check_scripts(source: &BuildpackSource, dir: &Path) -> Result<(), ClassicError> {
    use std::os::unix::fs::PermissionsExt;
    for script in [Script::Detect, Script::Compile, Script::Release] {
        let path = dir.join(script.path());
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => {
                let mut perms = meta.permissions();
                if perms.mode() & 0o111 != 0o111 {
                    perms.set_mode(perms.mode() | 0o755);
                    std::fs::set_permissions(&path, perms)
                        .map_err(ClassicError::io("making executable", &path))?;
                }
            }
            // `bin/release` is optional, as on Heroku today.
            _ if script == Script::Release => {}
            _ => {
                return Err(ClassicError::MissingScript {
                    buildpack: source.to_string(),
                    script: script.path(),
                })
            }
        }
    }
    Ok(())
}

/// How git is run for buildpack fetches.
pub struct GitFetch<'a> {
    pub program: &'a Path,
    pub policy: SourcePolicy,
    pub deadline: Instant,
}

impl GitFetch<'_> {
    async fn fetch(
        &self,
        source: &BuildpackSource,
        url: &str,
        reference: Option<&str>,
        dest: &Path,
    ) -> Result<String, ClassicError> {
        std::fs::create_dir_all(dest).map_err(ClassicError::io("creating", dest))?;
        let dest_arg = OsString::from(dest);
        let in_dest = |args: &[&str]| -> Vec<OsString> {
            let mut all = vec![OsString::from("-C"), dest_arg.clone()];
            all.extend(args.iter().map(OsString::from));
            all
        };
        self.git(source, url, vec!["init".into(), "-q".into(), dest_arg.clone()])
            .await?;
        // `--` keeps the URL and the ref from ever being read as options (both are validated too).
        let fetch_ref = reference.unwrap_or("HEAD");
        let fetch = in_dest(&["fetch", "-q", "--depth", "1", "--no-tags", "--", url, fetch_ref]);
        self.git(source, url, fetch).await?;
        self.git(
            source,
            url,
            in_dest(&["checkout", "-q", "--detach", "FETCH_HEAD"]),
        )
        .await?;
        let commit = self.git(source, url, in_dest(&["rev-parse", "HEAD"])).await?;
        let git_dir = dest.join(".git");
        std::fs::remove_dir_all(&git_dir).map_err(ClassicError::io("removing", &git_dir))?;
        Ok(commit.trim().to_owned())
    }

    /// Runs git with a clean environment: no system or global configuration, no prompts, only the allowed
    /// protocols. Returns its standard output.
    async fn git(
        &self,
        source: &BuildpackSource,
        url: &str,
        args: Vec<OsString>,
    ) -> Result<String, ClassicError> {
        let fail = |detail: String| ClassicError::Fetch {
            buildpack: source.to_string(),
            // git may repeat the URL, credentials and all.
            detail: detail.replace(url, &redact_url(url)),
        };
        let child = tokio::process::Command::new(self.program)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", "/nonexistent")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", "/bin/false")
            .env("GIT_ALLOW_PROTOCOL", allowed_protocols(self.policy))
            .env("LANG", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| fail(format!("running {}: {e}", self.program.display())))?;
        let out = tokio::time::timeout_at(self.deadline, child.wait_with_output())
            .await
            .map_err(|_| fail("git did not finish within the build's time limit".to_owned()))?
            .map_err(|e| fail(format!("waiting for git: {e}")))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(fail(stderr.trim().to_owned()));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// Copies the tree at `src` to `dest` (created), keeping modes and symlinks as they are (never following
/// them), leaving out a top-level `.git`, and skipping sockets, devices and fifos.
pub fn copy_tree(src: &Path, dest: &Path) -> Result<(), ClassicError> {
    use std::os::unix::fs::PermissionsExt;
    let walk = walkdir::WalkDir::new(src)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| !(e.depth() == 1 && e.file_name() == ".git"));
    for entry in walk {
        let entry = entry.map_err(|e| {
            let path = e.path().map(Path::to_path_buf).unwrap_or_else(|| src.to_owned());
            ClassicError::Io {
                what: "copying",
                path,
                source: e.into(),
            }
        })?;
        let relative = entry
            .path()
            .strip_prefix(src)
            .expect("walkdir stays below its root");
        let target: PathBuf = dest.join(relative);
        let kind = entry.file_type();
        let io = ClassicError::io("copying", entry.path());
        if kind.is_dir() {
            std::fs::create_dir_all(&target).map_err(&io)?;
            let mode = entry.metadata().map_err(|e| io(e.into()))?.permissions().mode();
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode | 0o700)).map_err(&io)?;
        } else if kind.is_symlink() {
            let link = std::fs::read_link(entry.path()).map_err(&io)?;
            std::os::unix::fs::symlink(link, &target).map_err(&io)?;
        } else if kind.is_file() {
            // `fs::copy` keeps the permission bits.
            std::fs::copy(entry.path(), &target).map_err(&io)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn copies_keep_modes_and_links_and_leave_out_git() {
        let src = tempfile::tempdir().unwrap();
        let s = src.path();
        std::fs::create_dir_all(s.join("bin")).unwrap();
        std::fs::create_dir_all(s.join(".git/objects")).unwrap();
        std::fs::create_dir_all(s.join("vendor/.git")).unwrap();
        std::fs::write(s.join("bin/run"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(s.join("bin/run"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(s.join("README"), "hi").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", s.join("escape")).unwrap();
        let dest = tempfile::tempdir().unwrap();
        let d = dest.path().join("copy");
        copy_tree(s, &d).unwrap();
        assert_eq!(std::fs::read_to_string(d.join("README")).unwrap(), "hi");
        let mode = std::fs::metadata(d.join("bin/run")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(
            std::fs::read_link(d.join("escape")).unwrap(),
            Path::new("/etc/passwd")
        );
        assert!(!d.join(".git").exists());
        assert!(
            d.join("vendor/.git").is_dir(),
            "only the top-level .git is left out"
        );
    }

    #[test]
    fn scripts_are_checked_and_made_executable() {
        let dir = tempfile::tempdir().unwrap();
        let source = BuildpackSource::Dir(dir.path().to_owned());
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        std::fs::write(dir.path().join("bin/detect"), "#!/bin/sh\n").unwrap();
        let err = check_scripts(&source, dir.path()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("buildpack {} has no bin/compile", dir.path().display())
        );
        std::fs::write(dir.path().join("bin/compile"), "#!/bin/sh\n").unwrap();
        check_scripts(&source, dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join("bin/compile"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111);
    }

    /// A failed fetch names the buildpack and git's reason, never the URL's credentials. Real git against a
    /// closed loopback port.
    #[tokio::test]
    async fn failed_fetches_hide_credentials() {
        if !Path::new("/usr/bin/git").exists() && !Path::new("/usr/local/bin/git").exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "needs git (CI is set, so not skipping)"
            );
            println!("skipping failed_fetches_hide_credentials: needs git");
            return;
        }
        // Port 1 on loopback: nothing listens there, so the connection is refused at once.
        let spec = "https://bob:s3cret@127.0.0.1:1/bp.git#main";
        let source = super::super::parse_buildpack_url(spec, SourcePolicy::default()).unwrap();
        let dest = tempfile::tempdir().unwrap();
        let git = GitFetch {
            program: Path::new("git"),
            policy: SourcePolicy::default(),
            deadline: Instant::now() + std::time::Duration::from_secs(120),
        };
        let err = fetch(&source, &dest.path().join("bp"), &git)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("fetching buildpack https://***@127.0.0.1:1/bp.git#main failed: "),
            "{err}"
        );
        assert!(err.contains("127.0.0.1"), "git's reason is shown: {err}");
        assert!(!err.contains("s3cret"), "{err}");

        // git itself refuses a protocol the policy leaves out, even if parsing were bypassed.
        let file = BuildpackSource::Git {
            url: format!("file://{}", dest.path().display()),
            reference: None,
        };
        let err = fetch(&file, &dest.path().join("bp2"), &git)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("transport 'file' not allowed"), "{err}");
    }
}
