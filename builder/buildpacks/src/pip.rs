//! The Python buildpack's pip invocation: requirements installed into `/layers/python/site-packages`, the
//! dependency layer, inside the stack in a build container (see [`crate::step`]).

/// Where pip's output directory is bound in the build container; also the layer's prefix in the image.
pub const DEPS_DIR: &str = "/layers/python";

/// Where the requirements file is bound in the build container.
pub const REQUIREMENTS_DIR: &str = "/berth-input";

/// pip's environment in the build container (its cache is the per-app build cache at `/cache`).
pub const ENV: &[(&str, &str)] = &[
    ("PYTHONUNBUFFERED", "1"),
    ("PIP_CACHE_DIR", "/cache/pip"),
    ("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
    ("PIP_BREAK_SYSTEM_PACKAGES", "1"),
    ("PIP_NO_INPUT", "1"),
    ("PIP_PROGRESS_BAR", "off"),
    ("PIP_ROOT_USER_ACTION", "ignore"),
];

/// `pip install` of the requirements file at `requirements` in the build container.
pub fn install_argv(requirements: &str) -> Vec<String> {
    let mut argv: Vec<String> = [
        "python3",
        "-m",
        "pip",
        "install",
        "--target",
        "/layers/python/site-packages",
        "--no-warn-script-location",
        "-r",
    ]
    .map(str::to_owned)
    .to_vec();
    argv.push(requirements.to_owned());
    argv
}

/// The runtime environment of Python images (and of build steps that run the app, such as collectstatic).
pub const RUNTIME_ENV: &[(&str, &str)] = &[
    ("PYTHONPATH", "/layers/python/site-packages"),
    ("PYTHONUNBUFFERED", "1"),
];

/// Prepended to `PATH` in Python images: console scripts such as `gunicorn`.
pub const BIN_DIR: &str = "/layers/python/site-packages/bin";
