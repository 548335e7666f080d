//! Health: is a machine answering, and how well?
//!
//! Every `fleet.health_interval` Berth connects and authenticates to each machine (jittered,
//! under the concurrency limit). A [`Health`] keeps the recent results of one machine and
//! classifies it:
//!
//! - `offline`: the last two checks failed, or the only one so far did;
//! - `degraded`: it answers, but slowly (a connect slower than [`SLOW`]), or it flaps (at least
//!   [`FLAPPING_FAILURES`] failures among the last [`HISTORY`] checks, or a single failure after
//!   a success);
//! - `online`: otherwise.
//!
//! [`Health::record`] answers the transition when the status changes, so the caller logs and
//! audits changes, not every check.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

/// Checks kept per machine.
pub const HISTORY: usize = 10;
/// A connect and auth slower than this makes a machine `degraded`.
pub const SLOW: Duration = Duration::from_secs(2);
/// This many failures among the last [`HISTORY`] checks make a machine `degraded`.
pub const FLAPPING_FAILURES: usize = 3;

pub use berth_types::fleet::HealthStatus;

/// One check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub at: SystemTime,
    /// The connect and auth time, or `None` when the check failed.
    pub latency: Option<Duration>,
}

/// A status change, to log and audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: HealthStatus,
    pub to: HealthStatus,
}

/// The recent checks of one machine.
#[derive(Debug, Clone, Default)]
pub struct Health {
    probes: VecDeque<Probe>,
}

impl Health {
    /// Health from stored probes, oldest first (only the last [`HISTORY`] are kept).
    pub fn from_probes(probes: impl IntoIterator<Item = Probe>) -> Self {
        let mut health = Self::default();
        for probe in probes {
            health.push(probe);
        }
        health
    }

    /// Adds a check; the transition when the status changed.
    pub fn record(&mut self, probe: Probe) -> Option<Transition> {
        let from = self.status();
        self.push(probe);
        let to = self.status();
        (from != to).then_some(Transition { from, to })
    }

    fn push(&mut self, probe: Probe) {
        if self.probes.len() == HISTORY {
            self.probes.pop_front();
        }
        self.probes.push_back(probe);
    }

    /// The recent checks, oldest first.
    pub fn probes(&self) -> impl Iterator<Item = &Probe> {
        self.probes.iter()
    }

    /// The status the recent checks make.
    pub fn status(&self) -> HealthStatus {
        let mut recent = self.probes.iter().rev();
        let Some(last) = recent.next() else {
            return HealthStatus::Unknown;
        };
        let previous = recent.next();
        let failures = self.probes.iter().filter(|p| p.latency.is_none()).count();
        match (last.latency, previous.map(|p| p.latency)) {
            (None, None | Some(None)) => HealthStatus::Offline,
            (None, Some(Some(_))) => HealthStatus::Degraded,
            (Some(latency), _) if latency > SLOW || failures >= FLAPPING_FAILURES => {
                HealthStatus::Degraded
            }
            (Some(_), _) => HealthStatus::Online,
        }
    }

    /// The last connect and auth time.
    pub fn latency(&self) -> Option<Duration> {
        self.probes.back().and_then(|p| p.latency)
    }

    /// When the machine last answered.
    pub fn last_seen(&self) -> Option<SystemTime> {
        self.probes
            .iter()
            .rev()
            .find(|p| p.latency.is_some())
            .map(|p| p.at)
    }

    /// Failed checks since the last success.
    pub fn consecutive_failures(&self) -> usize {
        self.probes
            .iter()
            .rev()
            .take_while(|p| p.latency.is_none())
            .count()
    }
}

/// The delay before a machine's next check: the interval, plus or minus up to a tenth of it,
/// so a hundred machines are not all checked in the same second. `seed` spreads machines.
pub fn jittered(interval: Duration, seed: u64) -> Duration {
    let tenth = interval / 10;
    let span = tenth.as_millis().max(1) as u64 * 2;
    // splitmix64: a well-spread value from any seed, without a random number generator.
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    let offset = Duration::from_millis(z % span);
    (interval - tenth) + offset
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn at(i: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + i * 60)
    }

    fn ok(i: u64, ms: u64) -> Probe {
        Probe {
            at: at(i),
            latency: Some(Duration::from_millis(ms)),
        }
    }

    fn fail(i: u64) -> Probe {
        Probe {
            at: at(i),
            latency: None,
        }
    }

    #[test]
    fn statuses() {
        let mut h = Health::default();
        assert_eq!(h.status(), HealthStatus::Unknown);
        assert_eq!(
            h.record(ok(0, 20)),
            Some(Transition {
                from: HealthStatus::Unknown,
                to: HealthStatus::Online
            })
        );
        assert_eq!(h.record(ok(1, 30)), None);
        // One failure after successes: degraded, not yet offline.
        assert_eq!(
            h.record(fail(2)),
            Some(Transition {
                from: HealthStatus::Online,
                to: HealthStatus::Degraded
            })
        );
        assert_eq!(
            h.record(fail(3)),
            Some(Transition {
                from: HealthStatus::Degraded,
                to: HealthStatus::Offline
            })
        );
        assert_eq!(h.consecutive_failures(), 2);
        assert_eq!(h.last_seen(), Some(at(1)));
        assert_eq!(h.latency(), None);
        // Back, but it has failed twice of late: one more failure in the window makes it flap.
        assert_eq!(
            h.record(ok(4, 25)),
            Some(Transition {
                from: HealthStatus::Offline,
                to: HealthStatus::Online
            })
        );
        assert_eq!(
            h.record(fail(5)),
            Some(Transition {
                from: HealthStatus::Online,
                to: HealthStatus::Degraded
            })
        );
        assert_eq!(
            h.record(ok(6, 25)),
            None,
            "3 failures in the window: still degraded (flapping)"
        );
        assert_eq!(h.status(), HealthStatus::Degraded);
        // Slow answers are degraded too.
        let mut slow = Health::default();
        slow.record(ok(0, 2500));
        assert_eq!(slow.status(), HealthStatus::Degraded);
        // The first check failing means offline.
        let mut dead = Health::default();
        dead.record(fail(0));
        assert_eq!(dead.status(), HealthStatus::Offline);
        assert_eq!(dead.last_seen(), None);
    }

    #[test]
    fn old_failures_leave_the_window() {
        let mut h = Health::from_probes([fail(0), fail(1), fail(2)]);
        assert_eq!(h.status(), HealthStatus::Offline);
        for i in 3..3 + HISTORY as u64 {
            h.record(ok(i, 10));
        }
        assert_eq!(h.probes().count(), HISTORY);
        assert_eq!(h.status(), HealthStatus::Online);
    }

    #[test]
    fn jitter_stays_within_a_tenth() {
        let interval = Duration::from_secs(300);
        let mut seen = std::collections::HashSet::new();
        for seed in 0..1000 {
            let d = jittered(interval, seed);
            assert!(
                d >= Duration::from_secs(270) && d <= Duration::from_secs(330),
                "{d:?}"
            );
            seen.insert(d.as_secs());
        }
        assert!(seen.len() > 30, "jitter does not spread: {}", seen.len());
        // Tiny intervals still work.
        assert!(jittered(Duration::from_millis(5), 7) <= Duration::from_millis(6));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The status is a function of the last HISTORY checks, a transition is reported
        /// exactly when the status changes, and the counters agree with the probes.
        #[test]
        fn status_follows_the_window(results in proptest::collection::vec(proptest::option::of(0u64..5000), 1..40)) {
            let mut health = Health::default();
            let mut previous = HealthStatus::Unknown;
            for (i, latency) in results.iter().enumerate() {
                let probe = Probe { at: SystemTime::UNIX_EPOCH + Duration::from_secs(i as u64), latency: latency.map(Duration::from_millis) };
                let transition = health.record(probe);
                let now = health.status();
                prop_assert_eq!(transition.is_some(), now != previous);
                if let Some(t) = transition {
                    prop_assert_eq!(t.from, previous);
                    prop_assert_eq!(t.to, now);
                }
                previous = now;
                let start = (i + 1).saturating_sub(HISTORY);
                let window = &results[start..=i];
                let rebuilt = Health::from_probes(window.iter().enumerate().map(|(j, l)| Probe {
                    at: SystemTime::UNIX_EPOCH + Duration::from_secs(j as u64),
                    latency: l.map(Duration::from_millis),
                }));
                prop_assert_eq!(rebuilt.status(), now);
                let tail_failures = window.iter().rev().take_while(|l| l.is_none()).count();
                prop_assert_eq!(health.consecutive_failures(), tail_failures);
                // Offline exactly when the machine did not answer the last check and not the
                // one before either (or there was none).
                let offline = window.last().is_some_and(Option::is_none)
                    && (window.len() == 1 || window[window.len() - 2].is_none());
                prop_assert_eq!(now == HealthStatus::Offline, offline);
            }
        }
    }
}
