//! Events: an app's history (deploys, scale changes, crashes, config changes), append-only, newest first.

use sqlx::any::AnyRow;
use sqlx::AnyPool;
use tokio::sync::broadcast;
use vocabulary::AppId;

use crate::rows::{self, now, time_text};
use crate::{Backend, Event, EventKind, Store, StoreError};

/// The PostgreSQL channel that announces each recorded event to the other control processes: the payload is
/// `ID ORIGIN`, the event's row and the [`Store`] that recorded it (which announced it itself already).
const EVENTS_CHANNEL: &str = "berth_events";

const EVENT_COLUMNS: &str = "app_id, kind, description, actor, at";

fn event_from_row(row: &AnyRow) -> Result<Event, StoreError> {
    Ok(Event {
        app: rows::parsed(row, "app_id")?,
        kind: rows::parsed(row, "kind")?,
        description: sqlx::Row::try_get(row, "description")?,
        actor: sqlx::Row::try_get(row, "actor")?,
        at: rows::time(row, "at")?,
    })
}

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
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO events (app_id, kind, description, actor, at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(app.to_string())
        .bind(kind.as_str())
        .bind(description)
        .bind(actor)
        .bind(time_text(at))
        .fetch_one(&self.pool)
        .await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(EVENTS_CHANNEL)
                .bind(format!("{id} {}", self.origin))
                .execute(&self.pool)
                .await?;
        }
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

    /// Events recorded from now on, as they are recorded: by this store and, on PostgreSQL, by every other
    /// control process sharing the database (those recorded while the listening connection was down are
    /// missed; [`Store::events`] has them all).
    pub fn subscribe_events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// The app's last `limit` events (at most [`MAX_EVENTS`]), newest first.
    pub async fn events(&self, app: AppId, limit: u32) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE app_id = $1 ORDER BY id DESC LIMIT $2"
        ))
        .bind(app.to_string())
        .bind(i64::from(limit.min(MAX_EVENTS)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    /// PostgreSQL: listens for other control processes' events and announces them to this store's
    /// subscribers, until every clone of this store is gone. Listening has begun when this returns.
    pub(crate) async fn listen_for_events(&self) -> Result<(), StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect(self.options.database_url.as_str()).await?;
        listener.listen(EVENTS_CHANNEL).await?;
        let (pool, origin, announce) = (self.pool.clone(), self.origin, self.events.downgrade());
        tokio::spawn(async move {
            loop {
                // recv reconnects (and listens again) after a lost connection.
                let received = listener.recv().await;
                let Some(announce) = announce.upgrade() else {
                    return;
                };
                let payload = match received {
                    Ok(notification) => notification.payload().to_owned(),
                    Err(error) => {
                        tracing::warn!(%error, "listening for other control processes' events");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        continue;
                    }
                };
                let Some((id, from)) = payload.split_once(' ') else {
                    continue;
                };
                if from == origin.to_string() {
                    continue;
                }
                let Ok(id) = id.parse::<i64>() else { continue };
                match read_event(&pool, id).await {
                    Ok(Some(event)) => {
                        let _ = announce.send(event);
                    }
                    // Deleted with its app since.
                    Ok(None) => {}
                    Err(error) => tracing::warn!(error = %error, "reading another process's event"),
                }
            }
        });
        Ok(())
    }
}

async fn read_event(pool: &AnyPool, id: i64) -> Result<Option<Event>, StoreError> {
    let row = sqlx::query(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(event_from_row).transpose()
}
