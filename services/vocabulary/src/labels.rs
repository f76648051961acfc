//! Node labels (`region=eu`) and the constraints apps put on them: the same `key=value` pairs, validated once.

use std::collections::BTreeMap;
use std::fmt;

/// Longest key or value.
const MAX_LEN: usize = 63;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("label {given:?} must be KEY=VALUE, each 1-{MAX_LEN} of a-z A-Z 0-9 . _ - (the key starting with a letter)")]
pub struct LabelError {
    given: String,
}

/// One `key=value` pair.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Label {
    pub key: String,
    pub value: String,
}

impl Label {
    /// Parses `key=value`.
    pub fn parse(text: &str) -> Result<Self, LabelError> {
        let error = || LabelError {
            given: text.chars().take(80).collect(),
        };
        let (key, value) = text.split_once('=').ok_or_else(error)?;
        let part_ok = |s: &str| {
            (1..=MAX_LEN).contains(&s.len())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        };
        if !part_ok(key) || !part_ok(value) || !key.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(error());
        }
        Ok(Self {
            key: key.to_owned(),
            value: value.to_owned(),
        })
    }

    /// Parses a list of `key=value` into a map; a key given twice is an error.
    pub fn parse_all<S: AsRef<str>>(texts: &[S]) -> Result<BTreeMap<String, String>, LabelError> {
        let mut map = BTreeMap::new();
        for text in texts {
            let label = Self::parse(text.as_ref())?;
            if map.insert(label.key, label.value).is_some() {
                return Err(LabelError {
                    given: text.as_ref().to_owned(),
                });
            }
        }
        Ok(map)
    }

    /// Checks every pair of a map (one that came over the API as JSON).
    pub fn check_map(map: &BTreeMap<String, String>) -> Result<(), LabelError> {
        for (key, value) in map {
            Self::parse(&format!("{key}={value}"))?;
        }
        Ok(())
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// `region=eu,disk=ssd` (sorted by key), or `-` when empty: how people read a label map.
pub fn labels_text(map: &BTreeMap<String, String>) -> String {
    if map.is_empty() {
        return "-".to_owned();
    }
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let cases = [
            ("region=eu", true),
            ("zone=eu-west-1a", true),
            ("disk=ssd.fast_1", true),
            ("region", false),
            ("=eu", false),
            ("region=", false),
            ("1region=eu", false),
            ("region=e u", false),
            ("region=eu=x", false),
            ("région=eu", false),
        ];
        for (text, ok) in cases {
            assert_eq!(Label::parse(text).is_ok(), ok, "{text}");
        }
        assert_eq!(Label::parse(&format!("k={}", "v".repeat(64))).ok(), None);
    }

    #[test]
    fn maps_reject_a_key_twice() {
        let map = Label::parse_all(&["region=eu", "disk=ssd"]).unwrap();
        assert_eq!(labels_text(&map), "disk=ssd,region=eu");
        assert!(Label::parse_all(&["region=eu", "region=us"]).is_err());
        assert_eq!(labels_text(&BTreeMap::new()), "-");
    }
}
