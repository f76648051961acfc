//! The on-disk copy of the last route table, so a restarted router serves at once.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use route_table::RouteTable;

use crate::FollowError;

/// A route table file (the same JSON the API streams, and that `berth router --routes-file` serves).
#[derive(Debug, Clone)]
pub struct Cache {
    path: PathBuf,
}

impl Cache {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cached table; `None` when there is no file yet.
    pub fn load(&self) -> Result<Option<RouteTable>, FollowError> {
        let text = match std::fs::read(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(FollowError::ReadCache {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|source| FollowError::CorruptCache {
                path: self.path.clone(),
                source,
            })
    }

    /// Replaces the file atomically: a temporary file beside it (mode 0600, as the table holds private keys),
    /// synced, then renamed over it. A crash leaves the old table or the new one, never half of one.
    pub fn store(&self, table: &RouteTable) -> Result<(), FollowError> {
        let write_error = |source| FollowError::WriteCache {
            path: self.path.clone(),
            source,
        };
        let mut tmp_name = self.path.file_name().unwrap_or_default().to_owned();
        tmp_name.push(format!(".tmp-{}", std::process::id()));
        let tmp = self.path.with_file_name(tmp_name);
        let result = (|| {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            let json = serde_json::to_vec(table).map_err(std::io::Error::other)?;
            file.write_all(&json)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(write_error)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn store_then_load_round_trips_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("routes.json"));
        assert!(cache.load().unwrap().is_none());
        let mut table = RouteTable {
            version: 42,
            ..RouteTable::default()
        };
        table.insert_host("shop.test", "shop");
        cache.store(&table).unwrap();
        assert_eq!(cache.load().unwrap(), Some(table.clone()));
        let mode = std::fs::metadata(cache.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        table.version = 43;
        cache.store(&table).unwrap();
        assert_eq!(cache.load().unwrap().unwrap().version, 43);
        // Nothing left beside it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_corrupt_cache_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routes.json");
        std::fs::write(&path, "{not json").unwrap();
        let err = Cache::new(&path).load().unwrap_err();
        assert!(matches!(err, FollowError::CorruptCache { .. }), "{err}");
        assert!(err.to_string().contains("routes.json"), "{err}");
    }

    #[test]
    fn an_unwritable_cache_is_an_error_naming_the_path() {
        let cache = Cache::new("/nonexistent-dir/routes.json");
        let err = cache.store(&RouteTable::default()).unwrap_err();
        assert!(err.to_string().contains("/nonexistent-dir/routes.json"), "{err}");
    }
}
