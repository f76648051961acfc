/// What went wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique name is already taken (app name, account name).
    #[error("{what} already exists")]
    Conflict { what: String },
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("running database migrations")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored row is corrupt: {0}")]
    Corrupt(String),
}
