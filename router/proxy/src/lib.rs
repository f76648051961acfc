//! TODO(proxy): crate doc.
