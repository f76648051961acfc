//! The Node.js buildpack's steps: the `engines.node` check, `node_modules` installed (npm ci, npm install or
//! yarn) into the dependency layer at `/app/node_modules`, and the `build` script run on a copy of the app.

use std::path::PathBuf;

use crate::build::{read_source_file, LanguageOutput};
use crate::cache::{cache_err, dependency_key, NODE_BUILDPACK_VERSION};
use crate::ctx::Ctx;
use crate::node::{self, Lockfiles, PackageJson, NODE_MODULES};
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
    let stack_has_yarn = ctx.stack.packages.iter().any(|p| p.starts_with("yarnpkg="));
    let plan = node::install_plan(locks, stack_has_yarn, package.build_script);
    if let Some(warning) = &plan.warning {
        ctx.warn(warning).await;
    }

    let mut key_parts: Vec<&[u8]> = vec![plan.how.as_bytes()];
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
            || install(ctx, &inputs, plan.argv.clone(), plan.how),
        )
        .await?;

    let mut output = LanguageOutput {
        env: vec![("NODE_ENV", "production")],
        path: vec!["/app/node_modules/.bin"],
        ..LanguageOutput::default()
    };
    if package.build_script {
        ctx.say("-----> Running the build script (npm run build)").await;
        let app = ctx.copy_app(&["node_modules"]).await?;
        let mount_point = app.join("node_modules");
        std::fs::create_dir_all(&mount_point).map_err(cache_err(&mount_point))?;
        let binds = vec![bind(&app, "/app", false), bind(&deps.dir, NODE_MODULES, false)];
        let argv = ["npm", "run", "build"].map(str::to_owned).to_vec();
        ctx.run("npm run build", binds, "/app", node::BUILD_ENV, argv)
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

async fn install(
    ctx: &Ctx<'_>,
    inputs: &[(&str, Vec<u8>)],
    argv: Vec<String>,
    how: &str,
) -> Result<PathBuf, BuildError> {
    ctx.say(format!("-----> Installing dependencies with {how}"))
        .await;
    let dir = ctx.scratch_dir("node-install")?;
    for (name, bytes) in inputs {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(cache_err(&path))?;
    }
    let binds = vec![bind(&dir, "/app", false)];
    ctx.run(how, binds, "/app", node::BUILD_ENV, argv).await?;
    let modules = dir.join("node_modules");
    // A package without dependencies gets an empty layer rather than none, so every Node.js image has the
    // same shape.
    std::fs::create_dir_all(&modules).map_err(cache_err(&modules))?;
    Ok(modules)
}
