//! One bare repository per app at `REPOS_DIR/NAME.git`, created on first use, whose only hook is a
//! pre-receive script that runs `HOOK_PROGRAM git-hook pre-receive`.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use vocabulary::AppName;

use crate::GitReceiveError;

pub(crate) fn repo_path(repos_dir: &Path, name: &AppName) -> PathBuf {
    repos_dir.join(format!("{name}.git"))
}

/// Quotes `s` for a POSIX shell: inside single quotes everything is literal except `'` itself.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

pub(crate) fn hook_script(hook_program: &Path) -> String {
    format!(
        "#!/bin/sh\n# Written by berth: hands the push to berth, which builds and deploys it.\nexec {} git-hook pre-receive\n",
        shell_quote(&hook_program.to_string_lossy())
    )
}

/// Creates the app's bare repository if it is missing and (re)writes its pre-receive hook, so that a moved
/// berth binary is picked up. Safe to call on every request and from concurrent requests.
pub(crate) fn ensure_repo(
    repos_dir: &Path,
    name: &AppName,
    hook_program: &Path,
) -> Result<PathBuf, GitReceiveError> {
    let path = repo_path(repos_dir, name);
    if !path.join("HEAD").exists() {
        let mut opts = git2::RepositoryInitOptions::new();
        opts.bare(true).mkpath(true).initial_head("main").no_reinit(false);
        let repo = git2::Repository::init_opts(&path, &opts).map_err(|source| GitReceiveError::InitRepo {
            path: path.clone(),
            source,
        })?;
        let mut config = repo.config().map_err(|source| GitReceiveError::InitRepo {
            path: path.clone(),
            source,
        })?;
        let hooks_dir = repo.path().join("hooks");
        let settings: [(&str, &str); 4] = [
            // Pushed objects come from tenants: check them (this also refuses tree entries like `..` or `.git`).
            ("receive.fsckObjects", "true"),
            ("receive.denyDeletes", "true"),
            // Only our hook runs, even if some git config points hooks elsewhere.
            ("core.hooksPath", &hooks_dir.to_string_lossy()),
            ("core.logAllRefUpdates", "true"),
        ];
        for (key, value) in settings {
            config
                .set_str(key, value)
                .map_err(|source| GitReceiveError::InitRepo {
                    path: path.clone(),
                    source,
                })?;
        }
    }
    write_hook(&path, hook_program)?;
    Ok(path)
}

fn write_hook(repo: &Path, hook_program: &Path) -> Result<(), GitReceiveError> {
    let hooks = repo.join("hooks");
    let hook = hooks.join("pre-receive");
    let wanted = hook_script(hook_program);
    if std::fs::read_to_string(&hook).is_ok_and(|current| current == wanted) {
        return Ok(());
    }
    let err = |source| GitReceiveError::WriteHook {
        path: hook.clone(),
        source,
    };
    std::fs::create_dir_all(&hooks).map_err(err)?;
    // No other hook may run: remove whatever the repository template put there (samples, or worse).
    for entry in std::fs::read_dir(&hooks).map_err(err)? {
        let entry = entry.map_err(err)?;
        if entry.file_name() != "pre-receive" {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    // Written beside and renamed, so a push never runs a half-written hook.
    let mut file = tempfile::NamedTempFile::new_in(&hooks).map_err(err)?;
    file.write_all(wanted.as_bytes()).map_err(err)?;
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o755))
        .map_err(err)?;
    file.persist(&hook).map_err(|e| err(e.error))?;
    Ok(())
}

/// Removes an app's repository (when the app is deleted). A missing repository is not an error.
pub fn delete_repo(repos_dir: &Path, name: &AppName) -> Result<(), GitReceiveError> {
    let path = repo_path(repos_dir, name);
    match std::fs::remove_dir_all(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(GitReceiveError::DeleteRepo { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_script_quotes_the_program() {
        let cases = [
            ("/usr/bin/berth", "exec '/usr/bin/berth' git-hook pre-receive\n"),
            (
                "/opt/my dir/berth",
                "exec '/opt/my dir/berth' git-hook pre-receive\n",
            ),
            (
                "/tmp/it's/berth",
                "exec '/tmp/it'\\''s/berth' git-hook pre-receive\n",
            ),
        ];
        for (program, last_line) in cases {
            let script = hook_script(Path::new(program));
            assert!(script.starts_with("#!/bin/sh\n"));
            assert!(script.ends_with(last_line), "{script}");
        }
    }

    #[test]
    fn ensure_creates_a_bare_repo_with_only_our_hook_and_delete_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let name = AppName::new("shop").unwrap();
        let path = ensure_repo(dir.path(), &name, Path::new("/usr/bin/berth")).unwrap();
        assert_eq!(path, dir.path().join("shop.git"));
        let repo = git2::Repository::open_bare(&path).unwrap();
        assert!(repo.is_bare());
        let hooks: Vec<_> = std::fs::read_dir(path.join("hooks"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(hooks, ["pre-receive"]);
        let mode = std::fs::metadata(path.join("hooks/pre-receive"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);

        // A second call with another program rewrites the hook and keeps the repository.
        ensure_repo(dir.path(), &name, Path::new("/usr/local/bin/berth")).unwrap();
        let script = std::fs::read_to_string(path.join("hooks/pre-receive")).unwrap();
        assert!(script.contains("'/usr/local/bin/berth'"));

        delete_repo(dir.path(), &name).unwrap();
        assert!(!path.exists());
        delete_repo(dir.path(), &name).unwrap();
    }
}
