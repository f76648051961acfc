//! The contract between the pre-receive hook (inside `git receive-pack`) and the server: one JSON request,
//! answered by a stream of NDJSON messages. Both sides are this crate, but they are different processes.

use serde::{Deserialize, Serialize};

/// The hook's request: the one ref update it accepted, and where the pushed objects wait in quarantine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookRequest {
    #[serde(rename = "ref")]
    pub refname: String,
    pub old: String,
    pub new: String,
    /// `$GIT_OBJECT_DIRECTORY`: the quarantine holding the pushed objects.
    pub object_dir: Option<String>,
    /// `$GIT_ALTERNATE_OBJECT_DIRECTORIES`: the repository's own objects, colon-separated.
    pub alternates: Option<String>,
    /// `$GIT_QUARANTINE_PATH`.
    pub quarantine: Option<String>,
}

/// One line of the server's answer: log lines as they come, then exactly one final result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HookMessage {
    Log {
        log: String,
    },
    Done {
        ok: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}

impl HookMessage {
    pub fn log(line: impl Into<String>) -> Self {
        Self::Log { log: line.into() }
    }

    pub fn succeeded(message: impl Into<String>) -> Self {
        Self::Done {
            ok: true,
            message: Some(message.into()),
            error: None,
        }
    }

    pub fn failed(error: impl Into<String>) -> Self {
        Self::Done {
            ok: false,
            message: None,
            error: Some(error.into()),
        }
    }

    /// The message as one NDJSON line (with its newline).
    pub fn to_line(&self) -> String {
        let mut line = serde_json::to_string(self).expect("hook messages always serialize");
        line.push('\n');
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_in_the_documented_shape() {
        let cases = [
            (
                HookMessage::log("-----> Building"),
                r#"{"log":"-----> Building"}"#,
            ),
            (
                HookMessage::succeeded("v2 deployed"),
                r#"{"ok":true,"message":"v2 deployed"}"#,
            ),
            (
                HookMessage::failed("build failed"),
                r#"{"ok":false,"error":"build failed"}"#,
            ),
        ];
        for (message, json) in cases {
            assert_eq!(message.to_line(), format!("{json}\n"));
            assert_eq!(serde_json::from_str::<HookMessage>(json).unwrap(), message);
        }
    }

    #[test]
    fn request_uses_ref_as_the_field_name() {
        let request = HookRequest {
            refname: "refs/heads/main".into(),
            old: "0".repeat(40),
            new: "a".repeat(40),
            object_dir: None,
            alternates: None,
            quarantine: None,
        };
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(json["ref"], "refs/heads/main");
    }
}
