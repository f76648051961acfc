//! The Python buildpack's steps: the Python version check, requirements (from `requirements.txt`, else
//! `pyproject.toml`'s `[project] dependencies`) installed with pip into the dependency layer, and Django's
//! `collectstatic` when there is a `manage.py` and Django is installed.

use std::path::{Path, PathBuf};

use crate::build::{read_source_file, LanguageOutput};
use crate::cache::{cache_err, dependency_key, PYTHON_BUILDPACK_VERSION};
use crate::ctx::Ctx;
use crate::step::bind;
use crate::{pip, versions, BuildError};

/// Builds; `pyproject_deps` are `pyproject.toml`'s dependencies, already read when there is no
/// `requirements.txt` (which is the lock when both files are there).
pub async fn build(ctx: &Ctx<'_>, pyproject_deps: Option<Vec<String>>) -> Result<LanguageOutput, BuildError> {
    check_version(ctx).await?;
    let src = ctx.source_dir;
    let has_manage_py = src.join("manage.py").is_file();

    let (input, file): (Option<Vec<u8>>, &str) = match (
        read_source_file(src, "requirements.txt")?,
        pyproject_deps,
    ) {
        (Some(text), _) => (Some(text), "requirements.txt"),
        (None, Some(deps)) => {
            for lock in ["poetry.lock", "uv.lock", "pdm.lock", "Pipfile.lock"] {
                if src.join(lock).is_file() {
                    ctx.warn(format!(
                        "{lock} is not read (pip cannot): installing pyproject.toml's version ranges; \
                         commit a requirements.txt (for example from `uv export` or `poetry export`) to pin them"
                    ))
                    .await;
                }
            }
            if deps.is_empty() {
                ctx.warn("pyproject.toml lists no [project] dependencies").await;
                (None, "pyproject.toml")
            } else {
                (Some(deps.join("\n").into_bytes()), "pyproject.toml")
            }
        }
        (None, None) => (None, ""),
    };

    let mut output = LanguageOutput::default();
    if let Some(input) = input {
        let key = dependency_key(
            PYTHON_BUILDPACK_VERSION,
            &ctx.stack.layer.diff_id,
            &[file.as_bytes(), &input],
        );
        let deps = ctx
            .dependencies(
                key,
                pip::DEPS_DIR.trim_start_matches('/'),
                &format!("-----> Reusing dependencies layer ({file} unchanged)"),
                format!("berth python buildpack: pip install ({file})"),
                has_manage_py,
                || install(ctx, file, &input),
            )
            .await?;
        output.deps = Some(deps);
    }

    let django = output
        .deps
        .as_ref()
        .is_some_and(|d| d.dir.join("site-packages/django").is_dir());
    if has_manage_py && django {
        output.app_dir = Some(collectstatic(ctx, output.deps.as_ref().map(|d| d.dir.as_path())).await?);
    } else if has_manage_py {
        ctx.say("       manage.py found but Django is not installed: skipping collectstatic")
            .await;
    }
    Ok(output)
}

async fn check_version(ctx: &Ctx<'_>) -> Result<(), BuildError> {
    let runtime = read_source_file(ctx.source_dir, "runtime.txt")?;
    let dot = read_source_file(ctx.source_dir, ".python-version")?;
    let text = |b: &Option<Vec<u8>>| b.as_deref().map(|b| String::from_utf8_lossy(b).into_owned());
    let Some((file, requested)) =
        versions::requested_python(text(&runtime).as_deref(), text(&dot).as_deref())
    else {
        return Ok(());
    };
    match versions::stack_version(&ctx.stack.packages, "python3") {
        Some(stack) if versions::python_honoured(&requested, &stack) => {
            ctx.say(format!("       Python {stack} ({file} asks for {requested})"))
                .await;
        }
        Some(stack) => {
            ctx.warn(format!(
                "{file} asks for Python {requested}, but the stack has Python {stack}: building with {stack}"
            ))
            .await;
        }
        None => {
            ctx.warn(format!(
                "{file} asks for Python {requested}; the stack's version is unknown"
            ))
            .await
        }
    }
    Ok(())
}

async fn install(ctx: &Ctx<'_>, file: &str, input: &[u8]) -> Result<PathBuf, BuildError> {
    ctx.say(format!("-----> Installing requirements with pip ({file})"))
        .await;
    let output = ctx.scratch_dir("python-deps")?;
    let input_dir = ctx.scratch_dir("python-input")?;
    let path = input_dir.join("requirements.txt");
    std::fs::write(&path, input).map_err(cache_err(&path))?;
    let mut binds = vec![
        bind(ctx.source_dir, "/workspace", true),
        bind(&output, pip::DEPS_DIR, false),
    ];
    // requirements.txt is read in place, so that its `-r other.txt` lines resolve.
    let requirements = if file == "requirements.txt" {
        "/workspace/requirements.txt".to_owned()
    } else {
        binds.push(bind(&input_dir, pip::REQUIREMENTS_DIR, true));
        format!("{}/requirements.txt", pip::REQUIREMENTS_DIR)
    };
    ctx.run(
        "pip install",
        binds,
        "/workspace",
        pip::ENV,
        pip::install_argv(&requirements),
    )
    .await?;
    Ok(output)
}

async fn collectstatic(ctx: &Ctx<'_>, deps: Option<&Path>) -> Result<PathBuf, BuildError> {
    ctx.say("-----> Running python3 manage.py collectstatic --noinput")
        .await;
    let app = ctx.copy_app(&[]).await?;
    let mut binds = vec![bind(&app, "/app", false)];
    if let Some(deps) = deps {
        binds.push(bind(deps, pip::DEPS_DIR, true));
    }
    let path = format!("{}:{}", pip::BIN_DIR, crate::step::BUILD_PATH);
    let mut env: Vec<(&str, &str)> = pip::RUNTIME_ENV.to_vec();
    env.push(("PATH", &path));
    env.push(("HOME", "/app"));
    let argv = ["python3", "manage.py", "collectstatic", "--noinput"]
        .map(str::to_owned)
        .to_vec();
    match ctx.run("collectstatic", binds, "/app", &env, argv).await {
        Err(BuildError::Step { status, tail, .. }) => Err(BuildError::Collectstatic { status, tail }),
        other => other.map(|()| app),
    }
}
