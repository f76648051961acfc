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
    #[error("domain {name:?} is not valid: {reason}")]
    BadDomain { name: String, reason: &'static str },
    #[error("domain {name:?} belongs to the platform: apps are served at NAME.{platform} already")]
    PlatformDomain { name: String, platform: String },
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

/// Checks a custom domain: lowercase DNS labels (letters, digits, inner dashes, 1 to 63 characters), at least
/// two of them, at most 253 characters in all, a last label that is not all digits (no IP addresses), and an
/// optional leading `*.` followed by at least two labels (so `*.com` cannot claim a whole top-level domain).
fn check_domain(name: &str) -> Result<(), NameError> {
    let bad = |reason| NameError::BadDomain {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(NameError::Empty { kind: "domain" });
    }
    if name.len() > 253 {
        return Err(bad("at most 253 characters"));
    }
    let rest = name.strip_prefix("*.").unwrap_or(name);
    let labels: Vec<&str> = rest.split('.').collect();
    if labels.len() < 2 {
        return Err(bad(
            "use a full name with at least two labels, such as example.com",
        ));
    }
    for label in &labels {
        let bytes = label.as_bytes();
        if bytes.is_empty() || bytes.len() > 63 {
            return Err(bad("each label between dots must have 1 to 63 characters"));
        }
        let chars_ok = bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
        if !chars_ok {
            return Err(bad(
                "use lowercase letters, digits, dashes and dots, with `*.` only at the start",
            ));
        }
        if bytes[0] == b'-' || bytes[bytes.len() - 1] == b'-' {
            return Err(bad("a label must not start or end with a dash"));
        }
    }
    if labels[labels.len() - 1].bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("the last label must not be a number"));
    }
    Ok(())
}

validated_name!(
    /// A custom domain an app is served at: `shop.example.com`, or a wildcard `*.example.com` for every name one
    /// or more labels below it. See [`DomainName::from_input`] for what users may type.
    DomainName,
    "domain",
    check_domain
);

impl DomainName {
    /// What a user typed, made canonical first: lowercased, a trailing dot removed.
    pub fn from_input(input: &str) -> Result<Self, NameError> {
        Self::new(input.trim().trim_end_matches('.').to_ascii_lowercase())
    }

    pub fn is_wildcard(&self) -> bool {
        self.0.starts_with("*.")
    }

    /// Whether this domain lets its app serve `host` (a lowercase DNS name, perhaps a wildcard): the same name,
    /// or for a wildcard domain any name one or more labels under it, as the router matches.
    pub fn covers(&self, host: &str) -> bool {
        if self.0 == host {
            return true;
        }
        // `*.example.com` covers `a.example.com`, `a.b.example.com` and `*.b.example.com`.
        match self.0.strip_prefix('*') {
            Some(suffix) => host.ends_with(suffix) && host.len() > suffix.len(),
            None => false,
        }
    }

    /// Refuses the platform's own names: `platform` itself, any name under it (apps' `NAME.DOMAIN`), and any
    /// wildcard that would catch names under it.
    pub fn check_outside(&self, platform: &str) -> Result<(), NameError> {
        let platform = platform.trim_end_matches('.').to_ascii_lowercase();
        let base = self.0.strip_prefix("*.").unwrap_or(&self.0);
        let under = |name: &str, parent: &str| name == parent || name.ends_with(&format!(".{parent}"));
        let clash = under(base, &platform) || (self.is_wildcard() && under(&platform, base));
        if clash {
            return Err(NameError::PlatformDomain {
                name: self.0.clone(),
                platform,
            });
        }
        Ok(())
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
    fn domain_names() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("example.com", Ok("example.com")),
            ("Shop.Example.COM.", Ok("shop.example.com")),
            ("*.example.com", Ok("*.example.com")),
            ("a-b.c9.example.io", Ok("a-b.c9.example.io")),
            ("xn--bcher-kva.example", Ok("xn--bcher-kva.example")),
            ("", Err("must not be empty")),
            ("localhost", Err("at least two labels")),
            ("*.com", Err("at least two labels")),
            ("*", Err("at least two labels")),
            ("shop..example.com", Err("1 to 63 characters")),
            (".example.com", Err("1 to 63 characters")),
            ("-shop.example.com", Err("start or end with a dash")),
            ("shop-.example.com", Err("start or end with a dash")),
            ("shop_1.example.com", Err("lowercase letters")),
            ("a.*.example.com", Err("lowercase letters")),
            ("**.example.com", Err("lowercase letters")),
            ("shop.example.com:443", Err("lowercase letters")),
            ("http://example.com", Err("lowercase letters")),
            ("10.0.0.1", Err("must not be a number")),
        ];
        for (input, want) in cases {
            match (DomainName::from_input(input), want) {
                (Ok(got), Ok(want)) => assert_eq!(got.as_str(), *want, "{input:?}"),
                (Err(err), Err(want)) => {
                    assert!(err.to_string().contains(want), "{input:?}: {err}")
                }
                (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
            }
        }
        let long = format!("{}.com", "a.".repeat(126));
        assert!(DomainName::from_input(&long).is_err());
        let label64 = format!("{}.com", "a".repeat(64));
        assert!(DomainName::from_input(&label64).is_err());
        // Strict when not typed by people: the canonical form only.
        assert!(DomainName::new("Example.com").is_err());
    }

    #[test]
    fn what_a_domain_covers() {
        let cases = [
            ("shop.example.com", "shop.example.com", true),
            ("shop.example.com", "www.shop.example.com", false),
            ("*.example.com", "a.example.com", true),
            ("*.example.com", "a.b.example.com", true),
            ("*.example.com", "*.example.com", true),
            ("*.example.com", "*.b.example.com", true),
            ("*.example.com", "example.com", false),
            ("*.example.com", "aexample.com", false),
            ("*.example.com", ".example.com", false),
        ];
        for (domain, host, want) in cases {
            assert_eq!(
                DomainName::new(domain).unwrap().covers(host),
                want,
                "{domain} {host}"
            );
        }
    }

    #[test]
    fn domains_outside_the_platform() {
        let cases: &[(&str, &str, bool)] = &[
            ("shop.example.com", "apps.test", true),
            ("apps.test", "apps.test", false),
            ("shop.apps.test", "apps.test", false),
            ("*.apps.test", "apps.test", false),
            ("*.test.apps.test", "apps.test", false),
            // A wildcard above the platform's domain would catch unknown app names.
            ("*.example.com", "apps.example.com", false),
            ("*.example.com", "example.com", false),
            ("shop.example.com", "apps.example.com", true),
            ("myapps.test", "apps.test", true),
            ("*.shop.example.com", "apps.example.com", true),
            ("shop.apps.test", "Apps.Test.", false),
        ];
        for (name, platform, ok) in cases {
            let domain = DomainName::from_input(name).unwrap();
            assert_eq!(
                domain.check_outside(platform).is_ok(),
                *ok,
                "{name} on {platform}"
            );
        }
        let err = DomainName::from_input("shop.apps.test")
            .unwrap()
            .check_outside("apps.test")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "domain \"shop.apps.test\" belongs to the platform: apps are served at NAME.apps.test already"
        );
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
