//! The app logs through their public handle: real files in a temp dir, the real writer thread.

use app_logs::{line, AppLogs, Filter, LogSource, LogsConfig};
use vocabulary::AppId;

fn config(dir: &std::path::Path) -> LogsConfig {
    LogsConfig {
        segment_lines: 100,
        ..LogsConfig::new(dir.join("logs"))
    }
}

fn app_line(text: &str) -> app_logs::LogLine {
    line(LogSource::App, "web.1", text.as_bytes())
}

#[tokio::test]
async fn lines_are_kept_per_app_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (AppId::new(), AppId::new());
    let logs = AppLogs::open(config(dir.path())).unwrap();
    for i in 0..250 {
        logs.log(a, app_line(&format!("a{i}"))).await;
    }
    logs.log(b, line(LogSource::Router, "", b"b0")).await;
    let tail = logs.tail(a, 1000, Filter::default()).await.unwrap();
    // 250 lines in segments of 100: the last full segment and the current one are kept.
    assert_eq!(tail.len(), 150);
    assert_eq!(tail.first().unwrap().text, "a100");
    assert_eq!(tail.last().unwrap().text, "a249");
    drop(logs);

    let logs = AppLogs::open(config(dir.path())).unwrap();
    let tail = logs.tail(a, 3, Filter::default()).await.unwrap();
    let texts: Vec<&str> = tail.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, ["a247", "a248", "a249"]);
    let b_lines = logs.tail(b, 10, Filter::default()).await.unwrap();
    assert_eq!(b_lines.len(), 1);
    assert_eq!(b_lines[0].to_string().split_once(' ').unwrap().1, "router: b0");

    logs.remove(a).await.unwrap();
    assert!(logs.tail(a, 10, Filter::default()).await.unwrap().is_empty());
    // Lines that still arrive for a removed app (its instances stopping) do not bring it back.
    logs.log(a, app_line("late")).await;
    assert!(logs.tail(a, 10, Filter::default()).await.unwrap().is_empty());
    assert!(!dir.path().join("logs").join(a.to_string()).exists());
}

#[tokio::test]
async fn a_follower_sees_new_lines_once_and_a_slow_one_gets_a_marker() {
    let dir = tempfile::tempdir().unwrap();
    let app = AppId::new();
    let logs = AppLogs::open(LogsConfig {
        follow_lines: 8,
        ..config(dir.path())
    })
    .unwrap();
    logs.log(app, app_line("before")).await;
    let web = Filter {
        source: Some(LogSource::App),
        ..Filter::default()
    };
    let (old, mut follower) = logs.follow(app, 10, web).await.unwrap();
    assert_eq!(old.len(), 1);
    logs.log(app, line(LogSource::Router, "", b"filtered out")).await;
    logs.log(app, app_line("after")).await;
    assert_eq!(follower.next().await.unwrap().text, "after");

    // Falling 20 lines behind with room for 8: the writer never waits, the follower is told.
    for i in 0..20 {
        logs.log(app, app_line(&i.to_string())).await;
    }
    logs.tail(app, 0, Filter::default()).await.unwrap();
    let first = follower.next().await.unwrap();
    assert_eq!(
        (first.source, first.process.as_str(), first.text.as_str()),
        (LogSource::Berth, "logs", "12 lines dropped")
    );
    let rest: Vec<String> = futures_lines(&mut follower, 8).await;
    assert_eq!(rest, (12..20).map(|i| i.to_string()).collect::<Vec<_>>());

    // A server shutting down ends its followers, also ones that start later.
    logs.end_followers();
    assert!(follower.next().await.is_none());
    let (_, mut late) = logs.follow(app, 0, Filter::default()).await.unwrap();
    assert!(late.next().await.is_none());
}

async fn futures_lines(follower: &mut app_logs::Follower, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(follower.next().await.unwrap().text);
    }
    out
}

#[tokio::test]
async fn try_log_counts_what_a_full_queue_drops() {
    let dir = tempfile::tempdir().unwrap();
    let app = AppId::new();
    let logs = AppLogs::open(LogsConfig {
        queue_lines: 4,
        segment_lines: 100_000,
        ..config(dir.path())
    })
    .unwrap();
    let total = 20_000u64;
    for i in 0..total {
        logs.try_log(app, app_line(&i.to_string()));
    }
    // Whatever is still counted goes out with the next line that fits.
    let mut last = None;
    while last.is_none() {
        logs.tail(app, 0, Filter::default()).await.unwrap();
        logs.try_log(app, app_line("final"));
        let tail = logs.tail(app, 1, Filter::default()).await.unwrap();
        last = tail.into_iter().find(|l| l.text == "final");
    }
    let kept = logs.tail(app, 1_000_000, Filter::default()).await.unwrap();
    let mut numbered = 0u64;
    let mut dropped = 0u64;
    for l in &kept {
        if let Some(n) = l.text.strip_suffix(" lines dropped") {
            dropped += n.parse::<u64>().unwrap();
        } else if l.text.parse::<u64>().is_ok() {
            numbered += 1;
        }
    }
    // The "final" lines that did not fit are counted too, hence ≥.
    assert!(numbered + dropped >= total, "kept {numbered} + dropped {dropped}");
    assert!(numbered <= total);
}
