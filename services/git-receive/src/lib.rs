//! TODO(git-receive): crate doc.
