//! The health checks a pushed tree declares in its `app.json`, in Dokku's format:
//! `{"healthchecks": {"web": [{"type": "startup", "path": "/health", "timeout": 5, "attempts": 3, "wait": 2}]}}`.
//! Pure: the deploy reads the file, this parses it; a bad file fails the push with a message naming the field.
//! Everything else in `app.json` is left alone.

use std::collections::BTreeMap;

use agent_contract::HealthCheck;
use serde_json::Value;
use vocabulary::ProcessType;

/// The bounds of a check's numbers: timeout and wait in seconds.
const TIMEOUT_SECS: std::ops::RangeInclusive<u64> = 1..=120;
const ATTEMPTS: std::ops::RangeInclusive<u64> = 1..=60;
const WAIT_SECS: std::ops::RangeInclusive<u64> = 0..=120;

/// The checks the tree at `source_dir` declares in its `app.json` (none without one).
pub(crate) fn read(source_dir: &std::path::Path) -> Result<BTreeMap<ProcessType, HealthCheck>, String> {
    let path = source_dir.join("app.json");
    match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(format!("reading app.json: {e}")),
        Ok(m) if !m.file_type().is_file() => return Err("app.json must be a regular file".into()),
        Ok(m) if m.len() > 1 << 20 => return Err("app.json is larger than 1 MiB".into()),
        Ok(_) => {}
    }
    let text = std::fs::read_to_string(&path).map_err(|e| format!("reading app.json: {e}"))?;
    health_checks(&text)
}

/// The checks `text` (an `app.json`) declares, by process type; none when it has no `healthchecks`.
pub fn health_checks(text: &str) -> Result<BTreeMap<ProcessType, HealthCheck>, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("app.json is not valid JSON: {e}"))?;
    let Value::Object(doc) = doc else {
        return Err("app.json must hold a JSON object".into());
    };
    let Some(checks) = doc.get("healthchecks") else {
        return Ok(BTreeMap::new());
    };
    let Value::Object(checks) = checks else {
        return Err("app.json: healthchecks must be an object of process type to a list of checks".into());
    };
    let mut out = BTreeMap::new();
    for (name, list) in checks {
        let field = format!("healthchecks.{name}");
        let process_type = ProcessType::new(name).map_err(|e| format!("app.json: {field}: {e}"))?;
        if !process_type.is_web() {
            return Err(format!(
                "app.json: {field}: only web processes listen on PORT, so only web checks are supported"
            ));
        }
        let Value::Array(list) = list else {
            return Err(format!("app.json: {field} must be a list of checks"));
        };
        match list.as_slice() {
            [] => {}
            [check] => {
                out.insert(process_type, check_of(&format!("{field}[0]"), check)?);
            }
            _ => {
                return Err(format!(
                    "app.json: {field}: one check per process type is supported"
                ))
            }
        }
    }
    Ok(out)
}

fn check_of(field: &str, check: &Value) -> Result<HealthCheck, String> {
    let Value::Object(check) = check else {
        return Err(format!("app.json: {field} must be an object"));
    };
    for (key, value) in check {
        match key.as_str() {
            "type" => match value.as_str() {
                Some("startup") => {}
                _ => {
                    return Err(format!(
                        "app.json: {field}.type: only \"startup\" checks are supported, got {value}"
                    ))
                }
            },
            "name" | "path" | "timeout" | "attempts" | "wait" => {}
            other => {
                return Err(format!(
                    "app.json: {field}.{other} is not supported (supported: type, name, path, timeout, attempts, wait)"
                ))
            }
        }
    }
    let path = match check.get("path") {
        Some(Value::String(path)) => path.clone(),
        Some(_) => return Err(format!("app.json: {field}.path must be a string")),
        None => return Err(format!("app.json: {field}.path is missing")),
    };
    check_path(&path).map_err(|e| format!("app.json: {field}.path: {e}"))?;
    let number = |key: &str, default: u32, range: std::ops::RangeInclusive<u64>| -> Result<u32, String> {
        match check.get(key) {
            None => Ok(default),
            Some(value) => value
                .as_u64()
                .filter(|n| range.contains(n))
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    format!(
                        "app.json: {field}.{key} must be a whole number from {} to {}, got {value}",
                        range.start(),
                        range.end()
                    )
                }),
        }
    };
    Ok(HealthCheck {
        path,
        timeout_secs: number("timeout", HealthCheck::DEFAULT_TIMEOUT_SECS, TIMEOUT_SECS)?,
        attempts: number("attempts", HealthCheck::DEFAULT_ATTEMPTS, ATTEMPTS)?,
        wait_secs: number("wait", HealthCheck::DEFAULT_WAIT_SECS, WAIT_SECS)?,
    })
}

/// A check path goes into a request line as it is: it starts with `/` and holds only visible ASCII.
pub fn check_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("must start with /, got {path:?}"));
    }
    if path.len() > 1024 {
        return Err("must be at most 1024 characters".into());
    }
    if let Some(c) = path.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!("must hold only visible ASCII characters, got {c:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web(
        path: &str,
        timeout_secs: u32,
        attempts: u32,
        wait_secs: u32,
    ) -> BTreeMap<ProcessType, HealthCheck> {
        BTreeMap::from([(
            ProcessType::web(),
            HealthCheck {
                path: path.into(),
                timeout_secs,
                attempts,
                wait_secs,
            },
        )])
    }

    #[test]
    fn parses_dokkus_format() {
        let none = BTreeMap::new();
        type Case = (
            &'static str,
            Result<BTreeMap<ProcessType, HealthCheck>, &'static str>,
        );
        let cases: &[Case] = &[
            (
                r#"{"healthchecks": {"web": [{"type": "startup", "name": "up", "path": "/health", "timeout": 7, "attempts": 4, "wait": 1}]}}"#,
                Ok(web("/health", 7, 4, 1)),
            ),
            // Defaults: timeout 5, attempts 3, wait 2; type is optional.
            (r#"{"healthchecks": {"web": [{"path": "/up?full=1"}]}}"#, Ok(web("/up?full=1", 5, 3, 2))),
            (r#"{"wait": 0, "healthchecks": {"web": [{"path": "/", "wait": 0}]}}"#, Ok(web("/", 5, 3, 0))),
            // No checks: nothing, and the rest of app.json is not ours.
            (r#"{"name": "shop", "scripts": {"dokku": {}}}"#, Ok(none.clone())),
            (r#"{"healthchecks": {}}"#, Ok(none.clone())),
            (r#"{"healthchecks": {"web": []}}"#, Ok(none.clone())),
            // Bad files name the field.
            ("{", Err("app.json is not valid JSON: EOF while parsing an object at line 1 column 1")),
            ("[]", Err("app.json must hold a JSON object")),
            (r#"{"healthchecks": []}"#, Err("app.json: healthchecks must be an object of process type to a list of checks")),
            (r#"{"healthchecks": {"web": {"path": "/"}}}"#, Err("app.json: healthchecks.web must be a list of checks")),
            (r#"{"healthchecks": {"web": [{"timeout": 5}]}}"#, Err("app.json: healthchecks.web[0].path is missing")),
            (r#"{"healthchecks": {"web": [{"path": 5}]}}"#, Err("app.json: healthchecks.web[0].path must be a string")),
            (r#"{"healthchecks": {"web": [{"path": "health"}]}}"#, Err("app.json: healthchecks.web[0].path: must start with /, got \"health\"")),
            (r#"{"healthchecks": {"web": [{"path": "/a b"}]}}"#, Err("app.json: healthchecks.web[0].path: must hold only visible ASCII characters, got ' '")),
            (r#"{"healthchecks": {"web": [{"path": "/", "timeout": 0}]}}"#, Err("app.json: healthchecks.web[0].timeout must be a whole number from 1 to 120, got 0")),
            (r#"{"healthchecks": {"web": [{"path": "/", "attempts": "3"}]}}"#, Err("app.json: healthchecks.web[0].attempts must be a whole number from 1 to 60, got \"3\"")),
            (r#"{"healthchecks": {"web": [{"path": "/", "wait": 2.5}]}}"#, Err("app.json: healthchecks.web[0].wait must be a whole number from 0 to 120, got 2.5")),
            (r#"{"healthchecks": {"web": [{"path": "/", "type": "liveness"}]}}"#, Err("app.json: healthchecks.web[0].type: only \"startup\" checks are supported, got \"liveness\"")),
            (r#"{"healthchecks": {"web": [{"path": "/", "content": "ok"}]}}"#, Err("app.json: healthchecks.web[0].content is not supported (supported: type, name, path, timeout, attempts, wait)")),
            (r#"{"healthchecks": {"web": [{"path": "/"}, {"path": "/b"}]}}"#, Err("app.json: healthchecks.web: one check per process type is supported")),
            (r#"{"healthchecks": {"worker": [{"path": "/"}]}}"#, Err("app.json: healthchecks.worker: only web processes listen on PORT, so only web checks are supported")),
            (r#"{"healthchecks": {"Web!": [{"path": "/"}]}}"#, Err("app.json: healthchecks.Web!: ")),
        ];
        for (text, want) in cases {
            let got = health_checks(text);
            match (want, &got) {
                (Ok(want), Ok(got)) => assert_eq!(got, want, "{text}"),
                (Err(want), Err(got)) => assert!(got.starts_with(want), "{text}: {got}"),
                _ => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }
}
