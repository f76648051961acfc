//! OCI whiteouts, both ways.
//!
//! An OCI layer records a deletion as an empty file `.wh.NAME` beside the deleted `NAME`, and a directory
//! whose lower contents are hidden as `DIR/.wh..wh..opq`. overlayfs records the same in its upper dir as a
//! character device 0/0 named `NAME` and as the xattr `trusted.overlay.opaque=y` on `DIR`. Writing a layer
//! from an upper dir turns the overlay form into the OCI form; unpacking a layer into its own directory (to be
//! one of an overlay's lower dirs, as the node agent and the builders use them) turns it back; applying a
//! layer onto a tree that holds the layers below deletes what the whiteouts name.

use std::collections::HashSet;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

pub(crate) const PREFIX: &str = ".wh.";
pub(crate) const OPAQUE: &str = ".wh..wh..opq";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const REDIRECT_XATTR: &str = "trusted.overlay.redirect";
const METACOPY_XATTR: &str = "trusted.overlay.metacopy";

/// What a layer entry's file name says about whiteouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Name<'a> {
    /// An ordinary entry.
    Plain,
    /// `.wh.NAME`: `NAME` in the layers below is deleted.
    Whiteout(&'a str),
    /// `.wh..wh..opq`: the directory's contents in the layers below are hidden.
    Opaque,
}

/// Classifies a file name, refusing whiteouts that name nothing sensible (`.wh..`, AUFS's `.wh..wh.plnk`).
pub(crate) fn classify(name: &str) -> Result<Name<'_>, &'static str> {
    if name == OPAQUE {
        return Ok(Name::Opaque);
    }
    let Some(target) = name.strip_prefix(PREFIX) else {
        return Ok(Name::Plain);
    };
    if target.starts_with(".wh.") {
        return Err("it is an AUFS special whiteout, which is not supported");
    }
    if target.is_empty() || target == "." || target == ".." {
        return Err("it is a whiteout of nothing");
    }
    Ok(Name::Whiteout(target))
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// The value of an xattr of `path` (not following symlinks); `None` when it is not set.
pub(crate) fn get_xattr(path: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    let c = c_path(path)?;
    let name = CString::new(name).expect("xattr names have no NUL");
    let mut buf = vec![0u8; 256];
    // SAFETY: `c` and `name` are NUL-terminated and outlive the call; `buf` is writable for its length.
    let n = unsafe { libc::lgetxattr(c.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENODATA) | Some(libc::ENOTSUP) => Ok(None),
            _ => Err(e),
        };
    }
    buf.truncate(n as usize);
    Ok(Some(buf))
}

/// Whether an upper dir's directory is opaque; refuses overlay features whose meaning a layer cannot carry.
pub(crate) fn upper_dir_is_opaque(path: &Path) -> io::Result<bool> {
    if get_xattr(path, REDIRECT_XATTR)?.is_some() {
        return Err(io::Error::other(
            "a renamed directory (overlayfs redirect_dir) cannot be written as a layer",
        ));
    }
    Ok(get_xattr(path, OPAQUE_XATTR)?.is_some_and(|v| v == b"y"))
}

/// Refuses overlayfs metacopy files (metadata-only copy-ups whose data lives in a lower dir).
pub(crate) fn check_upper_file(path: &Path) -> io::Result<()> {
    if get_xattr(path, METACOPY_XATTR)?.is_some() {
        return Err(io::Error::other(
            "a metadata-only copy-up (overlayfs metacopy) cannot be written as a layer",
        ));
    }
    Ok(())
}

/// `dest/relative`, created as directories one component at a time, never through a symlink or a
/// non-directory (a layer must not make us write outside `dest`).
fn dir_in(dest: &Path, relative: &Path) -> io::Result<PathBuf> {
    let mut path = dest.to_owned();
    for component in relative.components() {
        let Component::Normal(name) = component else {
            return Err(io::Error::other("path leaves the layer's root"));
        };
        path.push(name);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(io::Error::other(format!("{} is not a directory", path.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::create_dir(&path)?,
            Err(e) => return Err(e),
        }
    }
    Ok(path)
}

/// `dest/relative` if every component up to it is a real directory (no symlinks), else `None`.
fn existing_dir_in(dest: &Path, relative: &Path) -> Option<PathBuf> {
    let mut path = dest.to_owned();
    for component in relative.components() {
        let Component::Normal(name) = component else {
            return None;
        };
        path.push(name);
        if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            return None;
        }
    }
    Some(path)
}

fn remove_any(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// How whiteouts are carried out while unpacking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// `dest` is the layer's own directory, to be an overlay lower dir: write overlayfs whiteouts (root).
    OverlayLower,
    /// `dest` holds the layers below: delete what the whiteouts name.
    Merged,
}

/// Carries out one whiteout entry at `dir` (relative to `dest`). `added` holds the paths this layer has
/// unpacked so far: a whiteout never deletes those (it applies to the layers below only).
pub(crate) fn apply(
    target: Target,
    dest: &Path,
    dir: &Path,
    name: &Name<'_>,
    added: &HashSet<PathBuf>,
) -> io::Result<()> {
    match (target, name) {
        (_, Name::Plain) => Ok(()),
        (Target::OverlayLower, Name::Whiteout(file)) => {
            if added.contains(&dir.join(file)) {
                return Ok(());
            }
            let path = dir_in(dest, dir)?.join(file);
            remove_any(&path)?;
            let c = c_path(&path)?;
            // SAFETY: `c` is a NUL-terminated path that outlives the call.
            let rc = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR, libc::makedev(0, 0)) };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        }
        (Target::OverlayLower, Name::Opaque) => {
            let path = dir_in(dest, dir)?;
            let c = c_path(&path)?;
            let name = CString::new(OPAQUE_XATTR).expect("no NUL");
            // SAFETY: `c` and `name` are NUL-terminated and outlive the call; the value is one byte.
            let rc = unsafe { libc::lsetxattr(c.as_ptr(), name.as_ptr(), b"y".as_ptr().cast(), 1, 0) };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        }
        (Target::Merged, Name::Whiteout(file)) => {
            if added.contains(&dir.join(file)) {
                return Ok(());
            }
            match existing_dir_in(dest, dir) {
                Some(parent) => remove_any(&parent.join(file)),
                None => Ok(()),
            }
        }
        (Target::Merged, Name::Opaque) => {
            let Some(parent) = existing_dir_in(dest, dir) else {
                return Ok(());
            };
            for entry in std::fs::read_dir(&parent)? {
                let entry = entry?;
                if !added.contains(&dir.join(entry.file_name())) {
                    remove_any(&entry.path())?;
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let cases: &[(&str, Result<Name<'_>, ()>)] = &[
            ("file", Ok(Name::Plain)),
            (".hidden", Ok(Name::Plain)),
            (".wh", Ok(Name::Plain)),
            (".wh.file", Ok(Name::Whiteout("file"))),
            (".wh..hidden", Ok(Name::Whiteout(".hidden"))),
            (".wh..wh..opq", Ok(Name::Opaque)),
            (".wh..wh.plnk", Err(())),
            (".wh.", Err(())),
            (".wh..", Err(())),
            (".wh...", Err(())),
        ];
        for (name, expected) in cases {
            assert_eq!(classify(name).map_err(drop), *expected, "{name:?}");
        }
    }
}
