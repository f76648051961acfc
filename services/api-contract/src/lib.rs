//! TODO(api-contract): crate doc.
