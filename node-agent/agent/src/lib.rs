//! TODO(agent): crate doc.
