/// What went wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique name is already taken (app name, account name).
    #[error("{what} already exists")]
    Conflict { what: String },
    /// `database` is a SQLite file's path, or `postgres` (never the URL, which may hold a password).
    #[error("opening database {database}")]
    Open {
        database: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("running database migrations")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Stored integers are signed 64-bit (SQLite INTEGER, PostgreSQL BIGINT); a larger value cannot be stored.
    #[error("{what} {value} is too large to store")]
    TooLarge { what: &'static str, value: u64 },
    /// Every host id range was given out (`vocabulary::IdRange::MAX_SLOT` accounts were made).
    #[error("no host id range left for a new account: {0}")]
    IdRangesExhausted(String),
    /// A row cannot be removed while others still refer to it.
    #[error("still in use: {what}")]
    InUse { what: String },
    /// A database URL that starts with neither `sqlite:` nor `postgres://`/`postgresql://`.
    #[error("unknown database URL: it must start with sqlite: or postgres://")]
    UnknownBackend,
    /// The connection that held this process's leadership is gone ([`crate::Leadership::check`]).
    #[error("leadership lost")]
    LeadershipLost(#[source] sqlx::Error),
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
