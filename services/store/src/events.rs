//! Events: an app's history (deploys, scale changes, crashes, config changes), append-only, newest first.

use tokio::sync::broadcast;
use vocabulary::AppId;

use crate::rows::{self, now, time_text};
use crate::{Event, EventKind, Store, StoreError};

/// Events announced to [`Store::subscribe_events`] that a slow subscriber may fall behind by.
pub(crate) const ANNOUNCED_EVENTS: usize = 1024;

/// The most events [`Store::events`] returns.
pub const MAX_EVENTS: u32 = 1000;

pub(crate) fn announcer() -> broadcast::Sender<Event> {
    broadcast::channel(ANNOUNCED_EVENTS).0
}

impl Store {
    /// Records that something happened to `app`, done by `actor` (an account's name, or [`Event::BERTH`]),
    /// and announces it to [`Store::subscribe_events`] (`berth server` writes each as a line of the app's log).
    pub async fn record_event(
        &self,
        app: AppId,
        kind: EventKind,
        description: &str,
        actor: &str,
    ) -> Result<Event, StoreError> {
        let at = now();
        sqlx::query("INSERT INTO events (app_id, kind, description, actor, at) VALUES ($1, $2, $3, $4, $5)")
            .bind(app.to_string())
            .bind(kind.as_str())
            .bind(description)
            .bind(actor)
            .bind(time_text(at))
            .execute(&self.pool)
            .await?;
        let event = Event {
            app,
            kind,
            description: description.to_owned(),
            actor: actor.to_owned(),
            at,
        };
        let _ = self.events.send(event.clone());
        Ok(event)
    }

    /// Events recorded from now on, as they are recorded.
    pub fn subscribe_events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// The app's last `limit` events (at most [`MAX_EVENTS`]), newest first.
    pub async fn events(&self, app: AppId, limit: u32) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query(
            "SELECT app_id, kind, description, actor, at FROM events WHERE app_id = $1 \
             ORDER BY id DESC LIMIT $2",
        )
        .bind(app.to_string())
        .bind(i64::from(limit.min(MAX_EVENTS)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Event {
                    app: rows::parsed(row, "app_id")?,
                    kind: rows::parsed(row, "kind")?,
                    description: sqlx::Row::try_get(row, "description")?,
                    actor: sqlx::Row::try_get(row, "actor")?,
                    at: rows::time(row, "at")?,
                })
            })
            .collect()
    }
}
