use std::path::PathBuf;

/// What went wrong managing an app's repository or reading a pushed commit.
#[derive(Debug, thiserror::Error)]
pub enum GitReceiveError {
    #[error("creating the repository {path}")]
    InitRepo {
        path: PathBuf,
        #[source]
        source: git2::Error,
    },
    #[error("writing the pre-receive hook of {path}")]
    WriteHook {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("deleting the repository {path}")]
    DeleteRepo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("opening the repository {path}")]
    OpenRepo {
        path: PathBuf,
        #[source]
        source: git2::Error,
    },
    #[error("object directory {path} is not inside the repository")]
    ForeignObjectDir { path: PathBuf },
    #[error("adding the pushed objects at {path}")]
    AddObjects {
        path: PathBuf,
        #[source]
        source: git2::Error,
    },
    #[error("{id} is not a commit id")]
    BadObjectId { id: String },
    #[error("reading commit {id}")]
    ReadCommit {
        id: String,
        #[source]
        source: git2::Error,
    },
    #[error("the pushed tree has a path berth refuses: {path:?} ({reason})")]
    UnsafePath { path: String, reason: &'static str },
    #[error("the pushed tree is too large: more than {limit} {what}")]
    TreeTooLarge { what: &'static str, limit: u64 },
    #[error("writing {path}")]
    WriteFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading object {id} of the pushed tree")]
    ReadObject {
        id: String,
        #[source]
        source: git2::Error,
    },
}
