//! TODO(stack): crate doc.
