//! The Node.js, static-site and Procfile-only buildpacks, built from the sample apps in tests/fixtures with
//! the real stack, checked with skopeo and umoci, and served.

use vocabulary::ProcessType;

use crate::python::assert_no_scratch_left;
use crate::support::{
    assert_logged, build, build_ok, chain, check_with_oci_tools, fixture, serve_and_get, shared_builder,
    write,
};
use crate::{Needs, Test};

pub const TESTS: &[Test] = &[
    (
        "express_app_builds_serves_and_reuses_node_modules",
        Needs::RootAndTools,
        express_app_builds_serves_and_reuses_node_modules,
    ),
    (
        "node_build_script_runs_with_dev_dependencies",
        Needs::RootAndTools,
        node_build_script_runs_with_dev_dependencies,
    ),
    (
        "yarn_app_builds_prunes_dev_dependencies_and_reuses_node_modules",
        Needs::RootAndTools,
        yarn_app_builds_prunes_dev_dependencies_and_reuses_node_modules,
    ),
    (
        "outdated_yarn_lock_fails_the_build",
        Needs::RootAndTools,
        outdated_yarn_lock_fails_the_build,
    ),
    (
        "failing_npm_install_fails_the_build",
        Needs::RootAndTools,
        failing_npm_install_fails_the_build,
    ),
    (
        "static_site_is_served_with_content_types",
        Needs::RootAndTools,
        static_site_is_served_with_content_types,
    ),
    (
        "procfile_only_app_runs_on_the_stack",
        Needs::RootAndTools,
        procfile_only_app_runs_on_the_stack,
    ),
];

fn express_app_builds_serves_and_reuses_node_modules() {
    let app = "it-express";
    let builder = shared_builder(app);
    let (_tmp, src) = fixture("express");
    // A pushed node_modules never reaches the image.
    write(&src.join("node_modules/stale/index.js"), "stale\n");

    let (first, log) = build_ok(&builder, app, &src, "it-express-1");
    assert_eq!(first.buildpack, "nodejs");
    assert_eq!(first.processes[&ProcessType::web()], "npm start");
    assert_eq!(first.layers.len(), 3, "stack, node_modules, app");
    assert!(!first.dependencies_reused);
    for step in [
        "-----> Node.js app detected",
        "-----> Installing dependencies with npm ci",
        "-----> Writing the dependencies layer",
        "-----> Default web process: npm start",
    ] {
        assert_logged(&log, step);
    }
    assert!(
        log.iter()
            .any(|l| l.starts_with("       Node.js 18.") && l.ends_with("(engines.node \">=18\")")),
        "{log:#?}"
    );

    let store = &builder.config().store;
    let bundle = check_with_oci_tools(store.root(), "it-express-1", &first, r#"{"web":"npm start"}"#);
    let rootfs = bundle.path().join("bundle/rootfs");
    assert!(rootfs.join("app/server.js").is_file());
    assert!(rootfs.join("app/node_modules/express/package.json").is_file());
    assert!(!rootfs.join("app/node_modules/stale").exists());
    assert!(rootfs.join("usr/bin/node").exists());
    // npm's cache is kept in the app's build cache, outside the image.
    let npm_cache = builder
        .config()
        .cache_dir
        .join("apps")
        .join(app)
        .join("build/npm");
    assert!(npm_cache.join("_cacache").is_dir(), "{}", npm_cache.display());
    assert!(!rootfs.join("cache").exists() && !rootfs.join("app/.npm").exists());

    let response = &serve_and_get(&builder, &first, &["/"])[0];
    assert!(response.head.starts_with("http/1.1 200 "), "{}", response.head);
    assert_eq!(response.body, "hello from express\n");

    // A code-only change: node_modules is reused as is.
    let server = std::fs::read_to_string(src.join("server.js")).unwrap();
    write(
        &src.join("server.js"),
        &server.replace("hello from express", "hello again from express"),
    );
    let (second, log) = build_ok(&builder, app, &src, "it-express-2");
    assert!(second.dependencies_reused);
    assert_logged(
        &log,
        "-----> Reusing node_modules layer (package.json and lockfiles unchanged)",
    );
    assert!(!log.iter().any(|l| l.contains("npm ci")), "{log:#?}");
    assert_eq!(second.layers[1], first.layers[1], "same node_modules layer");
    assert_ne!(second.layers[2].digest, first.layers[2].digest, "new app layer");
    let response = &serve_and_get(&builder, &second, &["/"])[0];
    assert_eq!(response.body, "hello again from express\n");
    assert_no_scratch_left(&builder.config().cache_dir);
}

fn node_build_script_runs_with_dev_dependencies() {
    let app = "it-node-build";
    let builder = shared_builder(app);
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    // No lockfile (npm install), no dependencies, an engines range the stack cannot meet, a build script
    // writing into the app, and server.js as npm start's default.
    write(
        &src.join("package.json"),
        r#"{"name":"b","version":"1.0.0","engines":{"node":"20.x"},"scripts":{"build":"node build.js"}}"#,
    );
    write(
        &src.join("build.js"),
        "require('fs').writeFileSync('dist.txt', 'built by ' + process.version + '\\n');\n",
    );
    write(
        &src.join("server.js"),
        "const fs = require('fs');\nrequire('http').createServer((q, s) => s.end(fs.readFileSync('dist.txt'))).listen(process.env.PORT);\n",
    );
    let (built, log) = build_ok(&builder, app, &src, "it-node-build-1");
    assert_logged(&log, "-----> Installing dependencies with npm install");
    assert_logged(&log, "-----> Pruning devDependencies");
    assert_logged(&log, "-----> Running the build script (npm run build)");
    assert!(
        log.iter().any(|l| l
            .starts_with("       warning: engines.node asks for \"20.x\", but the stack has Node.js 18.")),
        "{log:#?}"
    );
    assert_eq!(built.processes[&ProcessType::web()], "npm start");
    let response = &serve_and_get(&builder, &built, &["/"])[0];
    assert!(response.body.starts_with("built by v18."), "{}", response.body);
}

fn yarn_app_builds_prunes_dev_dependencies_and_reuses_node_modules() {
    let app = "it-yarn";
    let builder = shared_builder(app);
    let (_tmp, src) = fixture("yarn");
    // Both lockfiles: yarn wins, with a warning; engines.yarn asks for berry.
    write(&src.join("package-lock.json"), "{}\n");
    let package = std::fs::read_to_string(src.join("package.json")).unwrap();
    write(
        &src.join("package.json"),
        &package.replacen('{', r#"{"engines":{"yarn":">=3"},"#, 1),
    );
    let (first, log) = build_ok(&builder, app, &src, "it-yarn-1");
    assert_eq!(first.buildpack, "nodejs");
    assert!(!first.dependencies_reused);
    assert!(log.iter().any(|l| l.starts_with("       yarn 1.")), "{log:#?}");
    assert!(
        log.iter()
            .any(|l| l.starts_with("       warning: both yarn.lock and package-lock.json found")),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with("       warning: engines.yarn asks for \">=3\"")
                && l.contains("not yarn 2+ (berry)")),
        "{log:#?}"
    );
    for line in [
        "-----> Installing dependencies with yarn install --frozen-lockfile",
        "-----> Pruning devDependencies",
        "-----> Running the build script (yarn run build)",
    ] {
        assert_logged(&log, line);
    }
    assert!(!log.iter().any(|l| l.contains("npm ci")), "{log:#?}");
    let store = &builder.config().store;
    let bundle = check_with_oci_tools(store.root(), "it-yarn-1", &first, r#"{"web":"npm start"}"#);
    let rootfs = bundle.path().join("bundle/rootfs");
    assert!(rootfs.join("app/node_modules/escape-html/package.json").is_file());
    assert!(
        !rootfs.join("app/node_modules/pluralize").exists(),
        "devDependency pruned"
    );
    assert!(rootfs.join("app/built.txt").is_file());
    // The build script needed the devDependency, and the served app does not find it.
    let response = &serve_and_get(&builder, &first, &["/"])[0];
    assert!(response.head.starts_with("http/1.1 200 "), "{}", response.head);
    assert_eq!(response.body, "&lt;hello&gt; built pages, pluralize pruned\n");

    // A code-only change: yarn comes from the build cache, the pruned node_modules layer is reused, and the
    // build script still finds its devDependency.
    let server = std::fs::read_to_string(src.join("server.js")).unwrap();
    write(&src.join("server.js"), &server.replace("<hello>", "<again>"));
    let (second, log) = build_ok(&builder, app, &src, "it-yarn-2");
    assert!(second.dependencies_reused);
    assert!(
        log.iter()
            .any(|l| l.starts_with("       yarn 1.") && l.ends_with("(from the build cache)")),
        "{log:#?}"
    );
    assert_logged(
        &log,
        "-----> Reusing node_modules layer (package.json and lockfiles unchanged)",
    );
    assert!(!log.iter().any(|l| l.contains("Pruning")), "{log:#?}");
    assert_eq!(second.layers[1], first.layers[1], "same node_modules layer");
    let response = &serve_and_get(&builder, &second, &["/"])[0];
    assert_eq!(response.body, "&lt;again&gt; built pages, pluralize pruned\n");
    assert_no_scratch_left(&builder.config().cache_dir);
}

fn outdated_yarn_lock_fails_the_build() {
    let app = "it-yarn-outdated";
    let builder = shared_builder(app);
    let (_tmp, src) = fixture("yarn");
    // A dependency yarn.lock does not have.
    let package = std::fs::read_to_string(src.join("package.json")).unwrap();
    write(
        &src.join("package.json"),
        &package.replace(
            r#""escape-html": "1.0.3""#,
            r#""escape-html": "1.0.3", "is-odd": "3.0.1""#,
        ),
    );
    let (result, log) = build(&builder, app, &src, "it-yarn-outdated-1");
    let message = chain(&result.unwrap_err());
    assert_eq!(
        message,
        "yarn.lock is out of date with package.json: run `yarn install` and commit yarn.lock"
    );
    assert_logged(
        &log,
        "-----> Installing dependencies with yarn install --frozen-lockfile",
    );
    assert_no_scratch_left(&builder.config().cache_dir);
}

fn failing_npm_install_fails_the_build() {
    let app = "it-npm-fails";
    let builder = shared_builder(app);
    let (_tmp, src) = fixture("npm-fails");
    let (result, log) = build(&builder, app, &src, "it-npm-fails-1");
    let err = result.unwrap_err();
    let message = chain(&err);
    assert!(
        message.starts_with("npm install failed (exit status: 1); its last lines:"),
        "{message}"
    );
    assert!(message.contains("404"), "npm's own reason is shown: {message}");
    assert_logged(&log, "-----> Installing dependencies with npm install");
    assert!(
        !log.iter().any(|l| l.starts_with("-----> Built image")),
        "{log:#?}"
    );
    assert_no_scratch_left(&builder.config().cache_dir);
}

fn static_site_is_served_with_content_types() {
    let app = "it-static";
    let builder = shared_builder(app);
    let (_tmp, src) = fixture("static");
    let (built, log) = build_ok(&builder, app, &src, "it-static-1");
    assert_eq!(built.buildpack, "static");
    assert_eq!(built.layers.len(), 2, "stack, app");
    let web = "python3 -m http.server --directory /app $PORT";
    assert_eq!(built.processes[&ProcessType::web()], web);
    assert_logged(&log, "-----> Static site detected");
    assert_logged(&log, "-----> .slugignore leaves out 2 paths");

    let store = &builder.config().store;
    let bundle = check_with_oci_tools(
        store.root(),
        "it-static-1",
        &built,
        &format!(r#"{{"web":"{web}"}}"#),
    );
    let rootfs = bundle.path().join("bundle/rootfs");
    assert!(rootfs.join("app/index.html").is_file());
    assert!(!rootfs.join("app/logo.psd").exists(), ".slugignore: *.psd");
    assert!(!rootfs.join("app/drafts").exists(), ".slugignore: drafts/");

    let responses = serve_and_get(&builder, &built, &["/", "/style.css", "/app.js"]);
    let expected = [
        ("content-type: text/html", "hello from a static site"),
        ("content-type: text/css", "h1 { color: teal; }"),
        // Python 3.11 says application/javascript, newer mime.types text/javascript.
        ("javascript", "static sample"),
    ];
    for (response, (content_type, body)) in responses.iter().zip(expected) {
        assert!(response.head.starts_with("http/1.0 200"), "{}", response.head);
        assert!(response.head.contains(content_type), "{}", response.head);
        assert!(response.body.contains(body), "{}", response.body);
    }
}

fn procfile_only_app_runs_on_the_stack() {
    let app = "it-procfile";
    let builder = shared_builder(app);
    let (_tmp, src) = fixture("procfile-shell");
    let (built, log) = build_ok(&builder, app, &src, "it-procfile-1");
    assert_eq!(built.buildpack, "procfile");
    assert_eq!(built.layers.len(), 2, "stack, app");
    assert_eq!(built.processes[&ProcessType::web()], "./start.sh");
    assert_logged(
        &log,
        "-----> Procfile app detected (no language files: the stack runs it as is)",
    );
    let response = &serve_and_get(&builder, &built, &["/"])[0];
    assert_eq!(response.body, "hello from a Procfile app\n");
}
