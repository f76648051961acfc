//! The Node.js buildpack's decisions, pure: what `package.json` says, which installer runs, the default web
//! process. `node_modules` is installed in a build container into its own layer at `/app/node_modules`
//! (under the app layer, which never carries a `node_modules` of its own), so Node's module resolution finds
//! it from `/app` for both `require` and `import`.

use serde::Deserialize;

use crate::versions;

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
    /// `engines.yarn`.
    pub engines_yarn: Option<String>,
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
    let engine = |name: &str| {
        raw.engines
            .as_ref()
            .and_then(|e| e.get(name))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    Ok(PackageJson {
        build_script: script("build"),
        start_script: script("start"),
        engines_node: engine("node"),
        engines_yarn: engine("yarn"),
    })
}

/// The lockfiles that decide the installer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lockfiles {
    /// `package-lock.json` or `npm-shrinkwrap.json`.
    pub npm: bool,
    pub yarn: bool,
}

/// Where yarn classic is installed in the per-app build cache (`npm install --global --prefix`), and run from.
pub const YARN_PREFIX: &str = "/cache/yarn-cli";
pub const YARN_BIN: &str = "/cache/yarn-cli/bin/yarn";
/// What `npm install --global` asks the registry for: yarn classic, the last yarn that is an npm package.
pub const YARN_PACKAGE: &str = "yarn@1";

/// The install command, the prune command that follows it, and, when the tree's wish is ambiguous, a warning
/// for the push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallPlan {
    pub argv: Vec<String>,
    /// Shown as `-----> Installing dependencies with {how}`.
    pub how: &'static str,
    /// Whether the installer is yarn (which the build then fetches into the build cache).
    pub yarn: bool,
    /// Removes devDependencies from the installed tree, when they were installed (for a build script).
    pub prune: Option<Vec<String>>,
    /// Runs the build script.
    pub build: Vec<String>,
    pub warning: Option<String>,
}

/// yarn (classic) with `yarn.lock`, also when an npm lockfile is there too (as Heroku does); npm ci with an
/// npm lockfile; else npm install. devDependencies are installed only when a build script needs them, and
/// then pruned from the tree that becomes the layer.
pub fn install_plan(locks: Lockfiles, with_dev: bool) -> InstallPlan {
    let owned = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    if locks.yarn {
        let mut argv = owned(&[YARN_BIN, "install", "--frozen-lockfile", "--non-interactive"]);
        if !with_dev {
            argv.push("--production".to_owned());
        }
        let prune = with_dev.then(|| {
            owned(&[
                YARN_BIN,
                "install",
                "--production",
                "--frozen-lockfile",
                "--ignore-scripts",
                "--prefer-offline",
                "--non-interactive",
            ])
        });
        let warning = locks.npm.then(|| {
            "both yarn.lock and package-lock.json found: installing with yarn from yarn.lock \
             (remove the lockfile you do not use)"
                .to_owned()
        });
        return InstallPlan {
            argv,
            how: "yarn install --frozen-lockfile",
            yarn: true,
            prune,
            build: owned(&[YARN_BIN, "run", "build"]),
            warning,
        };
    }
    let (verb, how) = if locks.npm {
        ("ci", "npm ci")
    } else {
        ("install", "npm install")
    };
    let mut argv = owned(&["npm", verb]);
    if !with_dev {
        argv.push("--omit=dev".to_owned());
    }
    InstallPlan {
        argv,
        how,
        yarn: false,
        prune: with_dev.then(|| owned(&["npm", "prune", "--omit=dev"])),
        build: owned(&["npm", "run", "build"]),
        warning: None,
    }
}

impl InstallPlan {
    /// Lets yarn go on when the app's `engines.yarn` asks for a yarn it is not (after
    /// [`yarn_engine_warning`] said so): yarn classic refuses such a package otherwise.
    pub fn ignore_engines(&mut self) {
        for argv in std::iter::once(&mut self.argv).chain(self.prune.as_mut()) {
            argv.push("--ignore-engines".to_owned());
        }
        // Before `run`: after it, flags go to the script.
        self.build.insert(1, "--ignore-engines".to_owned());
    }
}

/// The warning for an `engines.yarn` that yarn classic `version` does not meet: yarn 2+ (berry) is not
/// supported.
pub fn yarn_engine_warning(range: &str, version: &str) -> Option<String> {
    match versions::node_range_allows(range, version) {
        Some(true) => None,
        Some(false) => Some(format!(
            "engines.yarn asks for {range:?}, but only yarn classic (1.x) is supported, not yarn 2+ (berry): \
             building with yarn {version}"
        )),
        None => Some(format!(
            "engines.yarn {range:?} could not be checked: building with yarn classic {version}"
        )),
    }
}

/// Whether a failed `yarn install --frozen-lockfile`'s output says that yarn.lock does not match package.json.
pub fn yarn_lock_outdated(output: &str) -> bool {
    output.contains("lockfile needs to be updated")
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
                    engines_yarn: None,
                }),
            ),
            (
                r#"{"engines":{"yarn":"^3.6.0","node":18}}"#,
                Ok(PackageJson {
                    engines_yarn: Some("^3.6.0".into()),
                    ..PackageJson::default()
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
        let yarn = YARN_BIN;
        let yarn_prune = format!(
            "{yarn} install --production --frozen-lockfile --ignore-scripts --prefer-offline --non-interactive"
        );
        // (locks, with dev, argv, prune, warns)
        let cases: Vec<(Lockfiles, bool, String, Option<String>, bool)> = vec![
            (locks(true, false), false, "npm ci --omit=dev".into(), None, false),
            (
                locks(true, false),
                true,
                "npm ci".into(),
                Some("npm prune --omit=dev".into()),
                false,
            ),
            (
                locks(false, false),
                false,
                "npm install --omit=dev".into(),
                None,
                false,
            ),
            (
                locks(false, false),
                true,
                "npm install".into(),
                Some("npm prune --omit=dev".into()),
                false,
            ),
            (
                locks(false, true),
                false,
                format!("{yarn} install --frozen-lockfile --non-interactive --production"),
                None,
                false,
            ),
            (
                locks(false, true),
                true,
                format!("{yarn} install --frozen-lockfile --non-interactive"),
                Some(yarn_prune.clone()),
                false,
            ),
            // Both lockfiles: yarn wins, with a warning.
            (
                locks(true, true),
                false,
                format!("{yarn} install --frozen-lockfile --non-interactive --production"),
                None,
                true,
            ),
            (
                locks(true, true),
                true,
                format!("{yarn} install --frozen-lockfile --non-interactive"),
                Some(yarn_prune),
                true,
            ),
        ];
        for (locks, dev, argv, prune, warns) in cases {
            let plan = install_plan(locks, dev);
            assert_eq!(plan.argv.join(" "), argv, "{locks:?} dev={dev}");
            assert_eq!(plan.prune.map(|p| p.join(" ")), prune, "{locks:?} dev={dev}");
            assert_eq!(plan.warning.is_some(), warns, "{locks:?} dev={dev}");
            assert_eq!(plan.yarn, locks.yarn, "{locks:?} dev={dev}");
            let runner = if locks.yarn { YARN_BIN } else { "npm" };
            assert_eq!(plan.build.join(" "), format!("{runner} run build"));
        }
    }

    #[test]
    fn ignore_engines_reaches_install_and_prune() {
        let mut plan = install_plan(
            Lockfiles {
                npm: false,
                yarn: true,
            },
            true,
        );
        plan.ignore_engines();
        assert!(plan.argv.ends_with(&["--ignore-engines".to_owned()]));
        assert!(plan.prune.unwrap().ends_with(&["--ignore-engines".to_owned()]));
        assert_eq!(
            plan.build.join(" "),
            format!("{YARN_BIN} --ignore-engines run build")
        );
    }

    #[test]
    fn yarn_engines() {
        // (engines.yarn, warns, mentions berry)
        let cases = [
            ("1.x", false, false),
            ("^1.22.0", false, false),
            (">=1.10", false, false),
            ("*", false, false),
            ("2.x", true, true),
            ("^3.6.0", true, true),
            (">=4", true, true),
            ("1.x || 3.x", false, false),
            ("1.22.0 - 1.22.22", true, false),
        ];
        for (range, warns, berry) in cases {
            let warning = yarn_engine_warning(range, "1.22.22");
            assert_eq!(warning.is_some(), warns, "{range}: {warning:?}");
            assert_eq!(
                warning.as_deref().is_some_and(|w| w.contains("berry")),
                berry,
                "{range}: {warning:?}"
            );
        }
    }

    #[test]
    fn yarn_outdated_lockfile_is_recognised() {
        let tail = "yarn install v1.22.22\n[1/4] Resolving packages...\n\
                    error Your lockfile needs to be updated, but yarn was run with `--frozen-lockfile`.";
        assert!(yarn_lock_outdated(tail));
        assert!(!yarn_lock_outdated(
            "error An unexpected error occurred: \"https://registry.npmjs.org/x: Not found\"."
        ));
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
