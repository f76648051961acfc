//! TODO(api): crate doc.
