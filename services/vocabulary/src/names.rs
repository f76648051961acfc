//! Names that users type, validated at the edge.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a name was refused. The message is shown to users as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{kind} must not be empty")]
    Empty { kind: &'static str },
    #[error("{kind} {name:?} is too long: at most {max} characters")]
    TooLong {
        kind: &'static str,
        name: String,
        max: usize,
    },
    #[error(
        "{kind} {name:?} is not valid: use lowercase letters, digits and dashes, starting with a letter and not ending with a dash"
    )]
    BadCharacters { kind: &'static str, name: String },
    #[error("{kind} {name:?} is reserved")]
    Reserved { kind: &'static str, name: String },
    #[error("release version {0:?} is not valid: expected v1, v2, ...")]
    BadVersion(String),
}

/// Checks a lowercase DNS label: `[a-z][a-z0-9-]*`, not ending with `-`, at most `max` long.
fn check_label(kind: &'static str, name: &str, max: usize) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty { kind });
    }
    if name.len() > max {
        return Err(NameError::TooLong {
            kind,
            name: name.to_owned(),
            max,
        });
    }
    let bytes = name.as_bytes();
    let valid_chars = bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    if !valid_chars || !bytes[0].is_ascii_lowercase() || bytes[bytes.len() - 1] == b'-' {
        return Err(NameError::BadCharacters {
            kind,
            name: name.to_owned(),
        });
    }
    Ok(())
}

macro_rules! validated_name {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn new(name: impl Into<String>) -> Result<Self, NameError> {
                let name = name.into();
                let check: fn(&str) -> Result<(), NameError> = $check;
                check(&name)?;
                Ok(Self(name))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.0
            }
        }

        impl FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// Names no app may take: they would shadow platform hosts.
const RESERVED_APP_NAMES: &[&str] = &["api", "git", "www", "admin", "dashboard", "berth"];

validated_name!(
    /// An app's name: a lowercase DNS label of at most 30 characters, so `NAME.DOMAIN` is always a valid host.
    AppName,
    "app name",
    |n| {
        check_label("app name", n, 30)?;
        if RESERVED_APP_NAMES.contains(&n) {
            return Err(NameError::Reserved { kind: "app name", name: n.to_owned() });
        }
        Ok(())
    }
);

validated_name!(
    /// An account's name: a lowercase DNS label of at most 40 characters.
    AccountName,
    "account name",
    |n| check_label("account name", n, 40)
);

validated_name!(
    /// A Procfile process type such as `web` or `worker`.
    ProcessType,
    "process type",
    |n| check_label("process type", n, 30)
);

impl ProcessType {
    /// The process type that receives HTTP traffic through the router.
    pub fn web() -> Self {
        Self("web".to_owned())
    }

    pub fn is_web(&self) -> bool {
        self.0 == "web"
    }
}

/// A release's number within its app: v1, v2, ...
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReleaseVersion(pub u32);

impl ReleaseVersion {
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl fmt::Display for ReleaseVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

impl fmt::Debug for ReleaseVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

impl FromStr for ReleaseVersion {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.strip_prefix('v')
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|n| *n > 0)
            .map(Self)
            .ok_or_else(|| NameError::BadVersion(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names() {
        let cases: &[(&str, bool)] = &[
            ("myapp", true),
            ("my-app-2", true),
            ("a", true),
            ("", false),
            ("MyApp", false),
            ("2app", false),
            ("app-", false),
            ("my_app", false),
            ("my.app", false),
            ("../etc", false),
            ("api", false),
            ("a234567890123456789012345678901", false),
            ("a23456789012345678901234567890", true),
        ];
        for (name, ok) in cases {
            assert_eq!(AppName::new(*name).is_ok(), *ok, "{name:?}");
        }
    }

    #[test]
    fn names_deserialize_through_validation() {
        assert!(serde_json::from_str::<AppName>("\"ok-name\"").is_ok());
        assert!(serde_json::from_str::<AppName>("\"Bad Name\"").is_err());
    }

    #[test]
    fn release_versions() {
        assert_eq!("v12".parse::<ReleaseVersion>().unwrap(), ReleaseVersion(12));
        assert!("12".parse::<ReleaseVersion>().is_err());
        assert!("v0".parse::<ReleaseVersion>().is_err());
        assert_eq!(ReleaseVersion(3).to_string(), "v3");
    }

    #[test]
    fn error_message_is_clear() {
        let err = AppName::new("My_App").unwrap_err().to_string();
        assert!(err.contains("lowercase letters"), "{err}");
    }
}
