//! The build context: resolving `COPY`/`ADD` sources inside it (never outside, not even through a symlink),
//! `.dockerignore`, staging the copied files as they will appear in the image, and their checksum.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

/// Why a copy failed: a message for the user, or an IO error on a path.
#[derive(Debug)]
pub enum CopyError {
    Refused(String),
    Io(PathBuf, std::io::Error),
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> CopyError + '_ {
    move |e| CopyError::Io(path.to_owned(), e)
}

/// `.dockerignore` patterns, in order; the last one that matches a path decides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ignore {
    patterns: Vec<(bool, String)>,
}

impl Ignore {
    pub fn parse(text: &str) -> Ignore {
        let patterns = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| match l.strip_prefix('!') {
                Some(rest) => (false, clean_pattern(rest)),
                None => (true, clean_pattern(l)),
            })
            .filter(|(_, p)| !p.is_empty())
            .collect();
        Ignore { patterns }
    }

    /// Reads `CONTEXT/.dockerignore` when there is one.
    pub fn read(context: &Path) -> Result<Ignore, CopyError> {
        let path = context.join(".dockerignore");
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => {
                let mut text = String::new();
                std::fs::File::open(&path)
                    .and_then(|f| f.take(1 << 20).read_to_string(&mut text))
                    .map_err(io_err(&path))?;
                Ok(Ignore::parse(&text))
            }
            _ => Ok(Ignore::default()),
        }
    }

    /// Whether `rel` (a path relative to the context, `/`-separated) is left out: a pattern matches the path
    /// itself or one of its parent directories.
    pub fn ignores(&self, rel: &str) -> bool {
        let mut ignored = false;
        for (exclude, pattern) in &self.patterns {
            let hit = ancestors(rel).any(|p| glob(pattern, p));
            if hit {
                ignored = *exclude;
            }
        }
        ignored
    }
}

fn clean_pattern(pattern: &str) -> String {
    pattern
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// `a/b/c`, `a/b`, `a`.
fn ancestors(rel: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(rel);
    std::iter::from_fn(move || {
        let current = next?;
        next = current.rsplit_once('/').map(|(parent, _)| parent);
        Some(current)
    })
}

/// Docker's glob: `*` and `?` within one path component, `**` across any number of them.
pub fn glob(pattern: &str, path: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some(b'*') if p.get(1) == Some(&b'*') => {
                let rest = p[2..].strip_prefix(b"/").unwrap_or(&p[2..]);
                if rest.is_empty() {
                    return true;
                }
                (0..=s.len()).any(|i| (i == 0 || s[i - 1] == b'/') && go(rest, &s[i..])) || go(rest, s)
            }
            Some(b'*') => (0..=s.len())
                .take_while(|&i| i == 0 || s[i - 1] != b'/')
                .any(|i| go(&p[1..], &s[i..])),
            Some(b'?') => s.first().is_some_and(|c| *c != b'/') && go(&p[1..], &s[1..]),
            Some(c) => s.first() == Some(c) && go(&p[1..], &s[1..]),
        }
    }
    go(pattern.as_bytes(), path.as_bytes())
}

/// Lexically cleans a source path into components relative to the context (absolute sources are relative to
/// it, as in Docker); `None` when it climbs out.
fn clean_relative(source: &str) -> Option<Vec<String>> {
    let mut parts: Vec<String> = Vec::new();
    for component in Path::new(source).components() {
        match component {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Normal(name) => parts.push(name.to_string_lossy().into_owned()),
        }
    }
    Some(parts)
}

/// The real path of `parts` under `context`, following symlinks only while they stay inside it.
fn resolve(context: &Path, parts: &[String], source: &str) -> Result<PathBuf, CopyError> {
    let outside = || CopyError::Refused(format!("{source} is outside the build context"));
    let mut resolved: Vec<String> = Vec::new();
    let mut pending: Vec<String> = parts.iter().rev().cloned().collect();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop().ok_or_else(outside)?;
            continue;
        }
        if part == "." {
            continue;
        }
        resolved.push(part);
        let path: PathBuf = std::iter::once(context.to_owned())
            .chain(resolved.iter().map(PathBuf::from))
            .collect();
        let meta = std::fs::symlink_metadata(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                CopyError::Refused(format!("{source} does not exist in the build context"))
            }
            _ => CopyError::Io(path.clone(), e),
        })?;
        if meta.file_type().is_symlink() {
            hops += 1;
            if hops > 40 {
                return Err(CopyError::Refused(format!("{source}: too many symlinks")));
            }
            let target = std::fs::read_link(&path).map_err(io_err(&path))?;
            if target.is_absolute() {
                return Err(CopyError::Refused(format!(
                    "{source} is a symlink pointing out of the build context ({})",
                    target.display()
                )));
            }
            resolved.pop();
            let target_parts: Vec<String> = target
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            pending.extend(target_parts.into_iter().rev());
        }
    }
    Ok(std::iter::once(context.to_owned())
        .chain(resolved.iter().map(PathBuf::from))
        .collect())
}

/// Expands a source with a wildcard in its last component into the matching names (sorted).
fn expand_source(context: &Path, source: &str) -> Result<Vec<Vec<String>>, CopyError> {
    let outside = || CopyError::Refused(format!("{source} is outside the build context"));
    let parts = clean_relative(source).ok_or_else(outside)?;
    let Some(last) = parts.last().filter(|l| l.contains(['*', '?'])) else {
        return Ok(vec![parts]);
    };
    if parts[..parts.len() - 1].iter().any(|p| p.contains(['*', '?'])) {
        return Err(CopyError::Refused(format!(
            "{source}: wildcards are supported in the last part of a path only"
        )));
    }
    let parent = &parts[..parts.len() - 1];
    let dir = resolve(context, parent, source)?;
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(io_err(&dir))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| glob(last, name))
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(CopyError::Refused(format!(
            "{source} matches no files in the build context"
        )));
    }
    Ok(names
        .into_iter()
        .map(|n| parent.iter().cloned().chain([n]).collect())
        .collect())
}

/// Stages `sources` for `COPY sources... dest` (dest absolute in the image) under `stage`, as the files will
/// be in the image, leaving out what `.dockerignore` excludes. With `extract_archives` (`ADD`), a source
/// that is a tar archive (plain or gzip) is unpacked into the destination directory instead.
pub fn stage_copy(
    context: &Path,
    sources: &[String],
    dest: &str,
    stage: &Path,
    ignore: &Ignore,
    extract_archives: bool,
) -> Result<(), CopyError> {
    let dest_parts =
        clean_relative(dest).ok_or_else(|| CopyError::Refused(format!("bad destination {dest}")))?;
    let dest_dir_form = dest.ends_with('/') || dest.ends_with("/.") || dest_parts.is_empty();
    let mut matched = Vec::new();
    for source in sources {
        matched.extend(expand_source(context, source)?.into_iter().map(|p| (source, p)));
    }
    let many = matched.len() > 1;
    if many && !dest_dir_form {
        return Err(CopyError::Refused(format!(
            "with several sources the destination must be a directory ending in /, not {dest}"
        )));
    }
    let dest_path: PathBuf = std::iter::once(stage.to_owned())
        .chain(dest_parts.iter().map(PathBuf::from))
        .collect();
    for (source, parts) in matched {
        let real = resolve(context, &parts, source)?;
        let rel = parts.join("/");
        let meta = std::fs::metadata(&real).map_err(io_err(&real))?;
        if meta.is_dir() {
            create_dirs(&dest_path)?;
            copy_tree(context, &real, &dest_path, ignore)?;
        } else {
            if ignore.ignores(&rel) {
                return Err(CopyError::Refused(format!(
                    "{source} is excluded by .dockerignore"
                )));
            }
            if extract_archives && is_archive(&real)? {
                create_dirs(&dest_path)?;
                extract(&real, &dest_path, source)?;
                continue;
            }
            let target = if dest_dir_form || many {
                dest_path.join(parts.last().map(String::as_str).unwrap_or("file"))
            } else {
                dest_path.clone()
            };
            create_dirs(target.parent().expect("a staged file has a parent"))?;
            copy_file(&real, &target)?;
        }
    }
    Ok(())
}

/// Whether `path` starts like a gzip stream or has a tar header (`ustar` at offset 257).
fn is_archive(path: &Path) -> Result<bool, CopyError> {
    let mut head = [0u8; 262];
    let mut file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut read = 0;
    while read < head.len() {
        match file.read(&mut head[read..]).map_err(io_err(path))? {
            0 => break,
            n => read += n,
        }
    }
    let gzip = read >= 2 && head[..2] == [0x1f, 0x8b];
    let tar = read >= 262 && &head[257..262] == b"ustar";
    Ok(gzip || tar)
}

/// Unpacks the archive `path` into `dest` (entries that would leave it are refused by the tar crate);
/// owners and modes are normalized when the layer is written anyway.
fn extract(path: &Path, dest: &Path, source: &str) -> Result<(), CopyError> {
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut buffered = std::io::BufReader::new(file);
    let gzip = {
        let head = std::io::BufRead::fill_buf(&mut buffered).map_err(io_err(path))?;
        head.starts_with(&[0x1f, 0x8b])
    };
    let reader: Box<dyn Read> = if gzip {
        Box::new(flate2::read::GzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_ownerships(false);
    archive.set_preserve_permissions(true);
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(true);
    let entries = archive.entries().map_err(io_err(path))?;
    for entry in entries {
        let mut entry = entry.map_err(io_err(path))?;
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir() || kind.is_symlink() || kind.is_hard_link()) {
            continue;
        }
        if !entry.unpack_in(dest).map_err(io_err(path))? {
            return Err(CopyError::Refused(format!(
                "ADD {source}: the archive has an entry that leaves its destination"
            )));
        }
    }
    Ok(())
}

fn create_dirs(dir: &Path) -> Result<(), CopyError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))
}

fn copy_file(from: &Path, to: &Path) -> Result<(), CopyError> {
    if std::fs::symlink_metadata(to).is_ok_and(|m| m.is_dir()) {
        return Err(CopyError::Refused(format!(
            "cannot copy a file over the directory {}",
            to.display()
        )));
    }
    std::fs::copy(from, to).map_err(io_err(from))?;
    Ok(())
}

/// Copies the contents of `dir` into `dest`: symlinks are copied as links (never followed), sockets and
/// devices are left out.
fn copy_tree(context: &Path, dir: &Path, dest: &Path, ignore: &Ignore) -> Result<(), CopyError> {
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            let rel = e.path().strip_prefix(context).unwrap_or(e.path());
            !ignore.ignores(&rel.to_string_lossy())
        });
    for entry in walker {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(dir).to_owned();
            CopyError::Io(path, e.into())
        })?;
        let rel = entry
            .path()
            .strip_prefix(dir)
            .expect("walkdir yields paths under its root");
        let target = dest.join(rel);
        let file_type = entry.file_type();
        if file_type.is_dir() {
            create_dirs(&target)?;
        } else if file_type.is_symlink() {
            let link = std::fs::read_link(entry.path()).map_err(io_err(entry.path()))?;
            let _ = std::fs::remove_file(&target);
            std::os::unix::fs::symlink(&link, &target).map_err(io_err(&target))?;
        } else if file_type.is_file() {
            copy_file(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// The checksum of a staged tree: names, kinds, executable bits, link targets and contents, in order. What a
/// reproducible layer of it holds, so equal checksums mean equal layers.
pub fn checksum(stage: &Path) -> Result<String, CopyError> {
    let mut hasher = Sha256::new();
    let mut part = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    };
    for entry in walkdir::WalkDir::new(stage)
        .follow_links(false)
        .min_depth(1)
        .sort_by_file_name()
    {
        let entry = entry.map_err(|e| CopyError::Io(stage.to_owned(), e.into()))?;
        let rel = entry.path().strip_prefix(stage).expect("under the root");
        part(rel.as_os_str().as_encoded_bytes());
        let meta = entry
            .metadata()
            .map_err(|e| CopyError::Io(entry.path().to_owned(), e.into()))?;
        if meta.is_dir() {
            part(b"dir");
        } else if meta.file_type().is_symlink() {
            let link = std::fs::read_link(entry.path()).map_err(io_err(entry.path()))?;
            part(b"link");
            part(link.as_os_str().as_encoded_bytes());
        } else {
            let exec = meta.permissions().mode() & 0o111 != 0;
            part(if exec { b"exec" } else { b"file" });
            let mut file = std::fs::File::open(entry.path()).map_err(io_err(entry.path()))?;
            let mut content = Sha256::new();
            std::io::copy(&mut file, &mut content).map_err(io_err(entry.path()))?;
            part(&content.finalize());
        }
    }
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let cases: &[(&str, &str, bool)] = &[
            ("*.txt", "a.txt", true),
            ("*.txt", "dir/a.txt", false),
            ("*/a.txt", "dir/a.txt", true),
            ("**/a.txt", "a.txt", true),
            ("**/a.txt", "x/y/a.txt", true),
            ("x/**", "x/y/z", true),
            ("a?c", "abc", true),
            ("a?c", "a/c", false),
            ("node_modules", "node_modules", true),
            ("node_modules", "node_modules2", false),
        ];
        for (pattern, path, expected) in cases {
            assert_eq!(glob(pattern, path), *expected, "{pattern} vs {path}");
        }
    }

    #[test]
    fn dockerignore() {
        let ignore = Ignore::parse("# comment\n.git\n*.pyc\n/build/\n!build/keep.txt\n**/secret\n");
        let cases: &[(&str, bool)] = &[
            (".git", true),
            (".git/config", true),
            ("a.pyc", true),
            ("src/a.pyc", false),
            ("build/out", true),
            ("build/keep.txt", false),
            ("deep/down/secret", true),
            ("app.py", false),
        ];
        for (path, expected) in cases {
            assert_eq!(ignore.ignores(path), *expected, "{path}");
        }
    }

    #[test]
    fn sources_stay_inside_the_context() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = tmp.path().join("ctx");
        std::fs::create_dir_all(ctx.join("sub")).unwrap();
        std::fs::write(ctx.join("sub/file"), "x").unwrap();
        std::fs::write(tmp.path().join("secret"), "host file").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", ctx.join("abs")).unwrap();
        std::os::unix::fs::symlink("../secret", ctx.join("up")).unwrap();
        std::os::unix::fs::symlink("sub/file", ctx.join("inside")).unwrap();
        let stage = tmp.path().join("stage");
        let refused = |source: &str| match stage_copy(
            &ctx,
            &[source.to_owned()],
            "/x",
            &stage,
            &Ignore::default(),
            false,
        ) {
            Err(CopyError::Refused(message)) => message,
            other => panic!("{source}: {other:?}"),
        };
        assert!(refused("../secret").contains("outside the build context"));
        assert!(refused("sub/../../secret").contains("outside the build context"));
        assert!(refused("up").contains("outside the build context"));
        assert!(refused("abs").contains("symlink pointing out"));
        assert!(refused("missing").contains("does not exist"));
        assert!(refused("*.none").contains("matches no files"));
        stage_copy(&ctx, &["inside".into()], "/x", &stage, &Ignore::default(), false).unwrap();
        assert_eq!(std::fs::read_to_string(stage.join("x")).unwrap(), "x");
    }

    /// A gzip tar of raw (name, content) entries, names written as they are (the tar crate refuses `..`).
    fn raw_tar_gz(path: &Path, entries: &[(&str, &str)]) {
        let mut tar = tar::Builder::new(Vec::new());
        for (name, content) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            header.set_size(content.len() as u64);
            let field = &mut header.as_old_mut().name;
            field[..name.len()].copy_from_slice(name.as_bytes());
            header.set_cksum();
            tar.append(&header, content.as_bytes()).unwrap();
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar.into_inner().unwrap()).unwrap();
        std::fs::write(path, gz.finish().unwrap()).unwrap();
    }

    #[test]
    fn add_unpacks_archives_but_never_outside_the_destination() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = tmp.path().join("ctx");
        std::fs::create_dir(&ctx).unwrap();
        raw_tar_gz(&ctx.join("good.tgz"), &[("lib/a.txt", "a")]);
        raw_tar_gz(&ctx.join("evil.tgz"), &[("../../escaped", "x")]);
        std::fs::write(ctx.join("plain.txt"), "not an archive").unwrap();
        let stage = tmp.path().join("stage");
        let add = |source: &str| {
            stage_copy(
                &ctx,
                &[source.to_owned()],
                "/opt/",
                &stage,
                &Ignore::default(),
                true,
            )
        };
        add("good.tgz").unwrap();
        assert_eq!(std::fs::read_to_string(stage.join("opt/lib/a.txt")).unwrap(), "a");
        add("plain.txt").unwrap();
        assert!(
            stage.join("opt/plain.txt").is_file(),
            "a file that is no archive is copied"
        );
        match add("evil.tgz") {
            Err(CopyError::Refused(message)) => {
                assert!(message.contains("leaves its destination"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        assert!(!tmp.path().join("escaped").exists());
        assert!(!stage.join("escaped").exists());
        // COPY never unpacks.
        stage_copy(
            &ctx,
            &["good.tgz".into()],
            "/copy/",
            &stage,
            &Ignore::default(),
            false,
        )
        .unwrap();
        assert!(stage.join("copy/good.tgz").is_file());
    }

    #[test]
    fn staging_follows_docker_rules() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = tmp.path().join("ctx");
        for (path, content) in [
            ("app.py", "print(1)"),
            ("req.txt", "six"),
            ("src/a.py", "a"),
            ("src/cache.pyc", "junk"),
            (".dockerignore", "*.pyc\n**/*.pyc\n"),
        ] {
            let path = ctx.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        std::os::unix::fs::symlink("/usr/bin/python3", ctx.join("src/py")).unwrap();
        let ignore = Ignore::read(&ctx).unwrap();
        let staged = |sources: &[&str], dest: &str| {
            let stage = tempfile::tempdir_in(tmp.path()).unwrap();
            let sources: Vec<String> = sources.iter().map(|s| s.to_string()).collect();
            stage_copy(&ctx, &sources, dest, stage.path(), &ignore, false).unwrap();
            let mut found: Vec<String> = walkdir::WalkDir::new(stage.path())
                .min_depth(1)
                .into_iter()
                .map(|e| {
                    e.unwrap()
                        .path()
                        .strip_prefix(stage.path())
                        .unwrap()
                        .display()
                        .to_string()
                })
                .collect();
            found.sort();
            (found, checksum(stage.path()).unwrap())
        };
        let (files, sum) = staged(&["app.py"], "/app/main.py");
        assert_eq!(files, ["app", "app/main.py"]);
        assert_eq!(staged(&["app.py"], "/app/main.py").1, sum, "checksums are stable");
        assert_ne!(staged(&["req.txt"], "/app/main.py").1, sum);
        assert_eq!(
            staged(&["app.py", "req.txt"], "/app/").0,
            ["app", "app/app.py", "app/req.txt"]
        );
        assert_eq!(staged(&["*.py"], "/app/").0, ["app", "app/app.py"]);
        assert_eq!(staged(&["src"], "/srv").0, ["srv", "srv/a.py", "srv/py"]);
        let (all, _) = staged(&["."], "/app");
        assert!(all.contains(&"app/src/py".to_owned()), "{all:?}");
        assert!(!all.iter().any(|f| f.ends_with(".pyc")), "{all:?}");
        let stage = tmp.path().join("several");
        let err = stage_copy(
            &ctx,
            &["app.py".into(), "req.txt".into()],
            "/app",
            &stage,
            &ignore,
            false,
        )
        .unwrap_err();
        assert!(matches!(err, CopyError::Refused(m) if m.contains("must be a directory")));
    }
}
