//! The Node.js buildpack's decisions, pure: what `package.json` says, which installer runs, the default web
//! process. `node_modules` is installed in a build container into its own layer at `/app/node_modules`
//! (under the app layer, which never carries a `node_modules` of its own), so Node's module resolution finds
//! it from `/app` for both `require` and `import`.

use serde::Deserialize;

/// The dependency layer's place in the image.
pub const NODE_MODULES: &str = "/app/node_modules";

/// npm's and yarn's environment in build containers (their caches in the per-app build cache at `/cache`).
pub const BUILD_ENV: &[(&str, &str)] = &[
    ("NPM_CONFIG_CACHE", "/cache/npm"),
    ("NPM_CONFIG_UPDATE_NOTIFIER", "false"),
    ("NPM_CONFIG_FUND", "false"),
    ("NPM_CONFIG_AUDIT", "false"),
    ("NPM_CONFIG_PROGRESS", "false"),
    ("YARN_CACHE_FOLDER", "/cache/yarn"),
];

/// What the builder reads from `package.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageJson {
    pub build_script: bool,
    pub start_script: bool,
    /// `engines.node`.
    pub engines_node: Option<String>,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    scripts: std::collections::BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    engines: Option<serde_json::Map<String, serde_json::Value>>,
}

pub fn parse_package_json(bytes: &[u8]) -> Result<PackageJson, String> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if !value.is_object() {
        return Err("expected a JSON object".to_owned());
    }
    let raw: Raw = serde_json::from_value(value).map_err(|e| e.to_string())?;
    let script = |name: &str| {
        raw.scripts
            .get(name)
            .and_then(|v| v.as_str())
            .is_some_and(|s| !s.trim().is_empty())
    };
    Ok(PackageJson {
        build_script: script("build"),
        start_script: script("start"),
        engines_node: raw
            .engines
            .as_ref()
            .and_then(|e| e.get("node"))
            .and_then(|v| v.as_str())
            .map(str::to_owned),
    })
}

/// The lockfiles that decide the installer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lockfiles {
    /// `package-lock.json` or `npm-shrinkwrap.json`.
    pub npm: bool,
    pub yarn: bool,
}

/// The install command and, when the tree's wish cannot be met, a warning for the push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallPlan {
    pub argv: Vec<String>,
    /// Shown as `-----> Installing dependencies with {how}`.
    pub how: &'static str,
    pub warning: Option<String>,
}

/// npm ci with an npm lockfile; yarn with `yarn.lock` when the stack has it; else npm install.
/// devDependencies are left out unless a build script needs them.
pub fn install_plan(locks: Lockfiles, stack_has_yarn: bool, with_dev: bool) -> InstallPlan {
    let owned = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    let omit_dev: &[&str] = if with_dev { &[] } else { &["--omit=dev"] };
    if locks.yarn && !locks.npm && stack_has_yarn {
        let mut argv = owned(&["yarnpkg", "install", "--frozen-lockfile", "--non-interactive"]);
        if !with_dev {
            argv.push("--production".to_owned());
        }
        return InstallPlan {
            argv,
            how: "yarn install --frozen-lockfile",
            warning: None,
        };
    }
    let warning = (locks.yarn && !stack_has_yarn).then(|| {
        "yarn.lock found, but the stack has no yarn: installing with npm instead, \
         which does not read yarn.lock (versions may differ; commit a package-lock.json to pin them)"
            .to_owned()
    });
    let (verb, how) = if locks.npm {
        ("ci", "npm ci")
    } else {
        ("install", "npm install")
    };
    let mut argv = owned(&["npm", verb]);
    argv.extend(owned(omit_dev));
    InstallPlan { argv, how, warning }
}

/// The default web process when the Procfile has none, like Heroku: `npm start` when there is a start script
/// or a `server.js` (npm's own default for start).
pub fn default_web(package: &PackageJson, has_server_js: bool) -> Option<&'static str> {
    (package.start_script || has_server_js).then_some("npm start")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_json() {
        let cases: &[(&str, Result<PackageJson, ()>)] = &[
            ("{}", Ok(PackageJson::default())),
            (
                r#"{"name":"x","scripts":{"start":"node index.js","build":"tsc"},"engines":{"node":">=18"}}"#,
                Ok(PackageJson {
                    build_script: true,
                    start_script: true,
                    engines_node: Some(">=18".into()),
                }),
            ),
            (
                r#"{"scripts":{"build":"","test":"jest"},"engines":{"npm":"9"}}"#,
                Ok(PackageJson::default()),
            ),
            (
                r#"{"scripts":{"start":["not","a","string"]}}"#,
                Ok(PackageJson::default()),
            ),
            ("{\"name\": ", Err(())),
            ("[]", Err(())),
        ];
        for (text, expected) in cases {
            assert_eq!(
                parse_package_json(text.as_bytes()).map_err(|_| ()),
                *expected,
                "{text}"
            );
        }
    }

    #[test]
    fn install_plans() {
        let locks = |npm, yarn| Lockfiles { npm, yarn };
        // (locks, stack has yarn, with dev, argv, warns)
        let cases: &[(Lockfiles, bool, bool, &str, bool)] = &[
            (locks(true, false), false, false, "npm ci --omit=dev", false),
            (locks(true, false), false, true, "npm ci", false),
            (locks(false, false), false, false, "npm install --omit=dev", false),
            (locks(false, true), false, false, "npm install --omit=dev", true),
            (
                locks(false, true),
                true,
                false,
                "yarnpkg install --frozen-lockfile --non-interactive --production",
                false,
            ),
            (
                locks(false, true),
                true,
                true,
                "yarnpkg install --frozen-lockfile --non-interactive",
                false,
            ),
            (locks(true, true), true, false, "npm ci --omit=dev", false),
            (locks(true, true), false, false, "npm ci --omit=dev", true),
        ];
        for (locks, yarn, dev, argv, warns) in cases {
            let plan = install_plan(*locks, *yarn, *dev);
            assert_eq!(plan.argv.join(" "), *argv, "{locks:?} yarn={yarn} dev={dev}");
            assert_eq!(plan.warning.is_some(), *warns, "{locks:?} yarn={yarn} dev={dev}");
        }
    }

    #[test]
    fn default_web_process() {
        let start = PackageJson {
            start_script: true,
            ..PackageJson::default()
        };
        assert_eq!(default_web(&start, false), Some("npm start"));
        assert_eq!(default_web(&PackageJson::default(), true), Some("npm start"));
        assert_eq!(default_web(&PackageJson::default(), false), None);
    }
}
