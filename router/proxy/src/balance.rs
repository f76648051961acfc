//! Choosing a backend: power of two choices (two distinct random backends, the one with fewer requests in
//! flight wins, ties go to the lower latency average), and passive outlier detection (a backend that fails to
//! connect is ejected for a while, then gets one probe request; success makes it healthy again).
//!
//! The choice and the ejection state machine are pure (random numbers and the clock are parameters); the
//! per-backend state ([`BackendState`]) is shared by every request and updated with atomics, taking a lock only
//! while a backend is in trouble.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a backend that refused a connection is left alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EjectionPolicy {
    /// The first ejection in a row.
    pub first: Duration,
    /// Each further ejection in a row doubles the time, up to this.
    pub max: Duration,
}

impl Default for EjectionPolicy {
    /// 5 s, doubling up to 60 s.
    fn default() -> Self {
        Self {
            first: Duration::from_secs(5),
            max: Duration::from_secs(60),
        }
    }
}

impl EjectionPolicy {
    /// The ejection time after `strikes` ejections in a row.
    pub(crate) fn duration(&self, strikes: u32) -> Duration {
        let doublings = strikes.saturating_sub(1).min(16);
        self.first.saturating_mul(1 << doublings).min(self.max)
    }
}

/// Where a backend stands after its recent connection attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Health {
    Healthy,
    /// No requests until `until`; then one probe.
    Ejected {
        until: Instant,
    },
    /// One probe request was let through at `since`; no others until it succeeds, or until it has been out for
    /// as long as the last ejection lasted (a probe that never reports back must not eject forever).
    Probing {
        until: Instant,
    },
}

/// The ejection state machine of one backend. Pure: every method takes the current time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ejection {
    pub health: Health,
    /// Ejections in a row without a success in between.
    pub strikes: u32,
}

impl Default for Ejection {
    fn default() -> Self {
        Self {
            health: Health::Healthy,
            strikes: 0,
        }
    }
}

impl Ejection {
    /// Whether a request may go to this backend now (without taking the probe turn).
    pub(crate) fn available(&self, now: Instant) -> bool {
        match self.health {
            Health::Healthy => true,
            Health::Ejected { until } | Health::Probing { until } => now >= until,
        }
    }

    /// Takes the turn for one request: always granted while healthy; after an ejection expired, granted once
    /// (the probe).
    pub(crate) fn admit(&mut self, now: Instant, policy: &EjectionPolicy) -> bool {
        match self.health {
            Health::Healthy => true,
            Health::Ejected { until } | Health::Probing { until } if now >= until => {
                self.health = Health::Probing {
                    until: now + policy.duration(self.strikes),
                };
                true
            }
            Health::Ejected { .. } | Health::Probing { .. } => false,
        }
    }

    /// A connection to the backend failed. It is ejected unless `last_healthy` (no other backend of the app
    /// could take its requests), or already ejected (requests that chose it just before the ejection fail too,
    /// and must not lengthen it). Returns how long it is newly ejected for.
    pub(crate) fn fail(
        &mut self,
        now: Instant,
        last_healthy: bool,
        policy: &EjectionPolicy,
    ) -> Option<Duration> {
        match self.health {
            Health::Healthy if last_healthy => return None,
            Health::Ejected { until } if now < until => return None,
            _ => {}
        }
        self.strikes = self.strikes.saturating_add(1);
        let duration = policy.duration(self.strikes);
        self.health = Health::Ejected {
            until: now + duration,
        };
        Some(duration)
    }

    /// A request reached the backend and got an answer.
    pub(crate) fn succeed(&mut self) {
        *self = Self::default();
    }
}

/// The live state of one backend address, shared by every request and kept across table swaps.
#[derive(Debug, Default)]
pub struct BackendState {
    /// Requests (and upgraded tunnels) currently using this backend.
    in_flight: AtomicUsize,
    /// Moving average of the time to the response head, in microseconds (0: no sample yet).
    ewma_micros: AtomicU64,
    /// When the average last got a sample, in microseconds since [`epoch`].
    ewma_at: AtomicU64,
    /// Set while `ejection` is not plain healthy, so the healthy path never takes the lock.
    troubled: AtomicBool,
    ejection: Mutex<Ejection>,
}

/// The weight of a new latency sample in the moving average, in 1/1024.
const EWMA_WEIGHT: u64 = 300;

/// An average that gets no samples halves every this often, so a backend that lost the tie-break once (one slow
/// answer) is not starved of requests forever while the load is too light to make in-flight counts differ.
const EWMA_HALF_LIFE_MICROS: u64 = 10_000_000;

/// The process's reference instant for the timestamps kept in atomics.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn micros_since_epoch(now: Instant) -> u64 {
    u64::try_from(now.saturating_duration_since(epoch()).as_micros()).unwrap_or(u64::MAX)
}

/// `average` after `age_micros` without samples.
pub(crate) fn decayed(average: u64, age_micros: u64) -> u64 {
    if age_micros == 0 || average == 0 {
        return average;
    }
    let half_lives = age_micros as f64 / EWMA_HALF_LIFE_MICROS as f64;
    (average as f64 * 0.5f64.powf(half_lives)) as u64
}

impl BackendState {
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub(crate) fn load(&self, now: Instant) -> Load {
        let age = micros_since_epoch(now).saturating_sub(self.ewma_at.load(Ordering::Relaxed));
        Load {
            in_flight: self.in_flight(),
            latency_micros: decayed(self.ewma_micros.load(Ordering::Relaxed), age),
        }
    }

    /// Counts one request (or tunnel) until the returned guard is dropped.
    pub(crate) fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    pub(crate) fn available(&self, now: Instant) -> bool {
        !self.troubled.load(Ordering::Relaxed) || self.lock().available(now)
    }

    pub(crate) fn ejected(&self) -> bool {
        self.troubled.load(Ordering::Relaxed)
            && matches!(self.lock().health, Health::Ejected { until } if Instant::now() < until)
    }

    pub(crate) fn admit(&self, now: Instant, policy: &EjectionPolicy) -> bool {
        !self.troubled.load(Ordering::Relaxed) || self.lock().admit(now, policy)
    }

    /// Records the time a backend took to send its response head, and that it is healthy.
    pub(crate) fn succeed(&self, latency: Duration, now: Instant) {
        let sample = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1);
        let old = self.load(now).latency_micros;
        let new = if old == 0 {
            sample
        } else {
            (old * (1024 - EWMA_WEIGHT) + sample.saturating_mul(EWMA_WEIGHT)) / 1024
        };
        // A lost update under a race only loses one sample of an average.
        self.ewma_micros.store(new, Ordering::Relaxed);
        self.ewma_at.store(micros_since_epoch(now), Ordering::Relaxed);
        if self.troubled.load(Ordering::Relaxed) {
            let mut ejection = self.lock();
            ejection.succeed();
            self.troubled.store(false, Ordering::Relaxed);
        }
    }

    /// Records a failed connection; see [`Ejection::fail`].
    pub(crate) fn fail(&self, now: Instant, last_healthy: bool, policy: &EjectionPolicy) -> Option<Duration> {
        let mut ejection = self.lock();
        let ejected = ejection.fail(now, last_healthy, policy);
        self.troubled
            .store(ejection.health != Health::Healthy, Ordering::Relaxed);
        ejected
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ejection> {
        // The state is a plain value: a panic while it was held cannot leave it half-written.
        self.ejection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Keeps a backend's in-flight count raised while alive.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<BackendState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What P2C compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Load {
    pub in_flight: usize,
    pub latency_micros: u64,
}

/// Picks two distinct indices below `len` from two random numbers (the same one twice when `len` is 1).
pub(crate) fn two_distinct(len: usize, r1: u64, r2: u64) -> (usize, usize) {
    debug_assert!(len > 0);
    let len64 = len as u64;
    let first = (r1 % len64) as usize;
    if len == 1 {
        return (0, 0);
    }
    let mut second = (r2 % (len64 - 1)) as usize;
    if second >= first {
        second += 1;
    }
    (first, second)
}

/// Power of two choices among `len` backends: `available(i)` says whether backend `i` may take requests now
/// (when none may, all are candidates, so an app is never left with nothing), `load(i)` what it is doing.
/// Returns the winner first and the loser second (equal when only one candidate exists).
pub(crate) fn choose(
    len: usize,
    available: impl Fn(usize) -> bool,
    load: impl Fn(usize) -> Load,
    r1: u64,
    r2: u64,
) -> (usize, usize) {
    let healthy = (0..len).filter(|&i| available(i)).count();
    let (a, b) = if healthy == 0 || healthy == len {
        two_distinct(len, r1, r2)
    } else {
        // The n-th available backend, without allocating.
        let nth = |n: usize| (0..len).filter(|&i| available(i)).nth(n).unwrap_or(0);
        let (a, b) = two_distinct(healthy, r1, r2);
        (nth(a), nth(b))
    };
    if load(b) < load(a) {
        (b, a)
    } else {
        (a, b)
    }
}

/// The backend for a new request among `states` (an app's backends): power of two choices, then, if the
/// winner is an ejected backend whose time is up and another request already took its one probe, the
/// runner-up.
pub(crate) fn pick(states: &[Arc<BackendState>], policy: &EjectionPolicy) -> usize {
    let now = Instant::now();
    let (index, runner_up) = choose(
        states.len(),
        |i| states[i].available(now),
        |i| states[i].load(now),
        rand::random(),
        rand::random(),
    );
    if !states[index].admit(now, policy) && states[runner_up].admit(now, policy) {
        runner_up
    } else {
        index
    }
}

/// Records that backend `index` of `states` refused a connection: it is ejected unless it is the last
/// healthy one. Returns for how long.
pub(crate) fn refused(
    states: &[Arc<BackendState>],
    index: usize,
    policy: &EjectionPolicy,
) -> Option<Duration> {
    let now = Instant::now();
    let last_healthy = !(0..states.len()).any(|i| i != index && states[i].available(now));
    states[index].fail(now, last_healthy, policy)
}

/// The backends of `states` to try after `first` failed, see [`retry_order`].
pub(crate) fn retries(states: &[Arc<BackendState>], first: usize) -> std::vec::IntoIter<usize> {
    let now = Instant::now();
    retry_order(states.len(), first, |i| states[i].available(now)).into_iter()
}

/// The backends to try after `first` failed to connect: the others that are `available`, in turn after
/// `first`, then those that are not (an ejected backend beats answering 502 without trying).
pub(crate) fn retry_order(len: usize, first: usize, available: impl Fn(usize) -> bool) -> Vec<usize> {
    let others = || (1..len).map(move |i| (first + i) % len);
    others()
        .filter(|&i| available(i))
        .chain(others().filter(|&i| !available(i)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_distinct_never_repeats() {
        let cases: &[(usize, u64, u64, (usize, usize))] = &[
            (1, 7, 9, (0, 0)),
            (2, 0, 0, (0, 1)),
            (2, 1, 0, (1, 0)),
            (3, 1, 1, (1, 2)),
            (3, 2, 1, (2, 1)),
            (3, 5, 3, (2, 1)),
        ];
        for (len, r1, r2, want) in cases {
            assert_eq!(two_distinct(*len, *r1, *r2), *want, "len {len} r {r1} {r2}");
        }
        for len in 2..6 {
            for r1 in 0..20 {
                for r2 in 0..20 {
                    let (a, b) = two_distinct(len, r1, r2);
                    assert!(a != b && a < len && b < len, "len {len} r {r1} {r2}");
                }
            }
        }
    }

    #[test]
    fn choose_prefers_fewer_in_flight_then_lower_latency_and_skips_ejected() {
        let load = |in_flight, latency_micros| Load {
            in_flight,
            latency_micros,
        };
        // (loads, available, r1, r2, want)
        type Case<'a> = (&'a [Load], &'static [bool], u64, u64, (usize, usize));
        let loads_a: &[Load] = &[load(3, 10), load(1, 10), load(2, 10)];
        let loads_b: &[Load] = &[load(1, 900), load(1, 100), load(5, 1)];
        let cases: Vec<Case> = vec![
            (loads_a, &[true, true, true], 0, 0, (1, 0)),
            (loads_a, &[true, true, true], 0, 1, (2, 0)),
            (loads_a, &[true, true, true], 2, 0, (2, 0)),
            // Equal in-flight: lower latency wins.
            (loads_b, &[true, true, true], 0, 0, (1, 0)),
            // The least loaded backend is ejected: it is never a candidate.
            (loads_a, &[true, false, true], 0, 0, (2, 0)),
            (loads_a, &[true, false, true], 1, 1, (2, 0)),
            // Only one available: it wins against itself.
            (loads_a, &[false, false, true], 0, 1, (2, 2)),
            // None available: all are candidates again.
            (loads_a, &[false, false, false], 0, 0, (1, 0)),
        ];
        for (loads, available, r1, r2, want) in cases {
            let got = choose(loads.len(), |i| available[i], |i| loads[i], r1, r2);
            assert_eq!(got, want, "{loads:?} {available:?} r {r1} {r2}");
        }
    }

    #[test]
    fn averages_decay_without_samples() {
        let cases = [
            (1000, 0, 1000),
            (0, 5_000_000, 0),
            (1000, 10_000_000, 500),
            (1000, 20_000_000, 250),
            (1000, 5_000_000, 707),
            (1000, 200_000_000, 0),
            (u64::MAX, u64::MAX, 0),
        ];
        for (average, age, want) in cases {
            assert_eq!(decayed(average, age), want, "{average} after {age} µs");
        }
    }

    #[test]
    fn retry_order_tries_available_backends_first() {
        let cases: &[(&[bool], usize, &[usize])] = &[
            (&[true], 0, &[]),
            (&[true, true, true], 0, &[1, 2]),
            (&[true, true, true], 1, &[2, 0]),
            (&[true, true, false, true], 1, &[3, 0, 2]),
            (&[false, false, false], 2, &[0, 1]),
        ];
        for (available, first, want) in cases {
            assert_eq!(
                retry_order(available.len(), *first, |i| available[i]),
                *want,
                "{available:?} first {first}"
            );
        }
    }

    #[test]
    fn ejection_backs_off_probes_once_and_resets_on_success() {
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        let policy = EjectionPolicy::default();
        let mut e = Ejection::default();
        assert!(e.admit(at(0), &policy));

        // Step, time, want admitted / ejected-for.
        #[derive(Debug)]
        enum Step {
            Fail(u64, bool, Option<u64>),
            Admit(u64, bool),
            Available(u64, bool),
            Succeed,
        }
        use Step::*;
        let steps = [
            // The last healthy backend is not ejected.
            Fail(0, true, None),
            Admit(0, true),
            Fail(0, false, Some(5)),
            // Requests that chose it before the ejection fail too: no further strike.
            Fail(1, false, None),
            Available(4, false),
            Admit(4, false),
            Available(5, true),
            // The probe goes through once; a second request waits.
            Admit(5, true),
            Admit(6, false),
            // The probe failed: twice as long, even when it is now the last one (it is not healthy).
            Fail(6, true, Some(10)),
            Admit(15, false),
            Admit(16, true),
            Fail(16, false, Some(20)),
            Fail(40, false, Some(40)),
            Fail(80, false, Some(60)),
            Fail(140, false, Some(60)),
            // A probe that never reports back frees the turn after the ejection time.
            Admit(200, true),
            Admit(201, false),
            Admit(260, true),
            Succeed,
            Admit(260, true),
            Admit(260, true),
            Fail(261, false, Some(5)),
        ];
        for (i, step) in steps.iter().enumerate() {
            match *step {
                Fail(t, last, want) => assert_eq!(
                    e.fail(at(t), last, &policy),
                    want.map(Duration::from_secs),
                    "step {i} {step:?}"
                ),
                Admit(t, want) => assert_eq!(e.admit(at(t), &policy), want, "step {i} {step:?}"),
                Available(t, want) => assert_eq!(e.available(at(t)), want, "step {i} {step:?}"),
                Succeed => e.succeed(),
            }
        }
    }

    #[test]
    fn backend_state_counts_and_averages() {
        let state = Arc::new(BackendState::default());
        let (a, b) = (state.start(), state.start());
        assert_eq!(state.in_flight(), 2);
        drop(a);
        assert_eq!(state.in_flight(), 1);
        drop(b);
        assert_eq!(state.in_flight(), 0);

        let now = Instant::now();
        state.succeed(Duration::from_micros(1000), now);
        assert_eq!(state.load(now).latency_micros, 1000);
        state.succeed(Duration::from_micros(2024), now);
        assert_eq!(state.load(now).latency_micros, 1300);
        assert_eq!(state.load(now + Duration::from_secs(10)).latency_micros, 650);

        assert!(state.available(now) && !state.ejected());
        let policy = EjectionPolicy::default();
        assert_eq!(state.fail(now, false, &policy), Some(policy.first));
        assert!(!state.available(now) && state.ejected());
        state.succeed(Duration::from_micros(1), now);
        assert!(state.available(now) && !state.ejected());
    }
}
