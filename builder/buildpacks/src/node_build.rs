//! The Node.js buildpack's steps: the `engines.node` check, yarn classic fetched into the build cache for
//! `yarn.lock`, `node_modules` installed (npm ci, npm install or yarn) into the dependency layer at
//! `/app/node_modules`, and the `build` script run on a copy of the app. With a build script, devDependencies
//! are installed for it and pruned from a copy of the tree, which becomes the image's layer: so the layer is
//! a function of the install inputs alone (nothing the build script writes into node_modules), and both
//! trees are recorded for reuse (see `Ctx::dependencies`).

use std::path::Path;

use crate::build::{blocking, read_source_file, LanguageOutput};
use crate::cache::{cache_err, dependency_key, NODE_BUILDPACK_VERSION};
use crate::ctx::{copy_tree, Ctx, Installed};
use crate::node::{self, InstallPlan, Lockfiles, PackageJson, NODE_MODULES};
use crate::step::bind;
use crate::{versions, BuildError};

/// The files copied into the install directory, and hashed into the dependency layer's key.
const INSTALL_INPUTS: &[&str] = &[
    "package.json",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "yarn.lock",
    ".npmrc",
    ".yarnrc",
];

/// Builds with the already parsed `package.json`.
pub async fn build(ctx: &Ctx<'_>, package: &PackageJson) -> Result<LanguageOutput, BuildError> {
    let src = ctx.source_dir;
    check_engines(ctx, package).await;
    if src.join("node_modules").exists() {
        ctx.warn(
            "the pushed node_modules is left out of the image: dependencies are installed from package.json",
        )
        .await;
    }

    let mut inputs: Vec<(&str, Vec<u8>)> = Vec::new();
    for name in INSTALL_INPUTS {
        if let Some(bytes) = read_source_file(src, name)? {
            inputs.push((name, bytes));
        }
    }
    let has = |name: &str| inputs.iter().any(|(n, _)| *n == name);
    let locks = Lockfiles {
        npm: has("package-lock.json") || has("npm-shrinkwrap.json"),
        yarn: has("yarn.lock"),
    };
    let mut plan = node::install_plan(locks, package.build_script);
    if let Some(warning) = &plan.warning {
        ctx.warn(warning).await;
    }
    let yarn_version = if plan.yarn {
        let version = ensure_yarn(ctx).await?;
        if let Some(warning) = package
            .engines_yarn
            .as_deref()
            .and_then(|range| node::yarn_engine_warning(range, &version))
        {
            ctx.warn(warning).await;
            plan.ignore_engines();
        }
        version
    } else {
        String::new()
    };

    // yarn's version is in the key: a newer yarn 1.x in the build cache installs afresh.
    let argv = plan.argv.join(" ");
    let mut key_parts: Vec<&[u8]> = vec![argv.as_bytes(), yarn_version.as_bytes()];
    for (name, bytes) in &inputs {
        key_parts.push(name.as_bytes());
        key_parts.push(bytes);
    }
    let key = dependency_key(NODE_BUILDPACK_VERSION, &ctx.stack.layer.diff_id, &key_parts);
    let deps = ctx
        .dependencies(
            key,
            NODE_MODULES.trim_start_matches('/'),
            "-----> Reusing node_modules layer (package.json and lockfiles unchanged)",
            format!("berth nodejs buildpack: {}", plan.how),
            package.build_script,
            || install(ctx, &inputs, &plan),
        )
        .await?;

    let mut output = LanguageOutput {
        env: vec![("NODE_ENV", "production")],
        path: vec!["/app/node_modules/.bin"],
        ..LanguageOutput::default()
    };
    if package.build_script {
        let shown = if plan.yarn {
            "yarn run build"
        } else {
            "npm run build"
        };
        ctx.say(format!("-----> Running the build script ({shown})"))
            .await;
        let app = ctx.copy_app(&["node_modules"]).await?;
        let mount_point = app.join("node_modules");
        std::fs::create_dir_all(&mount_point).map_err(cache_err(&mount_point))?;
        let binds = vec![bind(&app, "/app", false), bind(&deps.dir, NODE_MODULES, false)];
        ctx.run(shown, binds, "/app", node::BUILD_ENV, plan.build.clone())
            .await?;
        output.app_dir = Some(app);
    }
    let has_server_js = src.join("server.js").is_file();
    if let Some(web) = node::default_web(package, has_server_js) {
        output.default_web = Some(web.to_owned());
    }
    output.deps = Some(deps);
    Ok(output)
}

async fn check_engines(ctx: &Ctx<'_>, package: &PackageJson) {
    let stack = versions::stack_version(&ctx.stack.packages, "nodejs");
    let Some(range) = &package.engines_node else {
        if let Some(stack) = stack {
            ctx.say(format!(
                "       Node.js {stack} (package.json names no engines.node)"
            ))
            .await;
        }
        return;
    };
    let Some(stack) = stack else {
        ctx.warn(format!(
            "engines.node asks for {range:?}; the stack's Node.js version is unknown"
        ))
        .await;
        return;
    };
    match versions::node_range_allows(range, &stack) {
        Some(true) => ctx.say(format!("       Node.js {stack} (engines.node {range:?})")).await,
        Some(false) => {
            ctx.warn(format!(
                "engines.node asks for {range:?}, but the stack has Node.js {stack}: building with {stack}"
            ))
            .await
        }
        None => {
            ctx.warn(format!(
                "engines.node {range:?} could not be checked against the stack's Node.js {stack}: building with {stack}"
            ))
            .await
        }
    }
}

/// yarn classic in the per-app build cache, fetched from the npm registry the first time; its version.
async fn ensure_yarn(ctx: &Ctx<'_>) -> Result<String, BuildError> {
    let cache = ctx.cache.app_build_cache(ctx.app);
    let prefix = cache.join(node::YARN_PREFIX.trim_start_matches("/cache/"));
    let manifest = prefix.join("lib/node_modules/yarn/package.json");
    let cached = manifest.is_file() && prefix.join("bin/yarn").exists();
    if !cached {
        ctx.say(format!(
            "-----> Installing yarn classic ({}) from the npm registry into the build cache",
            node::YARN_PACKAGE
        ))
        .await;
        let _ = std::fs::remove_dir_all(&prefix);
        let argv = [
            "npm",
            "install",
            "--global",
            "--prefix",
            node::YARN_PREFIX,
            node::YARN_PACKAGE,
        ]
        .map(str::to_owned)
        .to_vec();
        ctx.run("installing yarn", Vec::new(), "/tmp", node::BUILD_ENV, argv)
            .await?;
    }
    let bytes = std::fs::read(&manifest).map_err(cache_err(&manifest))?;
    let version = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("version")?.as_str().map(str::to_owned))
        .ok_or_else(|| cache_err(&manifest)(std::io::Error::other("no version in yarn's package.json")))?;
    let from = if cached { " (from the build cache)" } else { "" };
    ctx.say(format!("       yarn {version}{from}")).await;
    Ok(version)
}

/// Installs into a scratch directory; with a prune command, also prunes a copy of the tree, which becomes the
/// layer while the full tree serves the build script.
async fn install(
    ctx: &Ctx<'_>,
    inputs: &[(&str, Vec<u8>)],
    plan: &InstallPlan,
) -> Result<Installed, BuildError> {
    let how = plan.how;
    ctx.say(format!("-----> Installing dependencies with {how}"))
        .await;
    let dir = ctx.scratch_dir("node-install")?;
    for (name, bytes) in inputs {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(cache_err(&path))?;
    }
    run_installer(ctx, &dir, how, plan.argv.clone(), plan.yarn).await?;
    let modules = dir.join("node_modules");
    // A package without dependencies gets an empty layer rather than none, so every Node.js image has the
    // same shape.
    std::fs::create_dir_all(&modules).map_err(cache_err(&modules))?;
    let Some(prune) = &plan.prune else {
        return Ok(modules.into());
    };
    ctx.say("-----> Pruning devDependencies").await;
    let pruned = ctx.scratch_dir("node-pruned")?;
    let (from, to) = (dir.clone(), pruned.clone());
    blocking(move || copy_tree(&from, &to, &[])).await?;
    let step = if plan.yarn {
        "yarn install --production"
    } else {
        "npm prune"
    };
    run_installer(ctx, &pruned, step, prune.clone(), plan.yarn).await?;
    Ok(Installed {
        layer_dir: pruned.join("node_modules"),
        build_dir: Some(modules),
    })
}

/// Runs an install step with `dir` at `/app`; yarn's verdict on an outdated lockfile becomes a clear error.
async fn run_installer(
    ctx: &Ctx<'_>,
    dir: &Path,
    name: &str,
    argv: Vec<String>,
    yarn: bool,
) -> Result<(), BuildError> {
    let binds = vec![bind(dir, "/app", false)];
    match ctx.run(name, binds, "/app", node::BUILD_ENV, argv).await {
        Err(BuildError::Step { tail, .. }) if yarn && node::yarn_lock_outdated(&tail) => {
            Err(BuildError::YarnLockOutdated)
        }
        other => other,
    }
}
