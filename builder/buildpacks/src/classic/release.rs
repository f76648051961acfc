//! Reading what a classic buildpack's `bin/release` prints (pure).
//!
//! It prints YAML such as
//! ```yaml
//! ---
//! addons: []
//! config_vars:
//!   LANG: en_US.UTF-8
//! default_process_types:
//!   web: bundle exec rackup -p $PORT
//! ```
//! Only `default_process_types` and `config_vars` mean something to Berth; other keys are ignored.

use std::collections::BTreeMap;

use vocabulary::ProcessType;
use yaml_rust2::{Yaml, YamlLoader};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Release {
    pub default_process_types: BTreeMap<ProcessType, String>,
    pub config_vars: BTreeMap<String, String>,
}

impl Release {
    /// Adds `later` on top: a later buildpack's process type or config var replaces an earlier one's.
    pub fn merge(&mut self, later: Release) {
        self.default_process_types.extend(later.default_process_types);
        self.config_vars.extend(later.config_vars);
    }
}

/// Parses `bin/release`'s output. Empty output is an empty release; the reason in an error is shown to the
/// user.
pub fn parse_release(text: &str) -> Result<Release, String> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| format!("not YAML: {e}"))?;
    let root = match docs.as_slice() {
        [] => return Ok(Release::default()),
        [root] => root,
        _ => return Err("more than one YAML document".to_owned()),
    };
    let root = match root {
        Yaml::Null => return Ok(Release::default()),
        Yaml::Hash(hash) => hash,
        _ => return Err("the top level must be a mapping".to_owned()),
    };
    let mut release = Release::default();
    if let Some(types) = map_at(root, "default_process_types")? {
        for (name, command) in types {
            let command = scalar(command)
                .filter(|c| !c.trim().is_empty())
                .ok_or_else(|| format!("process type {name} needs a command"))?;
            let process_type = ProcessType::new(&name).map_err(|e| format!("process type {name:?}: {e}"))?;
            release.default_process_types.insert(process_type, command);
        }
    }
    if let Some(vars) = map_at(root, "config_vars")? {
        for (name, value) in vars {
            // The value is never put in a message: config values stay out of logs.
            let value = scalar(value).ok_or_else(|| format!("config var {name} must be a plain value"))?;
            release.config_vars.insert(name, value);
        }
    }
    Ok(release)
}

/// The mapping under `key` as (string key, value) pairs; `None` when absent or null.
fn map_at<'a>(
    root: &'a yaml_rust2::yaml::Hash,
    key: &str,
) -> Result<Option<Vec<(String, &'a Yaml)>>, String> {
    match root.get(&Yaml::String(key.to_owned())) {
        None | Some(Yaml::Null) => Ok(None),
        Some(Yaml::Hash(hash)) => hash
            .iter()
            .map(|(k, v)| {
                scalar(k)
                    .map(|k| (k, v))
                    .ok_or_else(|| format!("{key} must have plain keys"))
            })
            .collect::<Result<_, _>>()
            .map(Some),
        Some(_) => Err(format!("{key} must be a mapping")),
    }
}

/// Strings, numbers and booleans as text (`PORT: 5000` is as good as `PORT: "5000"`).
fn scalar(value: &Yaml) -> Option<String> {
    match value {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(pairs: &[(&str, &str)]) -> BTreeMap<ProcessType, String> {
        pairs
            .iter()
            .map(|(t, c)| (ProcessType::new(*t).unwrap(), (*c).to_owned()))
            .collect()
    }

    #[test]
    fn releases() {
        type Pairs = &'static [(&'static str, &'static str)];
        let cases: &[(&str, Pairs, Pairs)] = &[
            ("", &[], &[]),
            ("---\n", &[], &[]),
            ("--- {}\n", &[], &[]),
            (
                "---\naddons: []\nconfig_vars:\n  LANG: en_US.UTF-8\n  WORKERS: 4\ndefault_process_types:\n  web: bundle exec rackup -p $PORT\n  worker: 'sh -c \"echo a: b\"'\n",
                &[("web", "bundle exec rackup -p $PORT"), ("worker", "sh -c \"echo a: b\"")],
                &[("LANG", "en_US.UTF-8"), ("WORKERS", "4")],
            ),
            ("default_process_types:\nconfig_vars: ~\n", &[], &[]),
        ];
        for (text, want_types, want_vars) in cases {
            let release = parse_release(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(release.default_process_types, types(want_types), "{text:?}");
            let vars: BTreeMap<String, String> = want_vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            assert_eq!(release.config_vars, vars, "{text:?}");
        }
    }

    #[test]
    fn bad_releases() {
        let cases: &[(&str, &str)] = &[
            ("web: [", "not YAML"),
            ("- web\n", "top level must be a mapping"),
            ("--- a\n--- b\n", "more than one"),
            (
                "default_process_types: python app.py\n",
                "default_process_types must be a mapping",
            ),
            (
                "default_process_types:\n  web:\n",
                "process type web needs a command",
            ),
            (
                "default_process_types:\n  web: [a]\n",
                "process type web needs a command",
            ),
            (
                "default_process_types:\n  'no such!': x\n",
                "process type \"no such!\"",
            ),
            (
                "config_vars:\n  SECRET: [hunter2]\n",
                "config var SECRET must be a plain value",
            ),
        ];
        for (text, want) in cases {
            let err = parse_release(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(!err.contains("hunter2"));
        }
    }

    #[test]
    fn later_buildpacks_win() {
        let mut first = parse_release("default_process_types:\n  web: a\n  worker: w\n").unwrap();
        first.merge(parse_release("default_process_types:\n  web: b\nconfig_vars:\n  X: 1\n").unwrap());
        assert_eq!(
            first.default_process_types,
            types(&[("web", "b"), ("worker", "w")])
        );
        assert_eq!(first.config_vars["X"], "1");
    }
}
