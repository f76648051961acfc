use app_logs::{line, LogSource};
use axum::http::StatusCode;
use serde_json::Value;

use crate::Harness;

/// The texts of an NDJSON body (which the harness parsed as JSON when it is a single line).
fn texts(body: &Value) -> Vec<String> {
    let raw = match body {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        one => one.to_string(),
    };
    raw.lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn logs_are_the_owners_filtered_ndjson() {
    let mut h = Harness::new().await;
    let alice = h.tenant("alice").await;
    let bob = h.tenant("bob").await;
    h.create_app("shop", &alice).await;
    let shop = h.app("shop").await;
    for (source, process, text) in [
        (LogSource::App, "web.1", "one"),
        (LogSource::Router, "", "two"),
        (LogSource::App, "web.2", "three"),
        (LogSource::Berth, "deploy", "four"),
    ] {
        h.logs.log(shop.id, line(source, process, text.as_bytes())).await;
    }

    let all = h.get("/v1/apps/shop/logs", &alice).await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(all.headers["content-type"], "application/x-ndjson");
    // No event lines: `berth server` writes events to the log, and this harness has no such forwarder.
    assert_eq!(texts(&all.body), ["one", "two", "three", "four"]);
    let cases = [
        ("?lines=2", vec!["three", "four"]),
        ("?source=app", vec!["one", "three"]),
        ("?ps=web.2", vec!["three"]),
        ("?ps=web&lines=1", vec!["three"]),
        ("?source=berth&ps=deploy", vec!["four"]),
        ("?lines=0", vec![]),
    ];
    for (query, want) in cases {
        let reply = h.get(&format!("/v1/apps/shop/logs{query}"), &alice).await;
        assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.body);
        assert_eq!(texts(&reply.body), want, "{query}: {}", reply.body);
    }
    for bad in ["?source=kernel", "?ps=web%201", "?lines=1000001", "?lines=-1"] {
        let reply = h.get(&format!("/v1/apps/shop/logs{bad}"), &alice).await;
        assert!(reply.status.is_client_error(), "{bad}: {}", reply.status);
    }

    // Another tenant's app does not exist, as far as bob can tell.
    let reply = h.get("/v1/apps/shop/logs", &bob).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error(), "app \"shop\" not found");
    assert_eq!(
        h.get("/v1/apps/shop/events", &bob).await.status,
        StatusCode::NOT_FOUND
    );

    // Deleting the app deletes its log.
    assert_eq!(
        h.delete("/v1/apps/shop", &alice).await.status,
        StatusCode::NO_CONTENT
    );
    let kept = h
        .logs
        .tail(shop.id, 100, app_logs::Filter::default())
        .await
        .unwrap();
    assert!(kept.is_empty(), "{kept:?}");
}

#[tokio::test]
async fn events_list_creates_and_scales_newest_first() {
    let mut h = Harness::new().await;
    let alice = h.tenant("alice").await;
    h.create_app("shop", &alice).await;
    let reply = h
        .call(
            axum::http::Method::PATCH,
            "/v1/apps/shop/formation",
            Some(&alice),
            Some(serde_json::json!({"web": 2})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let events = h.get("/v1/apps/shop/events", &alice).await;
    assert_eq!(events.status, StatusCode::OK);
    let seen: Vec<(&str, &str, &str)> = events
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap(),
                e["description"].as_str().unwrap(),
                e["actor"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("scaled", "Scaled to web=2", "alice"),
            ("app_created", "Created app shop", "alice"),
        ]
    );
    let one = h.get("/v1/apps/shop/events?limit=1", &alice).await;
    assert_eq!(one.body.as_array().unwrap().len(), 1);
    assert!(h
        .get("/v1/apps/shop/events?limit=0", &alice)
        .await
        .status
        .is_client_error());
}

#[tokio::test]
async fn following_streams_new_lines_and_keep_alives() {
    let mut h = Harness::new().await;
    let alice = h.tenant("alice").await;
    h.create_app("shop", &alice).await;
    let shop = h.app("shop").await;
    h.logs.log(shop.id, line(LogSource::App, "web.1", b"old")).await;
    let (status, content_type, mut lines) =
        crate::route_watch::Lines::open(&h, "/v1/apps/shop/logs?follow=true&lines=1&source=app", &alice)
            .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/x-ndjson");
    let text = |raw: String| serde_json::from_str::<Value>(&raw).unwrap()["text"].clone();
    assert_eq!(text(lines.next_raw().await), "old");
    h.logs
        .log(shop.id, line(LogSource::Router, "", b"filtered out"))
        .await;
    h.logs.log(shop.id, line(LogSource::App, "web.1", b"new")).await;
    assert_eq!(text(lines.next_raw().await), "new");
    // Quiet: keep-alives (the harness's heartbeat is short).
    assert_eq!(lines.next_raw().await, api_contract::LOG_KEEPALIVE_LINE);
    // A server shutting down ends the stream.
    h.logs.end_followers();
    loop {
        match http_body_util::BodyExt::frame(&mut lines.body).await {
            None => break,
            Some(frame) => assert!(frame.unwrap().into_data().is_ok_and(|d| &d[..] == b"{}\n")),
        }
    }
}
