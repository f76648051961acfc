//! What every buildpack's build steps share: the push log, the unpacked stack, a scratch directory removed
//! when the build ends (also when it fails or is cancelled), build containers, copies of the app, and the
//! dependency layer's reuse.

use std::future::Future;
use std::path::{Path, PathBuf};

use build_sandbox::BuildSandbox;
use container::{BindMount, IdMap};
use image_store::{LayerInfo, LayerMode};
use stack::StackLayer;
use tokio::sync::{mpsc, OnceCell};
use vocabulary::AppName;

use crate::build::{blocking, BuildRequest, BuilderConfig};
use crate::cache::{cache_err, Cache, DependencyRecord};
use crate::step::{self, bind, StepRun};
use crate::BuildError;

/// A dependency layer for the image, and where its tree is on the host when a later step needs it.
pub struct Dependencies {
    pub layer: LayerInfo,
    pub reused: bool,
    /// The history entry of the layer.
    pub created_by: String,
    /// The installed tree for later build steps, on the host: the layer's contents, or the build tree (see
    /// [`Installed::build_dir`]).
    pub dir: PathBuf,
}

/// What a dependency install made: the image layer's tree and, when build steps need more (devDependencies),
/// the tree they use.
pub struct Installed {
    pub layer_dir: PathBuf,
    pub build_dir: Option<PathBuf>,
}

impl From<PathBuf> for Installed {
    fn from(layer_dir: PathBuf) -> Self {
        Self {
            layer_dir,
            build_dir: None,
        }
    }
}

pub struct Ctx<'a> {
    pub cfg: &'a BuilderConfig,
    pub app: &'a AppName,
    pub source_dir: &'a Path,
    pub stack: &'a StackLayer,
    pub cache: Cache,
    pub log: &'a mpsc::Sender<String>,
    /// The build's cgroup and network, which every build container joins.
    pub sandbox: &'a BuildSandbox,
    /// `.git` and what `.slugignore` leaves out, relative to the source.
    pub app_exclude: Vec<PathBuf>,
    /// The user namespace build steps run in (see `BuildRequest::id_range`).
    pub user_namespace: Option<IdMap>,
    scratch: tempfile::TempDir,
    stack_rootfs: OnceCell<PathBuf>,
    steps: std::sync::atomic::AtomicUsize,
}

impl<'a> Ctx<'a> {
    pub fn new(
        cfg: &'a BuilderConfig,
        req: &'a BuildRequest,
        stack: &'a StackLayer,
        log: &'a mpsc::Sender<String>,
        sandbox: &'a BuildSandbox,
        app_exclude: Vec<PathBuf>,
    ) -> Result<Self, BuildError> {
        let cache = Cache {
            root: cfg.cache_dir.clone(),
        };
        let tmp_parent = cache.tmp_dir();
        std::fs::create_dir_all(&tmp_parent).map_err(cache_err(&tmp_parent))?;
        // The overlays of build containers live in their mount namespaces and are gone with them.
        let scratch = tempfile::Builder::new()
            .prefix("build-")
            .tempdir_in(&tmp_parent)
            .map_err(cache_err(&tmp_parent))?;
        Ok(Self {
            cfg,
            app: &req.app,
            source_dir: &req.source_dir,
            stack,
            cache,
            log,
            sandbox,
            app_exclude,
            user_namespace: req.id_range.map(Into::into),
            scratch,
            stack_rootfs: OnceCell::new(),
            steps: Default::default(),
        })
    }

    pub async fn say(&self, line: impl Into<String>) {
        let _ = self.log.send(line.into()).await;
    }

    pub async fn warn(&self, text: impl std::fmt::Display) {
        self.say(format!("       warning: {text}")).await;
    }

    /// A new directory in the build's scratch space.
    pub fn scratch_dir(&self, name: &str) -> Result<PathBuf, BuildError> {
        let dir = self.scratch.path().join(name);
        std::fs::create_dir_all(&dir).map_err(cache_err(&dir))?;
        Ok(dir)
    }

    /// The stack unpacked once under the cache, the read-only base of build containers.
    pub async fn stack_rootfs(&self) -> Result<&Path, BuildError> {
        let dir = self
            .stack_rootfs
            .get_or_try_init(|| {
                let (store, layer) = (self.cfg.store.clone(), self.stack.layer.clone());
                let cache = Cache {
                    root: self.cache.root.clone(),
                };
                blocking(move || cache.stack_rootfs(&store, &layer))
            })
            .await?;
        Ok(dir)
    }

    /// Runs `argv` in a build container over the stack with `binds` and the per-app build cache at `/cache`.
    pub async fn run(
        &self,
        name: &str,
        mut binds: Vec<BindMount>,
        cwd: &str,
        env: &[(&str, &str)],
        argv: Vec<String>,
    ) -> Result<(), BuildError> {
        let stack_rootfs = self.stack_rootfs().await?.to_owned();
        let build_cache = self.cache.app_build_cache(self.app);
        std::fs::create_dir_all(&build_cache).map_err(cache_err(&build_cache))?;
        binds.push(bind(&build_cache, "/cache", false));
        let n = self.steps.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let scratch = self.scratch_dir(&format!("step-{n}"))?;
        step::run(
            StepRun {
                name: name.to_owned(),
                init_program: &self.cfg.init_program,
                stack_rootfs: &stack_rootfs,
                binds,
                cwd,
                env,
                argv,
                scratch: &scratch,
                timeout: self.cfg.step_timeout,
                ca_bundle: self.cfg.build_ca_bundle.as_deref(),
                sandbox: self.sandbox,
                user_namespace: self.user_namespace,
            },
            self.log,
        )
        .await
    }

    /// A copy of the source to build in, without `.git`, what `.slugignore` leaves out, and `extra`.
    pub async fn copy_app(&self, extra: &[&str]) -> Result<PathBuf, BuildError> {
        let dest = self.scratch_dir("app")?;
        let source = self.source_dir.to_owned();
        let mut exclude = self.app_exclude.clone();
        exclude.extend(extra.iter().map(PathBuf::from));
        let dest_copy = dest.clone();
        blocking(move || copy_tree(&source, &dest_copy, &exclude)).await?;
        Ok(dest)
    }

    /// The app's dependency layer for `key`: the recorded one when its inputs are unchanged (the build tree
    /// unpacked into scratch only when `need_dir`), else the one `install` makes, placed at `prefix` in the
    /// image. A separate build tree is written as a layer of its own, recorded for reuse, in no image.
    pub async fn dependencies<F, Fut, I>(
        &self,
        key: String,
        prefix: &str,
        reuse_line: &str,
        created_by: String,
        need_dir: bool,
        install: F,
    ) -> Result<Dependencies, BuildError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<I, BuildError>>,
        I: Into<Installed>,
    {
        if let Some(record) = self.cache.reusable_dependencies(self.app, &key, &self.cfg.store) {
            self.say(reuse_line).await;
            let root = self.scratch_dir("reused-deps")?;
            if need_dir {
                let store = self.cfg.store.clone();
                let tree = record.build_layer.clone().unwrap_or_else(|| record.layer.clone());
                let dest = root.clone();
                blocking(move || {
                    store
                        .unpack_layer(&tree.digest, &tree.diff_id, &dest)
                        .map_err(|source| BuildError::UnpackStack { path: dest, source })
                })
                .await?;
            }
            return Ok(Dependencies {
                layer: record.layer,
                reused: true,
                created_by,
                dir: root.join(prefix),
            });
        }
        let installed: Installed = install().await?.into();
        self.say("-----> Writing the dependencies layer").await;
        let layer = self.write_dependency_layer(&installed.layer_dir, prefix).await?;
        let build_layer = match &installed.build_dir {
            Some(dir) => Some(self.write_dependency_layer(dir, prefix).await?),
            None => None,
        };
        self.cache.record_dependencies(
            self.app,
            &DependencyRecord {
                key,
                layer: layer.clone(),
                build_layer,
            },
        )?;
        Ok(Dependencies {
            layer,
            reused: false,
            created_by,
            dir: installed.build_dir.unwrap_or(installed.layer_dir),
        })
    }

    async fn write_dependency_layer(&self, dir: &Path, prefix: &str) -> Result<LayerInfo, BuildError> {
        let (store, from, prefix) = (self.cfg.store.clone(), dir.to_owned(), prefix.to_owned());
        blocking(move || {
            store
                .write_layer_from_dir(&from, &prefix, LayerMode::Reproducible)
                .map_err(|source| BuildError::WriteLayer {
                    what: "dependencies",
                    source,
                })
        })
        .await
    }
}

/// Copies `source` into `dest` (which exists), keeping modes and symlinks (as links, never followed), leaving
/// out the relative paths in `exclude` with everything beneath them. Sockets and devices are skipped.
pub fn copy_tree(source: &Path, dest: &Path, exclude: &[PathBuf]) -> Result<(), BuildError> {
    let read_err = |path: &Path| {
        let path = path.to_owned();
        move |source: std::io::Error| BuildError::ReadSource { path, source }
    };
    let mut walk = walkdir::WalkDir::new(source).min_depth(1).into_iter();
    while let Some(entry) = walk.next() {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(source).to_owned();
            BuildError::ReadSource {
                path,
                source: e.into(),
            }
        })?;
        let rel = entry.path().strip_prefix(source).unwrap_or(entry.path());
        if exclude.iter().any(|e| e == rel) {
            if entry.file_type().is_dir() {
                walk.skip_current_dir();
            }
            continue;
        }
        let target = dest.join(rel);
        let kind = entry.file_type();
        if kind.is_dir() {
            std::fs::create_dir_all(&target).map_err(cache_err(&target))?;
            let mode = entry
                .metadata()
                .map_err(|e| read_err(entry.path())(e.into()))?
                .permissions();
            std::fs::set_permissions(&target, mode).map_err(cache_err(&target))?;
        } else if kind.is_symlink() {
            let link = std::fs::read_link(entry.path()).map_err(read_err(entry.path()))?;
            std::os::unix::fs::symlink(link, &target).map_err(cache_err(&target))?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target).map_err(cache_err(&target))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn copy_tree_keeps_links_and_modes_and_leaves_out_excluded() {
        let src = tempfile::tempdir().unwrap();
        let dest = tempfile::tempdir().unwrap();
        let s = src.path();
        std::fs::create_dir_all(s.join("bin")).unwrap();
        std::fs::create_dir_all(s.join(".git/objects")).unwrap();
        std::fs::write(s.join(".git/objects/x"), "x").unwrap();
        std::fs::write(s.join("bin/run"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(s.join("bin/run"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(s.join("art.psd"), "big").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", s.join("passwd")).unwrap();
        copy_tree(s, dest.path(), &[".git".into(), "art.psd".into()]).unwrap();
        let d = dest.path();
        assert_eq!(std::fs::read_to_string(d.join("bin/run")).unwrap(), "#!/bin/sh\n");
        assert_eq!(
            std::fs::metadata(d.join("bin/run")).unwrap().permissions().mode() & 0o777,
            0o755
        );
        assert_eq!(
            std::fs::read_link(d.join("passwd")).unwrap(),
            Path::new("/etc/passwd")
        );
        assert!(!d.join(".git").exists());
        assert!(!d.join("art.psd").exists());
    }
}
