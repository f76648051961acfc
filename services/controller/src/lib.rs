//! TODO(controller): crate doc.
