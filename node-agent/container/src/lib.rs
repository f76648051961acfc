//! TODO(container): crate doc.
