//! What a manifest reference names (pure): `latest` (the current release), a release version (`v3`), or a
//! manifest digest.

use vocabulary::ReleaseVersion;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Latest,
    Version(ReleaseVersion),
    Digest(String),
}

/// `None` for anything else: no such manifest.
pub fn parse(reference: &str) -> Option<Reference> {
    if reference == "latest" {
        return Some(Reference::Latest);
    }
    if reference.contains(':') {
        return image_store::is_digest(reference).then(|| Reference::Digest(reference.to_owned()));
    }
    // Only the canonical spelling of a version (no sign, no leading zero), so each release has one tag.
    let digits = reference.strip_prefix('v')?;
    if digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    reference.parse().ok().map(Reference::Version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let digest = format!("sha256:{}", "0a".repeat(32));
        let cases: Vec<(&str, Option<Reference>)> = vec![
            ("latest", Some(Reference::Latest)),
            ("v1", Some(Reference::Version(ReleaseVersion(1)))),
            ("v42", Some(Reference::Version(ReleaseVersion(42)))),
            (&digest, Some(Reference::Digest(digest.clone()))),
            ("LATEST", None),
            ("v0", None),
            ("3", None),
            ("vx", None),
            ("", None),
            ("sha256:abc", None),
            ("sha512:00", None),
            ("v+1", None),
            ("v01", None),
            ("v", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), want, "{text:?}");
        }
    }
}
