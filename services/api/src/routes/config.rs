//! Config vars: `GET` and `PATCH /v1/apps/{name}/config` (the app's owner). A change makes a new release
//! with the same image and processes and rolls it out (see `controller::Lifecycle`); before the app's first
//! release, the config is kept for it. Values are never logged: only names are.

use std::collections::BTreeMap;

use api_contract::{
    ConfigUpdate, ConfigUpdated, ConfigVars, RolloutInfo, CONFIG_MAX_VARS, CONFIG_NAME_MAX_CHARS,
    CONFIG_TOTAL_MAX_BYTES, CONFIG_VALUE_MAX_BYTES,
};
use axum::extract::{Path, State};
use controller::RolledOut;

use super::{app_for, Permission};
use crate::json::Json;
use crate::{ApiError, ApiState, Caller};

/// Names the platform sets itself in every instance; an app cannot set them.
pub const RESERVED_NAMES: &[&str] = &["PORT", "DYNO", "PS", "HOME"];
/// Prefixes the platform keeps for itself.
pub const RESERVED_PREFIXES: &[&str] = &["BERTH_"];

/// Why one name or value is refused, or `None` when the pair is fine (`value` `None` is an unset, and only
/// the name is checked). Messages name the variable, never its value.
pub fn refusal(name: &str, value: Option<&str>) -> Option<String> {
    let mut chars = name.chars();
    let well_formed = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !well_formed {
        return Some(format!(
            "config var name {:?} is invalid: use letters, digits and _, not starting with a digit",
            name.chars().take(CONFIG_NAME_MAX_CHARS).collect::<String>()
        ));
    }
    if name.len() > CONFIG_NAME_MAX_CHARS {
        return Some(format!(
            "config var name {}... is too long: at most {CONFIG_NAME_MAX_CHARS} characters",
            &name[..32]
        ));
    }
    let upper = name.to_ascii_uppercase();
    if RESERVED_NAMES.contains(&upper.as_str()) || RESERVED_PREFIXES.iter().any(|p| upper.starts_with(p)) {
        return Some(format!(
            "config var {name} is set by the platform and cannot be changed (reserved: {}, and names \
             starting with {})",
            RESERVED_NAMES.join(", "),
            RESERVED_PREFIXES.join(", ")
        ));
    }
    let value = value?;
    if value.len() > CONFIG_VALUE_MAX_BYTES {
        return Some(format!(
            "the value of config var {name} is too large: {} bytes, at most {CONFIG_VALUE_MAX_BYTES}",
            value.len()
        ));
    }
    if value.contains('\0') {
        return Some(format!(
            "the value of config var {name} contains a NUL character, which an environment cannot hold"
        ));
    }
    None
}

/// Checks a whole change against the app's current config: each pair, and the resulting config's size.
pub fn check_update(
    current: &BTreeMap<String, String>,
    changes: &BTreeMap<String, Option<String>>,
) -> Result<(), ApiError> {
    if changes.is_empty() {
        return Err(ApiError::Invalid(
            "nothing to change: send names and values, e.g. {\"GREETING\": \"hello\"}, or null to unset"
                .to_owned(),
        ));
    }
    if let Some(problem) = changes
        .iter()
        .find_map(|(name, value)| refusal(name, value.as_deref()))
    {
        return Err(ApiError::Invalid(problem));
    }
    let after = controller::apply_config_changes(current.clone(), changes);
    if after.len() > CONFIG_MAX_VARS {
        return Err(ApiError::Invalid(format!(
            "an app may have at most {CONFIG_MAX_VARS} config vars; this change would make {}",
            after.len()
        )));
    }
    let total: usize = after.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > CONFIG_TOTAL_MAX_BYTES {
        return Err(ApiError::Invalid(format!(
            "an app's config vars may total at most {CONFIG_TOTAL_MAX_BYTES} bytes; this change would make {total}"
        )));
    }
    Ok(())
}

/// The API's form of a rolled-out change.
pub(crate) fn rollout_info(rolled: RolledOut) -> RolloutInfo {
    let deployed = rolled.outcome.is_ok();
    RolloutInfo {
        release: rolled.release,
        deployed,
        message: rolled.outcome.unwrap_or_else(|reason| reason),
    }
}

/// `GET /v1/apps/{name}/config`
pub async fn show(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<axum::Json<ConfigVars>, ApiError> {
    let app = app_for(&state, &caller, &name, Permission::Read).await?;
    Ok(axum::Json(ConfigVars(state.lifecycle.config(&app).await?)))
}

/// `PATCH /v1/apps/{name}/config` with `{"NAME": "value", "OTHER": null}`. All-or-nothing: one refused pair
/// changes nothing. Answers once the new release serves, or says why it does not.
pub async fn update(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(ConfigUpdate(changes)): Json<ConfigUpdate>,
) -> Result<axum::Json<ConfigUpdated>, ApiError> {
    let app = app_for(&state, &caller, &name, Permission::Deploy).await?;
    let current = state.lifecycle.config(&app).await?;
    check_update(&current, &changes)?;
    let changed = state.lifecycle.change_config(&app, caller.0.id, &changes).await?;
    Ok(axum::Json(ConfigUpdated {
        config: ConfigVars(changed.config),
        rollout: changed.rolled_out.map(rollout_info),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values() {
        let long_name = "A".repeat(CONFIG_NAME_MAX_CHARS + 1);
        let big = "x".repeat(CONFIG_VALUE_MAX_BYTES + 1);
        let cases: &[(&str, Option<&str>, Option<&str>)] = &[
            ("GREETING", Some("hello"), None),
            ("_private", Some(""), None),
            ("a1_B2", None, None),
            ("GREETING", Some("two\nlines, ünïcödé ✓"), None),
            ("1ABC", Some("x"), Some("invalid")),
            ("", Some("x"), Some("invalid")),
            ("WITH-DASH", Some("x"), Some("invalid")),
            ("WITH SPACE", None, Some("invalid")),
            ("ÜBER", Some("x"), Some("invalid")),
            (&long_name, Some("x"), Some("too long")),
            ("PORT", Some("80"), Some("set by the platform")),
            ("port", None, Some("set by the platform")),
            ("DYNO", Some("web.9"), Some("set by the platform")),
            ("BERTH_ANYTHING", Some("x"), Some("set by the platform")),
            ("BIG", Some(&big), Some("too large")),
            ("NUL", Some("a\0b"), Some("NUL")),
        ];
        for (name, value, want) in cases {
            let got = refusal(name, *value);
            match (want, &got) {
                (None, None) => {}
                (Some(want), Some(got)) => assert!(got.contains(want), "{name}: {got}"),
                _ => panic!("{name:?} = {value:?}: got {got:?}, wanted {want:?}"),
            }
            // A refusal never repeats the value.
            if let (Some(got), Some(value)) = (&got, value) {
                if value.len() > 3 {
                    assert!(!got.contains(value), "{got}");
                }
            }
        }
    }

    #[test]
    fn whole_updates() {
        let current = BTreeMap::from([("A".to_owned(), "x".repeat(40_000))]);
        let set = |pairs: &[(&str, Option<&str>)]| -> BTreeMap<String, Option<String>> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
                .collect()
        };
        assert!(check_update(&current, &set(&[("B", Some("y"))])).is_ok());
        assert!(check_update(&current, &set(&[("A", None)])).is_ok());
        let err = check_update(&current, &BTreeMap::new()).unwrap_err().to_string();
        assert!(err.contains("nothing to change"), "{err}");
        // Each value is fine alone, but together they pass the total.
        let big = "y".repeat(30_000);
        let err = check_update(&current, &set(&[("B", Some(&big))]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("total"), "{err}");
        // Unsetting the big one first makes room.
        assert!(check_update(&current, &set(&[("A", None), ("B", Some(&big))])).is_ok());
        let many: BTreeMap<String, Option<String>> = (0..=CONFIG_MAX_VARS)
            .map(|i| (format!("V{i}"), Some("1".to_owned())))
            .collect();
        let err = check_update(&BTreeMap::new(), &many).unwrap_err().to_string();
        assert!(err.contains("at most"), "{err}");
        // One bad pair refuses the whole change.
        let err = check_update(&current, &set(&[("OK", Some("1")), ("PORT", Some("2"))]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("PORT"), "{err}");
    }
}
