//! TODO(scheduler): crate doc.
