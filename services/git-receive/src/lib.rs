//! TODO(git-receive): crate doc.

pub mod hook;
