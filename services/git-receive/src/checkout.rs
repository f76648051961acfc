//! Writes a pushed commit's tree into a fresh directory, reading the objects straight from the quarantine
//! that `receive-pack` keeps them in until the hook accepts the push.
//!
//! The tree comes from a tenant. Every name is checked to be one plain path component, files are created with
//! `O_EXCL` and directories only inside directories this walk created, so nothing is written outside the
//! target even if a malformed tree names an entry twice. Symlinks are written as symlinks (their targets are
//! data, not followed here); submodules are skipped.

use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use git2::{ObjectType, Oid, Repository};

use crate::GitReceiveError;

/// Bounds on what a checkout may write, so a small, well-compressed push cannot fill the disk.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_bytes: u64,
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 4 * 1024 * 1024 * 1024,
            max_entries: 500_000,
        }
    }
}

/// A commit's tree written out; the directory is removed when this drops.
pub(crate) struct Checkout {
    pub dir: tempfile::TempDir,
    pub commit: String,
}

/// Checks that a tree entry's name is one plain path component.
pub(crate) fn safe_component(name: &[u8]) -> Result<&OsStr, &'static str> {
    match name {
        b"" => Err("empty name"),
        b"." | b".." => Err("a dot or dot-dot component"),
        _ if name.contains(&b'/') => Err("a slash inside a name"),
        _ if name.contains(&0) => Err("a NUL byte inside a name"),
        _ if name.eq_ignore_ascii_case(b".git") => Err("a .git entry"),
        _ => Ok(OsStr::from_bytes(name)),
    }
}

/// Opens `repo_path`, adds the quarantine `object_dirs` (each must lie inside the repository) as alternates,
/// and writes the tree of commit `new` into a new directory under `parent`.
pub(crate) fn checkout(
    repo_path: &Path,
    object_dirs: &[PathBuf],
    new: &str,
    parent: &Path,
    limits: Limits,
) -> Result<Checkout, GitReceiveError> {
    let repo = Repository::open_bare(repo_path).map_err(|source| GitReceiveError::OpenRepo {
        path: repo_path.to_owned(),
        source,
    })?;
    let own_objects = canonical(&repo_path.join("objects"))?;
    let odb = repo.odb().map_err(|source| GitReceiveError::OpenRepo {
        path: repo_path.to_owned(),
        source,
    })?;
    for dir in object_dirs {
        let dir = canonical(dir)?;
        if dir == own_objects {
            continue;
        }
        if !dir.starts_with(&own_objects) {
            return Err(GitReceiveError::ForeignObjectDir { path: dir });
        }
        odb.add_disk_alternate(&dir.to_string_lossy())
            .map_err(|source| GitReceiveError::AddObjects {
                path: dir.clone(),
                source,
            })?;
    }

    let oid = Oid::from_str(new)
        .ok()
        .filter(|_| new.len() == 40)
        .ok_or_else(|| GitReceiveError::BadObjectId { id: new.to_owned() })?;
    let read_err = |source| GitReceiveError::ReadCommit {
        id: new.to_owned(),
        source,
    };
    let commit = repo
        .find_object(oid, None)
        .and_then(|o| o.peel_to_commit())
        .map_err(read_err)?;
    let tree = commit.tree().map_err(read_err)?;

    fs::create_dir_all(parent).map_err(|source| GitReceiveError::WriteFile {
        path: parent.to_owned(),
        source,
    })?;
    let dir = tempfile::Builder::new()
        .prefix("checkout-")
        .tempdir_in(parent)
        .map_err(|source| GitReceiveError::WriteFile {
            path: parent.to_owned(),
            source,
        })?;
    let mut budget = Budget {
        limits,
        bytes: 0,
        entries: 0,
    };
    write_tree(&repo, &tree, dir.path(), "", &mut budget)?;
    Ok(Checkout {
        dir,
        commit: commit.id().to_string(),
    })
}

fn canonical(path: &Path) -> Result<PathBuf, GitReceiveError> {
    path.canonicalize().map_err(|source| GitReceiveError::WriteFile {
        path: path.to_owned(),
        source,
    })
}

struct Budget {
    limits: Limits,
    bytes: u64,
    entries: u64,
}

impl Budget {
    fn spend(&mut self, bytes: u64) -> Result<(), GitReceiveError> {
        self.entries += 1;
        self.bytes += bytes;
        if self.entries > self.limits.max_entries {
            return Err(GitReceiveError::TreeTooLarge {
                what: "files",
                limit: self.limits.max_entries,
            });
        }
        if self.bytes > self.limits.max_bytes {
            return Err(GitReceiveError::TreeTooLarge {
                what: "bytes",
                limit: self.limits.max_bytes,
            });
        }
        Ok(())
    }
}

/// Writes `tree` into `dir`, which this walk created (so it is a real directory, not a symlink).
fn write_tree(
    repo: &Repository,
    tree: &git2::Tree<'_>,
    dir: &Path,
    prefix: &str,
    budget: &mut Budget,
) -> Result<(), GitReceiveError> {
    for entry in tree.iter() {
        let shown = format!("{prefix}{}", String::from_utf8_lossy(entry.name_bytes()));
        let name = safe_component(entry.name_bytes()).map_err(|reason| GitReceiveError::UnsafePath {
            path: shown.clone(),
            reason,
        })?;
        let path = dir.join(name);
        let write_err = |source| GitReceiveError::WriteFile {
            path: path.clone(),
            source,
        };
        let read_err = |source| GitReceiveError::ReadObject {
            id: entry.id().to_string(),
            source,
        };
        match (entry.kind(), entry.filemode()) {
            // A submodule's commit is not in this repository; apps vendor what they need.
            (Some(ObjectType::Commit), _) => {}
            (Some(ObjectType::Tree), _) => {
                budget.spend(0)?;
                fs::create_dir(&path).map_err(write_err)?;
                fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).map_err(write_err)?;
                let subtree = repo.find_tree(entry.id()).map_err(read_err)?;
                write_tree(repo, &subtree, &path, &format!("{shown}/"), budget)?;
            }
            (Some(ObjectType::Blob), 0o120000) => {
                let blob = repo.find_blob(entry.id()).map_err(read_err)?;
                budget.spend(blob.size() as u64)?;
                std::os::unix::fs::symlink(OsStr::from_bytes(blob.content()), &path).map_err(write_err)?;
            }
            (Some(ObjectType::Blob), mode) => {
                let blob = repo.find_blob(entry.id()).map_err(read_err)?;
                budget.spend(blob.size() as u64)?;
                let mode = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    // `create_new` (O_EXCL) already refuses an existing symlink; O_NOFOLLOW says so twice, cheaply.
                    .custom_flags(libc::O_NOFOLLOW)
                    .mode(mode)
                    .open(&path)
                    .map_err(write_err)?;
                file.write_all(blob.content()).map_err(write_err)?;
                // The process umask may have narrowed the mode given at creation.
                file.set_permissions(fs::Permissions::from_mode(mode))
                    .map_err(write_err)?;
            }
            _ => {
                return Err(GitReceiveError::UnsafePath {
                    path: shown,
                    reason: "an entry of unknown type",
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_single_plain_components() {
        let cases: [(&[u8], bool); 11] = [
            (b"app.py", true),
            (b"requirements.txt", true),
            (b".gitignore", true),
            (b"..hidden", true),
            (b"", false),
            (b".", false),
            (b"..", false),
            (b"a/b", false),
            (b"/etc", false),
            (b"a\0b", false),
            (b".GIT", false),
        ];
        for (name, ok) in cases {
            assert_eq!(
                safe_component(name).is_ok(),
                ok,
                "{:?}",
                String::from_utf8_lossy(name)
            );
        }
    }
}
