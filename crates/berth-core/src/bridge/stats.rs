//! What a session counts (bytes in flight, in and out) and the activity clock it touches.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use berth_terminal::Activity;

/// Live counters of one session, readable from elsewhere while it runs.
#[derive(Debug, Clone, Default)]
pub struct BridgeStats {
    inner: Arc<StatsInner>,
}

#[derive(Debug, Default)]
struct StatsInner {
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    output: AtomicU64,
    input: AtomicU64,
    dropped_input: AtomicU64,
}

impl BridgeStats {
    /// Output bytes taken from the exec and not yet accepted by the sink.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::Relaxed)
    }

    /// The most [`BridgeStats::in_flight`] has been.
    #[must_use]
    pub fn peak_in_flight(&self) -> usize {
        self.inner.peak.load(Ordering::Relaxed)
    }

    /// Output bytes taken from the exec.
    #[must_use]
    pub fn output_bytes(&self) -> u64 {
        self.inner.output.load(Ordering::Relaxed)
    }

    /// Input bytes written to the exec.
    #[must_use]
    pub fn input_bytes(&self) -> u64 {
        self.inner.input.load(Ordering::Relaxed)
    }

    /// Input bytes dropped because the sender may not type (viewers).
    #[must_use]
    pub fn dropped_input_bytes(&self) -> u64 {
        self.inner.dropped_input.load(Ordering::Relaxed)
    }

    pub(super) fn taken(&self, n: usize) {
        self.inner.output.fetch_add(n as u64, Ordering::Relaxed);
        let now = self.inner.in_flight.fetch_add(n, Ordering::Relaxed) + n;
        self.inner.peak.fetch_max(now, Ordering::Relaxed);
    }

    pub(super) fn delivered(&self, n: usize) {
        self.inner.in_flight.fetch_sub(n, Ordering::Relaxed);
    }

    pub(super) fn dropped_input(&self, n: usize) {
        self.inner
            .dropped_input
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(super) fn input(&self, n: usize) {
        self.inner.input.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Touches the workspace's activity at most once per second.
#[derive(Debug)]
pub(crate) struct Toucher {
    activity: Option<Arc<dyn Activity>>,
    started: Instant,
    /// Seconds since `started` (plus one) of the last touch; 0 for never.
    last: AtomicU64,
}

impl Toucher {
    pub(crate) fn new(activity: Option<Arc<dyn Activity>>) -> Self {
        Self {
            activity,
            started: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    /// Returns whether it touched.
    pub(crate) fn touch(&self) -> bool {
        let Some(activity) = &self.activity else {
            return false;
        };
        let second = self.started.elapsed().as_secs() + 1;
        if self.last.swap(second, Ordering::Relaxed) == second {
            return false;
        }
        activity.touch();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_is_touched_at_most_once_a_second() {
        let toucher = Toucher::new(Some(Arc::new(crate::Activity::detached())));
        assert!(toucher.touch());
        let again = (0..1000).filter(|_| toucher.touch()).count();
        // Unless the second turned meanwhile, nothing more; never more than once per second.
        assert!(again <= 1, "{again} touches within a second");
        assert!(!Toucher::new(None).touch());
    }
}
