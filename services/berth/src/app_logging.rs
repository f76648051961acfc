//! Feeding the apps' logs (`app-logs`) in `berth server`: instances' output from the node agent, the router's
//! access lines, and the platform's events from the store, each as a line of the app it belongs to.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use agent_contract::{InstanceOutput, OutputLine};
use app_logs::{line, AppLogs, LogSource};
use tokio::sync::{mpsc, watch};
use vocabulary::{AppId, AppName};

/// How many instance output lines may wait between the agent and the logs before the agent drops (and
/// counts) them.
pub(crate) const OUTPUT_CHANNEL_LINES: usize = 8192;

/// How many access records may wait before the router drops (and counts, in its metrics) them.
pub(crate) const ACCESS_CHANNEL_RECORDS: usize = 8192;

/// Instances' lines as `app[web.1]`, the agent's lines about them as `berth[web.1]`, its drop counts as
/// `berth[logs]`. The task ends once the agent is gone (its sender dropped) and everything it sent is queued.
pub(crate) fn forward_instance_output(
    logs: AppLogs,
    mut output: mpsc::Receiver<InstanceOutput>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(out) = output.recv().await {
            let entry = match out.line {
                OutputLine::Text(text) => line(LogSource::App, out.process, text.as_bytes()),
                OutputLine::Platform(text) => line(LogSource::Berth, out.process, text.as_bytes()),
                OutputLine::Dropped(count) => app_logs::dropped_marker(count),
            };
            logs.log(out.app, entry).await;
        }
    })
}

/// The router's access records as `router` lines of the app whose host was asked for. App names are looked
/// up once and remembered until the route table changes (an app deleted, or made again under another id).
pub(crate) fn forward_access_records(
    logs: AppLogs,
    store: store::Store,
    mut records: mpsc::Receiver<proxy::AccessRecord>,
    mut routes: watch::Receiver<Arc<route_table::RouteTable>>,
) {
    tokio::spawn(async move {
        let mut ids: HashMap<String, Option<AppId>> = HashMap::new();
        while let Some(record) = records.recv().await {
            if routes.has_changed().unwrap_or(false) {
                routes.borrow_and_update();
                ids.clear();
            }
            let Some(name) = record.app.clone() else { continue };
            let id = match ids.get(&name) {
                Some(id) => *id,
                None => {
                    let id = match AppName::new(&name) {
                        Ok(app) => store.app_by_name(&app).await.ok().flatten().map(|a| a.id),
                        Err(_) => None,
                    };
                    ids.insert(name, id);
                    id
                }
            };
            if let Some(id) = id {
                logs.try_log(id, line(LogSource::Router, "", access_text(&record).as_bytes()));
            }
        }
    });
}

/// Heroku's router line: `at=info method=GET path="/" host=… request_id=… dyno=web.1 connect=… service=…ms
/// status=200 bytes=5`, with `at=error code=H12` when the request did not end normally.
pub(crate) fn access_text(r: &proxy::AccessRecord) -> String {
    let ms = |d: Duration| d.as_millis();
    let mut text = match r.error {
        Some(code) => format!("at=error code={code} "),
        None => "at=info ".to_owned(),
    };
    text.push_str(&format!("method={} path={:?} host={}", r.method, r.path, r.host));
    if let Some(id) = &r.request_id {
        text.push_str(&format!(" request_id={id}"));
    }
    if let Some(dyno) = &r.instance {
        text.push_str(&format!(" dyno={dyno}"));
    }
    if let Some(upstream) = r.upstream {
        text.push_str(&format!(" connect+wait={}ms", ms(upstream)));
    }
    text.push_str(&format!(
        " service={}ms status={} bytes={}",
        ms(r.total),
        r.status,
        r.bytes
    ));
    text
}

/// Every event the store records, also as a `berth[...]` line of its app.
pub(crate) fn forward_events(logs: AppLogs, store: &store::Store) {
    let mut events = store.subscribe_events();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) => {
                    let text = format!("{} by {}", event.description, event.actor);
                    logs.log(
                        event.app,
                        line(LogSource::Berth, event.kind.log_process(), text.as_bytes()),
                    )
                    .await;
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        missed,
                        "events not written to apps' logs: the log writer fell behind"
                    );
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_lines() {
        let ok = proxy::AccessRecord {
            app: Some("shop".into()),
            instance: Some("web.1".into()),
            backend: None,
            method: "GET".into(),
            host: "shop.localhost".into(),
            path: "/cart".into(),
            status: 200,
            bytes: 12,
            upstream: Some(Duration::from_millis(3)),
            total: Duration::from_millis(4),
            request_id: Some("abc".into()),
            error: None,
        };
        let failed = proxy::AccessRecord {
            instance: None,
            upstream: None,
            status: 503,
            request_id: None,
            error: Some("H14"),
            ..ok.clone()
        };
        let cases = [
            (ok, "at=info method=GET path=\"/cart\" host=shop.localhost request_id=abc dyno=web.1 connect+wait=3ms service=4ms status=200 bytes=12"),
            (failed, "at=error code=H14 method=GET path=\"/cart\" host=shop.localhost service=4ms status=503 bytes=12"),
        ];
        for (record, want) in cases {
            assert_eq!(access_text(&record), want);
        }
    }
}
