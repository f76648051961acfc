//! Fresh databases for tests, on either backend, for this crate's tests and those of crates that open a store
//! (controller, api). Not used by the platform itself.
//!
//! PostgreSQL tests need `BERTH_TEST_POSTGRES_URL`: a URL whose role may `CREATE DATABASE` (for example
//! `postgres://berth_test:PASSWORD@127.0.0.1/postgres`). Each [`TestDatabase`] on it creates
//! `berth_test_<random>` and drops it again when dropped.

use std::path::Path;

use sqlx::{Connection, Executor};

use crate::{Store, StoreError};

/// The variable naming the PostgreSQL server tests may create databases on.
pub const POSTGRES_URL_VAR: &str = "BERTH_TEST_POSTGRES_URL";

/// The variable that makes [`TestDatabase::from_env`] pick PostgreSQL (`postgres`) rather than SQLite.
pub const BACKEND_VAR: &str = "BERTH_TEST_BACKEND";

/// A store on a database made for one test; dropping it drops a PostgreSQL database.
pub struct TestDatabase {
    pub store: Store,
    /// The server's URL and the database made on it.
    postgres: Option<(String, String)>,
}

impl std::ops::Deref for TestDatabase {
    type Target = Store;

    fn deref(&self) -> &Store {
        &self.store
    }
}

impl TestDatabase {
    /// A SQLite file at `path` (the caller keeps its directory).
    pub async fn sqlite(path: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            store: Store::open_sqlite(path).await?,
            postgres: None,
        })
    }

    /// The URL of [`POSTGRES_URL_VAR`], if set.
    pub fn postgres_url() -> Option<String> {
        std::env::var(POSTGRES_URL_VAR).ok().filter(|url| !url.is_empty())
    }

    /// [`TestDatabase::postgres_url`] for `test`, or `None` after printing "skipping TEST: needs
    /// BERTH_TEST_POSTGRES_URL"; when `CI` is set a missing URL panics instead, so CI cannot pass by skipping.
    pub fn postgres_url_or_skip(test: &str) -> Option<String> {
        let url = Self::postgres_url();
        if url.is_none() {
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: needs {POSTGRES_URL_VAR} (CI is set)"
            );
            eprintln!("skipping {test}: needs {POSTGRES_URL_VAR}");
        }
        url
    }

    /// A fresh database on the PostgreSQL server at `server_url` (see the module's doc).
    pub async fn postgres(server_url: &str) -> Result<Self, StoreError> {
        let name = format!("berth_test_{}", hex::encode(rand::random::<[u8; 8]>()));
        sqlx::any::install_default_drivers();
        let mut admin = sqlx::AnyConnection::connect(server_url).await?;
        admin.execute(format!("CREATE DATABASE {name}").as_str()).await?;
        admin.close().await?;
        let url = database_url(server_url, &name);
        Ok(Self {
            store: Store::connect(&url).await?,
            postgres: Some((server_url.to_owned(), name)),
        })
    }

    /// PostgreSQL when [`BACKEND_VAR`] is `postgres` (then [`POSTGRES_URL_VAR`] must be set), else SQLite at
    /// `sqlite_path`: the one switch for a crate's tests that open a store through one helper.
    pub async fn from_env(sqlite_path: &Path) -> Result<Self, StoreError> {
        if std::env::var(BACKEND_VAR).as_deref() == Ok("postgres") {
            let url = Self::postgres_url().ok_or(StoreError::UnknownBackend)?;
            return Self::postgres(&url).await;
        }
        Self::sqlite(sqlite_path).await
    }

    /// The URL of this test's own database (PostgreSQL only): to open a second [`Store`] on it.
    pub fn url(&self) -> Option<String> {
        self.postgres
            .as_ref()
            .map(|(server, name)| database_url(server, name))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((server, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread of its own with a runtime
        // of its own drops the database (FORCE ends the pool's connections still open).
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                sqlx::any::install_default_drivers();
                let mut admin = sqlx::AnyConnection::connect(&server).await?;
                admin
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await?;
                admin.close().await?;
                Ok::<_, sqlx::Error>(())
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop a test database");
        }
    }
}

/// `server_url` with its database name replaced by `name` (query parameters kept).
fn database_url(server_url: &str, name: &str) -> String {
    let (base, query) = match server_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server_url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::database_url;

    #[test]
    fn database_urls_swap_only_the_name() {
        for (server, expected) in [
            ("postgres://u:p@127.0.0.1/postgres", "postgres://u:p@127.0.0.1/db"),
            (
                "postgres://u:p@127.0.0.1:5433",
                "postgres://u:p@127.0.0.1:5433/db",
            ),
            (
                "postgres:///postgres?host=/var/run/postgresql&user=postgres",
                "postgres:///db?host=/var/run/postgresql&user=postgres",
            ),
        ] {
            assert_eq!(database_url(server, "db"), expected, "{server}");
        }
    }
}
