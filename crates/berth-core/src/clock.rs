//! Time, passed in: code that expires things (idle workspaces, TTLs) asks a [`Clock`], so
//! tests move time with a [`ManualClock`] instead of sleeping.

use std::sync::{Arc, Mutex, PoisonError};

use time::OffsetDateTime;

/// Tells the time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that moves only when told: for tests of timeouts.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<OffsetDateTime>>,
}

impl ManualClock {
    /// A clock standing at the system's time now.
    #[must_use]
    pub fn new() -> Self {
        Self::at(OffsetDateTime::now_utc())
    }

    /// A clock standing at `at`.
    #[must_use]
    pub fn at(at: OffsetDateTime) -> Self {
        Self {
            now: Arc::new(Mutex::new(at)),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: std::time::Duration) {
        let by = time::Duration::try_from(by).unwrap_or(time::Duration::MAX);
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now = now.saturating_add(by);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The clock a service uses when none is given.
pub(crate) fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = ManualClock::new();
        let start = clock.now();
        assert_eq!(clock.now(), start);
        clock.advance(std::time::Duration::from_secs(90));
        assert_eq!(clock.now() - start, time::Duration::seconds(90));
        let shared: Arc<dyn Clock> = Arc::new(clock.clone());
        clock.advance(std::time::Duration::from_secs(1));
        assert_eq!(shared.now() - start, time::Duration::seconds(91));
    }
}
