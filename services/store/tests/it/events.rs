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
