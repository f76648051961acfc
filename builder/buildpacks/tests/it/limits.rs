//! A build's sandbox: a step beyond the memory limit fails with the out-of-memory reason (read from the
//! cgroup), a fork bomb stops at the pids limit, a build past its time limit is stopped with the reason; the
//! build's cgroup is gone afterwards every time ([`crate::support::build_within`] checks).

use std::path::Path;
use std::time::Duration;

use build_sandbox::{BuildFailure, BuildLimits, LimitExceeded};
use buildpacks::classic::SourcePolicy;
use buildpacks::{BuildError, Builder};
use image_store::{ImageStore, LayerCompression};

use crate::classic::bare_repo_of;
use crate::support::{build_within, builder_config, chain, write};
use crate::{shared_cache, Needs, Test};

pub const TESTS: &[Test] = &[
    (
        "limits_a_step_out_of_memory_says_so",
        Needs::RootAndTools,
        a_step_out_of_memory_says_so,
    ),
    (
        "limits_a_fork_bomb_stops_at_the_pids_limit",
        Needs::RootAndTools,
        a_fork_bomb_stops_at_the_pids_limit,
    ),
    (
        "limits_a_build_past_its_time_limit_is_stopped",
        Needs::RootAndTools,
        a_build_past_its_time_limit_is_stopped,
    ),
    (
        "limits_an_image_over_the_size_limit_fails_the_build",
        Needs::RootAndTools,
        an_image_over_the_size_limit_fails_the_build,
    ),
    (
        "limits_a_zstd_store_writes_zstd_app_layers_over_a_gzip_stack",
        Needs::RootAndTools,
        a_zstd_store_writes_zstd_app_layers_over_a_gzip_stack,
    ),
];

const MEMORY: u64 = 128 << 20;
const PIDS: u32 = 64;

/// A builder over the shared stack with small limits, allowing `file://` buildpacks.
fn small_builder() -> Builder {
    let shared = shared_cache();
    let mut config = builder_config(&shared, &shared.join("builder-cache"));
    config.sandbox.limits = BuildLimits {
        memory_bytes: MEMORY,
        cpu_millicores: 1000,
        pids_max: PIDS,
    };
    config.buildpack_sources = SourcePolicy {
        allow_file_urls: true,
    };
    Builder::new(config)
}

/// An app whose one classic buildpack's `bin/compile` runs `compile` (a shell script).
fn app_compiling_with(tmp: &Path, compile: &str) -> std::path::PathBuf {
    let buildpack = tmp.join("buildpack");
    write(&buildpack.join("bin/detect"), "#!/bin/sh\necho Limits\n");
    write(
        &buildpack.join("bin/compile"),
        &format!("#!/bin/sh\necho '-----> Compiling'\n{compile}\n"),
    );
    write(&buildpack.join("bin/release"), "#!/bin/sh\necho '--- {}'\n");
    for script in ["detect", "compile", "release"] {
        let path = buildpack.join("bin").join(script);
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&path)
            .status()
            .unwrap();
    }
    let url = bare_repo_of(tmp, &buildpack, "limits-buildpack");
    let src = tmp.join("src");
    write(&src.join(".buildpacks"), &format!("{url}\n"));
    write(&src.join("index.txt"), "the app\n");
    src
}

fn a_step_out_of_memory_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    // `tail` keeps an endless line in memory.
    let src = app_compiling_with(tmp.path(), "set -e\ntail /dev/zero\necho survived");
    let (result, log) = build_within(&small_builder(), "oom", &src, "it-oom", None);
    let error = result.expect_err("a build beyond its memory limit must fail");
    assert_eq!(
        error.limit(),
        Some(&LimitExceeded::Memory {
            step: "bin/compile".to_owned(),
            limit: "128 MiB".to_owned(),
        }),
        "{}",
        chain(&error)
    );
    let shown = "-----> Build failed: out of memory (limit 128 MiB) while running `bin/compile`; ";
    assert!(log.iter().any(|l| l.starts_with(shown)), "{log:#?}");
    assert!(!log.iter().any(|l| l.contains("survived")), "{log:#?}");
}

fn a_fork_bomb_stops_at_the_pids_limit() {
    let tmp = tempfile::tempdir().unwrap();
    // Starts sleepers until a fork fails (dash then exits), saying how many it started.
    let src = app_compiling_with(
        tmp.path(),
        "i=0\nwhile [ $i -lt 1000 ]; do sleep 600 >/dev/null 2>&1 & i=$((i+1)); echo \"started $i\"; done",
    );
    let (result, log) = build_within(&small_builder(), "forks", &src, "it-forks", None);
    let error = result.expect_err("a fork bomb must fail the build");
    assert!(error.limit().is_none(), "{}", chain(&error));
    let started = log
        .iter()
        .filter_map(|l| l.trim().strip_prefix("started "))
        .filter_map(|n| n.parse::<u32>().ok())
        .max()
        .unwrap_or(0);
    assert!(
        started > 0 && started < PIDS,
        "started {started} sleepers with a pids limit of {PIDS}: {log:#?}"
    );
    assert!(!log.iter().any(|l| l.trim() == "started 1000"), "{log:#?}");
}

fn a_build_past_its_time_limit_is_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let src = app_compiling_with(tmp.path(), "echo sleeping\nsleep 600\necho woke up");
    let timeout = Some(Duration::from_secs(3));
    let (result, log) = build_within(&small_builder(), "slow", &src, "it-slow", timeout);
    let error = result.expect_err("a build past its time limit must fail");
    assert!(
        matches!(error, BuildError::Limit(LimitExceeded::Time { ref limit, .. }) if limit == "3 s"),
        "{}",
        chain(&error)
    );
    let shown = "-----> Build failed: the build took longer than its time limit of 3 s; make it faster or \
                 raise the limit with `berth apps update slow --build-timeout 30m` (at most 2 h)";
    assert!(log.iter().any(|l| l == shown), "{log:#?}");
    assert!(!log.iter().any(|l| l.contains("woke up")), "{log:#?}");
}

/// [`small_builder`] whose image store handle has other settings.
fn builder_with_store(store: impl FnOnce(ImageStore) -> ImageStore) -> Builder {
    let shared = shared_cache();
    let mut config = builder_config(&shared, &shared.join("builder-cache"));
    config.store = store(config.store.clone());
    config.buildpack_sources = SourcePolicy {
        allow_file_urls: true,
    };
    Builder::new(config)
}

fn an_image_over_the_size_limit_fails_the_build() {
    let tmp = tempfile::tempdir().unwrap();
    let src = app_compiling_with(tmp.path(), "echo compiled");
    // The stack alone is tens of MiB.
    let builder = builder_with_store(|store| store.with_max_image_size(1 << 20));
    let (result, log) = build_within(&builder, "huge", &src, "it-huge", None);
    let error = result.expect_err("an image over the size limit must fail the build");
    assert!(
        matches!(error, BuildError::Limit(LimitExceeded::ImageSize(_))),
        "{}",
        chain(&error)
    );
    let failed = log
        .iter()
        .find(|l| l.starts_with("-----> Build failed: the image is "))
        .unwrap_or_else(|| panic!("no failure line: {log:#?}"));
    assert!(
        failed.ends_with(
            "MiB, more than the limit of 1.0 MiB; add large files to .slugignore or ask the operator"
        ),
        "{failed}"
    );
    let store = ImageStore::open(&shared_cache().join("images")).unwrap();
    assert_eq!(store.resolve_tag("it-huge").unwrap(), None);
}

fn a_zstd_store_writes_zstd_app_layers_over_a_gzip_stack() {
    let tmp = tempfile::tempdir().unwrap();
    let src = app_compiling_with(tmp.path(), "echo compiled");
    let builder = builder_with_store(|store| store.with_layer_compression(LayerCompression::Zstd));
    let (result, log) = build_within(&builder, "zstd", &src, "it-zstd", None);
    let output = result.unwrap_or_else(|e| panic!("{}: {log:#?}", chain(&e)));
    let store = ImageStore::open(&shared_cache().join("images")).unwrap();
    let digest = store.resolve_tag("it-zstd").unwrap().unwrap();
    let image = store.read_image(&digest).unwrap();
    let compressions: Vec<_> = image.layers.iter().map(|l| l.compression).collect();
    let (stack, app) = compressions.split_first().unwrap();
    assert_eq!(*stack, LayerCompression::Gzip, "{compressions:?}");
    assert!(
        !app.is_empty() && app.iter().all(|c| *c == LayerCompression::Zstd),
        "{compressions:?}"
    );
    // The store's own unpacker reads the zstd app layer back.
    let app_layer = output.layers.last().unwrap();
    let dest = tmp.path().join("unpacked");
    std::fs::create_dir_all(&dest).unwrap();
    store
        .unpack_layer(&app_layer.digest, &app_layer.diff_id, &dest)
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(dest.join("app/index.txt")).unwrap(),
        "the app\n"
    );
}
