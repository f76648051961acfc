use store::{Event, EventKind};

use crate::{account, app};
use store::testing::TestDatabase;

async fn events_are_kept_per_app_newest_first_and_announced(store: TestDatabase) {
    let (alice, _) = account(&store, "alice").await;
    let shop = app(&store, &alice, "shop").await;
    let blog = app(&store, &alice, "blog").await;
    let mut announced = store.subscribe_events();
    store
        .record_event(shop.id, EventKind::AppCreated, "Created app shop", "alice")
        .await
        .unwrap();
    store
        .record_event(blog.id, EventKind::Scaled, "Scaled to web=2", "alice")
        .await
        .unwrap();
    let crash = store
        .record_event(
            shop.id,
            EventKind::Crashed,
            "web.1 exited with status 3",
            Event::BERTH,
        )
        .await
        .unwrap();

    let events = store.events(shop.id, 10).await.unwrap();
    let seen: Vec<(EventKind, &str, &str)> = events
        .iter()
        .map(|e| (e.kind, e.description.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (EventKind::Crashed, "web.1 exited with status 3", "berth"),
            (EventKind::AppCreated, "Created app shop", "alice"),
        ]
    );
    assert_eq!(events[0], crash, "read back as recorded");
    assert_eq!(store.events(shop.id, 1).await.unwrap().len(), 1);

    let kinds: Vec<EventKind> = (0..3).map(|_| announced.try_recv().unwrap().kind).collect();
    assert_eq!(
        kinds,
        [EventKind::AppCreated, EventKind::Scaled, EventKind::Crashed]
    );

    // They go with their app.
    store.delete_app(shop.id).await.unwrap();
    assert!(store.events(shop.id, 10).await.unwrap().is_empty());
    assert_eq!(store.events(blog.id, 10).await.unwrap().len(), 1);
}

#[test]
fn kinds_round_trip() {
    for kind in EventKind::ALL {
        assert_eq!(kind.as_str().parse::<EventKind>(), Ok(kind));
    }
    assert!("exploded".parse::<EventKind>().is_err());
}

on_both_backends!(events_are_kept_per_app_newest_first_and_announced,);

/// Two control processes on one PostgreSQL database: what one records reaches the other's subscribers, and
/// each subscriber gets every event once.
#[tokio::test]
async fn events_reach_subscribers_of_another_store_on_postgres() {
    use std::time::Duration;
    const PATIENCE: Duration = Duration::from_secs(60);
    let Some(database) =
        crate::postgres_database("events::events_reach_subscribers_of_another_store_on_postgres").await
    else {
        return;
    };
    let other = store::Store::connect(&database.url().unwrap()).await.unwrap();
    let (alice, _) = account(&database, "alice").await;
    let shop = app(&database, &alice, "shop").await;
    let mut here = database.subscribe_events();
    let mut there = other.subscribe_events();

    let first = database
        .record_event(shop.id, EventKind::Deployed, "Deployed v1", "alice")
        .await
        .unwrap();
    let second = other
        .record_event(shop.id, EventKind::Scaled, "Scaled to web=2", "alice")
        .await
        .unwrap();
    for rx in [&mut here, &mut there] {
        // A store's own event comes at once, the other's when its notification does: in either order.
        let mut got = Vec::new();
        for _ in 0..2 {
            got.push(
                tokio::time::timeout(PATIENCE, rx.recv())
                    .await
                    .expect("an event")
                    .unwrap(),
            );
        }
        got.sort_by(|a, b| a.description.cmp(&b.description));
        assert_eq!(got, [first.clone(), second.clone()]);
    }
    // No more: each store announced its own event once, not again when its notification came back.
    let third = database
        .record_event(shop.id, EventKind::ConfigChanged, "Set GREETING", "alice")
        .await
        .unwrap();
    for rx in [&mut here, &mut there] {
        let got = tokio::time::timeout(PATIENCE, rx.recv())
            .await
            .expect("an event")
            .unwrap();
        assert_eq!(got, third);
    }
}
