//! TODO(buildpacks): crate doc.
