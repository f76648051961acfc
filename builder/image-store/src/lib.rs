//! TODO(image-store): crate doc.
