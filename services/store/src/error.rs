use std::path::PathBuf;

/// What went wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique name is already taken (app name, account name).
    #[error("{what} already exists")]
    Conflict { what: String },
    #[error("opening database {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("running database migrations")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// SQLite integers are signed 64-bit; a larger value cannot be stored.
    #[error("{what} {value} is too large to store")]
    TooLarge { what: &'static str, value: u64 },
    /// Every host id range was given out (`vocabulary::IdRange::MAX_SLOT` accounts were made).
    #[error("no host id range left for a new account: {0}")]
    IdRangesExhausted(String),
    /// A row cannot be removed while others still refer to it.
    #[error("still in use: {what}")]
    InUse { what: String },
    #[error("stored row is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Turns a unique-constraint violation into `Conflict { what }`, and passes other errors through.
    pub(crate) fn conflict_on_unique(err: sqlx::Error, what: impl FnOnce() -> String) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict { what: what() },
            _ => Self::Database(err),
        }
    }
}
