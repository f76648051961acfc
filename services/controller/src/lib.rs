//! The control plane's engine: runs deploys (build → release → roll out) and keeps the world matching the
//! store: it re-plans placements with the scheduler, hands each node agent its desired instances, applies the
//! agents' reports, and publishes the router's route table.
//!
//! It owns no HTTP; the API and git receive talk to it through [`ControllerHandle`].

use tokio::sync::mpsc;
use vocabulary::AppId;

/// What happened that may need the world changed.
#[derive(Debug, Clone)]
pub enum Event {
    /// An app's formation (scale) changed.
    FormationChanged(AppId),
    /// An app was deleted from the store; its instances must go.
    AppDeleted(AppId),
}

/// A cheap, cloneable way to tell the controller that something changed.
#[derive(Clone, Debug)]
pub struct ControllerHandle {
    events: mpsc::UnboundedSender<Event>,
}

impl ControllerHandle {
    pub fn new(events: mpsc::UnboundedSender<Event>) -> Self {
        Self { events }
    }

    /// Tells the controller; never blocks. A stopped controller is ignored (the server is shutting down).
    pub fn notify(&self, event: Event) {
        let _ = self.events.send(event);
    }
}
