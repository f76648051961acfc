//! The container's root filesystem: overlay of the layers, bind mounts, a fresh `/proc`, a minimal `/dev`,
//! read-only `/sys` with the container's own cgroups, `/tmp`, then `pivot_root`.
//!
//! Everything is mounted inside the container's private mount namespace. The rootfs content comes from tenant
//! images, so mount points are created with [`mkdir_in`], which refuses to follow symlinks: a hostile image
//! must not make us create directories on the host's filesystem.

use std::fs::File;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::{Component, Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::unistd::{fchdir, pivot_root};

use super::{fail, userns, Context, SetupError};
use crate::ContainerSpec;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// A cgroup hierarchy to show inside the container, found from one of the spec's cgroup directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupHierarchy {
    /// `cgroup` (v1) or `cgroup2`.
    pub fstype: String,
    /// The hierarchy's mount options without `rw`/`ro` (such as `memory` or `cpu,cpuacct`).
    pub options: String,
    /// Where it is mounted below `/sys/fs/cgroup` (empty for a pure v2 host).
    pub relative: PathBuf,
}

/// Finds, in `/proc/self/mountinfo`, the hierarchy each cgroup directory belongs to.
pub fn cgroup_hierarchies(dirs: &[PathBuf]) -> Result<Vec<CgroupHierarchy>, SetupError> {
    if dirs.is_empty() {
        return Ok(Vec::new());
    }
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").ctx(|| "reading /proc/self/mountinfo".into())?;
    parse_hierarchies(&mountinfo, dirs)
}

fn parse_hierarchies(mountinfo: &str, dirs: &[PathBuf]) -> Result<Vec<CgroupHierarchy>, SetupError> {
    // (mount point, fstype, super options) of every cgroup mount.
    let mounts: Vec<(PathBuf, &str, &str)> = mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mount_point = left.split(' ').nth(4)?;
            let mut right = right.split(' ');
            let fstype = right.next()?;
            let super_options = right.nth(1)?;
            matches!(fstype, "cgroup" | "cgroup2")
                .then(|| (PathBuf::from(mount_point), fstype, super_options))
        })
        .collect();
    let mut found: Vec<CgroupHierarchy> = Vec::new();
    for dir in dirs {
        let Some((mount_point, fstype, options)) = mounts
            .iter()
            .filter(|(mp, _, _)| dir.starts_with(mp))
            .max_by_key(|(mp, _, _)| mp.as_os_str().len())
        else {
            return fail(format!("{} is not in a cgroup hierarchy", dir.display()));
        };
        let relative = match mount_point.strip_prefix(CGROUP_ROOT) {
            Ok(relative) => relative.to_owned(),
            Err(_) => PathBuf::from(mount_point.file_name().unwrap_or_default()),
        };
        let options = options
            .split(',')
            .filter(|o| !matches!(*o, "rw" | "ro"))
            .collect::<Vec<_>>()
            .join(",");
        let hierarchy = CgroupHierarchy {
            fstype: fstype.to_string(),
            options,
            relative,
        };
        if !found.contains(&hierarchy) {
            found.push(hierarchy);
        }
    }
    Ok(found)
}

fn do_mount(
    source: &str,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), SetupError> {
    mount(Some(source), target, fstype, flags, data)
        .ctx(|| format!("mounting {source} at {}", target.display()))
}

fn bind(source: &Path, target: &Path, flags: MsFlags) -> Result<(), SetupError> {
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND | flags,
        None::<&str>,
    )
    .ctx(|| format!("bind-mounting {} at {}", source.display(), target.display()))
}

fn remount_read_only(target: &Path, flags: MsFlags) -> Result<(), SetupError> {
    let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | flags;
    mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
        .ctx(|| format!("remounting {} read-only", target.display()))
}

/// Creates `relative` below `root` one component at a time, refusing symlinks and non-directories, and
/// returns the full path.
pub fn mkdir_in(root: &Path, relative: &Path) -> Result<PathBuf, SetupError> {
    let mut path = root.to_path_buf();
    for component in relative.components() {
        match component {
            Component::RootDir | Component::CurDir => continue,
            Component::Normal(name) => path.push(name),
            _ => {
                return fail(format!(
                    "refusing path {} inside the container",
                    relative.display()
                ))
            }
        }
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return fail(format!("{} exists and is not a directory", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&path).ctx(|| format!("creating {}", path.display()))?
            }
            Err(e) => return Err(e).ctx(|| format!("inspecting {}", path.display())),
        }
    }
    Ok(path)
}

/// Creates an empty file at `relative` below `root` (as a bind mount target for a file), parents as
/// [`mkdir_in`].
fn touch_in(root: &Path, relative: &Path) -> Result<PathBuf, SetupError> {
    let parent = mkdir_in(root, relative.parent().unwrap_or(Path::new("/")))?;
    let Some(name) = relative.file_name() else {
        return fail(format!("bad bind target {}", relative.display()));
    };
    let path = parent.join(name);
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_file() => Ok(path),
        Ok(_) => fail(format!("{} exists and is not a file", path.display())),
        Err(_) => {
            File::create(&path).ctx(|| format!("creating {}", path.display()))?;
            Ok(path)
        }
    }
}

/// The overlay's directories as the kernel is to see them: the spec's own, or idmapped copies.
struct OverlayDirs {
    layers: Vec<PathBuf>,
    upper: PathBuf,
    work: PathBuf,
}

/// Builds the root filesystem and `pivot_root`s into it. Runs in PID 1, in the new mount namespace.
///
/// With a user namespace, the layers and the upper directory are first shown through idmapped mounts on a
/// private tmpfs at `spec.rootfs` (the staging area), and the overlay is mounted at `root` inside it; the
/// staging area disappears with the old root after `pivot_root`.
pub fn build_root(
    spec: &ContainerSpec,
    hierarchies: &[CgroupHierarchy],
    userns: Option<BorrowedFd<'_>>,
) -> Result<(), SetupError> {
    // Nothing we mount may propagate back to the host's mount namespace.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .ctx(|| "making / private".into())?;
    let rootfs = &spec.rootfs;
    std::fs::create_dir_all(rootfs).ctx(|| format!("creating {}", rootfs.display()))?;
    let (root, dirs) = match userns {
        None => (
            rootfs.clone(),
            OverlayDirs {
                layers: spec.layers.clone(),
                upper: spec.upper_dir.clone(),
                work: spec.work_dir.clone(),
            },
        ),
        Some(userns) => stage_idmapped(spec, userns)?,
    };
    do_mount(
        "overlay",
        &root,
        Some("overlay"),
        MsFlags::empty(),
        Some(&overlay_options(&dirs)?),
    )?;

    for b in &spec.binds {
        let target = if b.source.is_dir() {
            mkdir_in(&root, &b.target)?
        } else {
            touch_in(&root, &b.target)?
        };
        match userns {
            None => bind(&b.source, &target, MsFlags::MS_REC)?,
            Some(userns) => userns::attach(userns::idmapped_tree(&b.source, userns, true)?, &target)?,
        }
        if b.read_only {
            remount_read_only(&target, MsFlags::MS_NOSUID | MsFlags::MS_NODEV)?;
        }
    }
    let root = root.as_path();

    let hardened = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    // A fresh proc for the new PID namespace: the app sees only its own processes.
    do_mount(
        "proc",
        &mkdir_in(root, Path::new("proc"))?,
        Some("proc"),
        hardened,
        None,
    )?;
    mount_dev(root)?;
    mount_sys(root, hierarchies)?;
    super::masks::apply(root)?;
    let tmp = mkdir_in(root, Path::new("tmp"))?;
    do_mount(
        "tmpfs",
        &tmp,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777"),
    )?;
    enter_root(root)
}

/// Mounts the staging tmpfs at `spec.rootfs` and attaches idmapped copies of each layer (`l0`, `l1`, ...) and
/// of the directory holding the upper and work directories (`u`: overlayfs wants both on the same mount).
/// Returns where the overlay goes and the directories it is to use.
fn stage_idmapped(spec: &ContainerSpec, ns: BorrowedFd<'_>) -> Result<(PathBuf, OverlayDirs), SetupError> {
    let staging = &spec.rootfs;
    do_mount(
        "tmpfs",
        staging,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=700"),
    )?;
    let attach_at = |source: &Path, name: &str| -> Result<PathBuf, SetupError> {
        let tree = userns::idmapped_tree(source, ns, false)?;
        let target = mkdir_in(staging, Path::new(name))?;
        userns::attach(tree, &target)?;
        Ok(target)
    };
    let layers = spec
        .layers
        .iter()
        .enumerate()
        .map(|(i, layer)| attach_at(layer, &format!("l{i}")))
        .collect::<Result<_, _>>()?;
    let parent = common_ancestor(&spec.upper_dir, &spec.work_dir);
    let upper_parent = attach_at(&parent, "u")?;
    let inside = |dir: &Path| upper_parent.join(dir.strip_prefix(&parent).unwrap_or(dir));
    let dirs = OverlayDirs {
        layers,
        upper: inside(&spec.upper_dir),
        work: inside(&spec.work_dir),
    };
    Ok((mkdir_in(staging, Path::new("root"))?, dirs))
}

/// The deepest directory that contains both (absolute) paths.
fn common_ancestor(a: &Path, b: &Path) -> PathBuf {
    a.components()
        .zip(b.components())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x)
        .collect()
}

/// `lowerdir` lists the top-most layer first, the reverse of the spec's order.
fn overlay_options(dirs: &OverlayDirs) -> Result<String, SetupError> {
    let all = dirs.layers.iter().chain([&dirs.upper, &dirs.work]);
    if let Some(bad) = all
        .map(|p| p.to_string_lossy())
        .find(|p| p.contains([':', ',', '\\']))
    {
        return fail(format!("overlay path {bad} contains ':', ',' or '\\'"));
    }
    let lower: Vec<_> = dirs.layers.iter().rev().map(|p| p.to_string_lossy()).collect();
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        dirs.upper.display(),
        dirs.work.display()
    );
    // The kernel takes mount options in one page.
    if options.len() >= 4096 {
        return fail(format!(
            "overlay options too long ({} bytes, {} layers)",
            options.len(),
            dirs.layers.len()
        ));
    }
    Ok(options)
}

fn mount_dev(root: &Path) -> Result<(), SetupError> {
    let dev = mkdir_in(root, Path::new("dev"))?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME;
    do_mount("tmpfs", &dev, Some("tmpfs"), flags, Some("mode=755,size=65536k"))?;
    // Bind mounts of the host's nodes rather than mknod: the same works later inside a user namespace.
    for name in DEVICES {
        let node = dev.join(name);
        File::create(&node).ctx(|| format!("creating {}", node.display()))?;
        bind(&Path::new("/dev").join(name), &node, MsFlags::empty())?;
    }
    let pts = dev.join("pts");
    std::fs::create_dir(&pts).ctx(|| "creating /dev/pts".into())?;
    let pts_options = "newinstance,ptmxmode=0666,mode=0620";
    do_mount(
        "devpts",
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some(pts_options),
    )?;
    let shm = dev.join("shm");
    std::fs::create_dir(&shm).ctx(|| "creating /dev/shm".into())?;
    let hardened = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    do_mount(
        "shm",
        &shm,
        Some("tmpfs"),
        hardened,
        Some("mode=1777,size=65536k"),
    )?;
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(target, dev.join(link)).ctx(|| format!("linking /dev/{link}"))?;
    }
    Ok(())
}

fn mount_sys(root: &Path, hierarchies: &[CgroupHierarchy]) -> Result<(), SetupError> {
    let sys = mkdir_in(root, Path::new("sys"))?;
    let read_only = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if mount(Some("sysfs"), &sys, Some("sysfs"), read_only, None::<&str>).is_err() {
        // A fresh sysfs needs a network namespace of our own; with the host's, show the host's (read-only,
        // and without its submounts such as the host's cgroups).
        bind(Path::new("/sys"), &sys, MsFlags::empty())?;
        remount_read_only(&sys, MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC)?;
    }
    if hierarchies.is_empty() {
        return Ok(());
    }
    // Inside the cgroup namespace, each hierarchy's root is the container's own cgroup.
    let cgroup = mkdir_in(root, Path::new(CGROUP_ROOT))?;
    if let [single] = hierarchies {
        if single.relative.as_os_str().is_empty() {
            return do_mount(
                "cgroup2",
                &cgroup,
                Some(&single.fstype),
                read_only,
                Some(&single.options),
            );
        }
    }
    do_mount(
        "tmpfs",
        &cgroup,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=755"),
    )?;
    for h in hierarchies {
        let target = mkdir_in(&cgroup, &h.relative)?;
        do_mount("cgroup", &target, Some(&h.fstype), read_only, Some(&h.options))?;
        // `cpu,cpuacct` is also reachable as `cpu` and `cpuacct`, as on the host.
        let name = h.relative.to_string_lossy();
        if name.contains(',') {
            for part in name.split(',') {
                let link = cgroup.join(part);
                if !link.exists() {
                    std::os::unix::fs::symlink(&*name, &link)
                        .ctx(|| format!("linking {}", link.display()))?;
                }
            }
        }
    }
    mount(
        None::<&str>,
        &cgroup,
        None::<&str>,
        MsFlags::MS_REMOUNT | read_only,
        Some("mode=755"),
    )
    .ctx(|| "remounting /sys/fs/cgroup read-only".into())
}

/// `pivot_root(".", ".")` stacks the old root on top of the new one, so detaching it leaves the new root
/// without needing a `put_old` directory inside the image (runc does the same).
fn enter_root(root: &Path) -> Result<(), SetupError> {
    let old_root = File::open("/").ctx(|| "opening /".into())?;
    let new_root = File::open(root).ctx(|| format!("opening {}", root.display()))?;
    fchdir(new_root.as_raw_fd()).ctx(|| "entering the new root".into())?;
    pivot_root(".", ".").ctx(|| format!("pivot_root into {}", root.display()))?;
    fchdir(old_root.as_raw_fd()).ctx(|| "entering the old root".into())?;
    // The old root's mounts must not propagate their unmount to anyone else.
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| "making the old root a slave".into())?;
    umount2(".", MntFlags::MNT_DETACH).ctx(|| "detaching the old root".into())?;
    nix::unistd::chdir("/").ctx(|| "changing to /".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/cpu,cpuacct2 rw,relatime shared:9 - cgroup cgroup rw,cpu2,cpuacct2
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
";
    const PURE_V2: &str = "30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";

    fn h(fstype: &str, options: &str, relative: &str) -> CgroupHierarchy {
        CgroupHierarchy {
            fstype: fstype.into(),
            options: options.into(),
            relative: relative.into(),
        }
    }

    #[test]
    fn finds_hierarchies() {
        let cases: Vec<(&str, Vec<&str>, Vec<CgroupHierarchy>)> = vec![
            (
                HYBRID,
                vec![
                    "/sys/fs/cgroup/memory/b/i1",
                    "/sys/fs/cgroup/cpu/b/i1",
                    "/sys/fs/cgroup/memory/b/i1",
                ],
                vec![h("cgroup", "memory", "memory"), h("cgroup", "cpu", "cpu")],
            ),
            (
                HYBRID,
                vec!["/sys/fs/cgroup/cpu,cpuacct2/x"],
                vec![h("cgroup", "cpu2,cpuacct2", "cpu,cpuacct2")],
            ),
            (
                HYBRID,
                vec!["/sys/fs/cgroup/unified/x"],
                vec![h("cgroup2", "nsdelegate", "unified")],
            ),
            (
                PURE_V2,
                vec!["/sys/fs/cgroup/b/i1"],
                vec![h("cgroup2", "nsdelegate", "")],
            ),
        ];
        for (mountinfo, dirs, want) in cases {
            let dirs: Vec<PathBuf> = dirs.into_iter().map(PathBuf::from).collect();
            assert_eq!(parse_hierarchies(mountinfo, &dirs).unwrap(), want, "{dirs:?}");
        }
        assert!(parse_hierarchies(HYBRID, &[PathBuf::from("/tmp/x")]).is_err());
    }

    #[test]
    fn overlay_lists_top_layer_first() {
        let dirs = OverlayDirs {
            layers: vec!["/l/base".into(), "/l/app".into()],
            upper: "/i/upper".into(),
            work: "/i/work".into(),
        };
        assert_eq!(
            overlay_options(&dirs).unwrap(),
            "lowerdir=/l/app:/l/base,upperdir=/i/upper,workdir=/i/work"
        );
        let bad = OverlayDirs {
            layers: vec!["/l/a:b".into()],
            ..dirs
        };
        assert!(overlay_options(&bad).is_err());
    }

    #[test]
    fn common_ancestors() {
        let cases = [
            ("/i/1/upper", "/i/1/work", "/i/1"),
            ("/i/upper", "/j/work", "/"),
            ("/a/b/c", "/a/b", "/a/b"),
        ];
        for (a, b, want) in cases {
            assert_eq!(
                common_ancestor(Path::new(a), Path::new(b)),
                Path::new(want),
                "{a} {b}"
            );
        }
    }
}
