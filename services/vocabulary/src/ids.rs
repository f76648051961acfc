//! Opaque identifiers. Each is a UUID wrapped in its own type so that an `AppId` can never be passed where an
//! `InstanceId` is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh random ID.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }

            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }

            /// The first 12 hex digits, prefixed: short enough for host names, interface names and logs,
            /// long enough not to collide on one node.
            pub fn short(&self) -> String {
                let simple = self.0.simple().to_string();
                format!("{}{}", $prefix, &simple[..12])
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

typed_id!(
    /// A tenant account.
    AccountId,
    "a"
);
typed_id!(
    /// An app, owned by one account.
    AppId,
    "p"
);
typed_id!(
    /// One immutable release of an app.
    ReleaseId,
    "r"
);
typed_id!(
    /// One running (or wanted) copy of a process type of a release, placed on a node.
    InstanceId,
    "i"
);
typed_id!(
    /// A machine that runs a node agent.
    NodeId,
    "n"
);
typed_id!(
    /// A TLS certificate (and its key) uploaded for an app's custom domains.
    CertificateId,
    "c"
);
