//! Draining: an instance being replaced or scaled down leaves the route table first, and is stopped on its
//! node only once routers have nothing in flight to it (or its grace period is over).
//!
//! The decision is pure ([`decide`]); the reconcile loop keeps, for each instance being stopped, when the
//! table without it was published, and asks a [`DrainProbe`] how many requests are still in flight to it.

use std::net::SocketAddr;
use std::time::Duration;

/// How many requests (and upgraded connections) routers still have in flight to a backend.
pub trait DrainProbe: Send + Sync + 'static {
    fn in_flight(&self, backend: SocketAddr) -> usize;
}

/// A probe that always answers 0: instances are stopped once [`DrainPolicy::min_wait`] has passed.
#[derive(Debug, Clone, Copy, Default)]
pub struct NothingInFlight;

impl DrainProbe for NothingInFlight {
    fn in_flight(&self, _backend: SocketAddr) -> usize {
        0
    }
}

/// How long draining waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainPolicy {
    /// Never stop earlier than this after the table without the instance was published, even with nothing in
    /// flight here: routers in other processes need a moment to receive that table.
    pub min_wait: Duration,
    /// Stop after this even with requests still in flight.
    pub grace: Duration,
    /// How often to look again while anything drains.
    pub recheck: Duration,
}

impl Default for DrainPolicy {
    fn default() -> Self {
        Self {
            min_wait: Duration::from_secs(1),
            grace: Duration::from_secs(30),
            recheck: Duration::from_millis(250),
        }
    }
}

/// What to do with an instance being stopped, this pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainDecision {
    /// Keep it in its node's desired set: it still finishes requests.
    KeepRunning,
    /// Leave it out of its node's desired set, so the agent stops it.
    Stop,
}

/// The decision for an instance whose route left the table `since_left_table` ago and that has `in_flight`
/// requests in routers.
pub fn decide(policy: &DrainPolicy, since_left_table: Duration, in_flight: usize) -> DrainDecision {
    if since_left_table >= policy.grace {
        DrainDecision::Stop
    } else if since_left_table < policy.min_wait || in_flight > 0 {
        DrainDecision::KeepRunning
    } else {
        DrainDecision::Stop
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_decisions() {
        use DrainDecision::*;
        let policy = DrainPolicy {
            min_wait: Duration::from_secs(1),
            grace: Duration::from_secs(30),
            recheck: Duration::from_millis(250),
        };
        let ms = Duration::from_millis;
        let cases = [
            // Just left the table: remote routers may still send to it.
            (ms(0), 0, KeepRunning),
            (ms(999), 0, KeepRunning),
            (ms(999), 3, KeepRunning),
            // Idle and the table has had time to travel.
            (ms(1000), 0, Stop),
            (ms(5000), 0, Stop),
            // Busy: wait, up to the grace period.
            (ms(1000), 1, KeepRunning),
            (ms(29_999), 12, KeepRunning),
            (ms(30_000), 12, Stop),
            (ms(90_000), 1, Stop),
        ];
        for (since, in_flight, want) in cases {
            assert_eq!(decide(&policy, since, in_flight), want, "{since:?} {in_flight}");
        }
    }

    #[test]
    fn a_grace_shorter_than_the_minimum_wait_still_stops() {
        let policy = DrainPolicy {
            min_wait: Duration::from_secs(1),
            grace: Duration::from_millis(500),
            recheck: Duration::from_millis(250),
        };
        assert_eq!(
            decide(&policy, Duration::from_millis(600), 5),
            DrainDecision::Stop
        );
        assert_eq!(NothingInFlight.in_flight("10.0.0.1:5000".parse().unwrap()), 0);
    }
}
