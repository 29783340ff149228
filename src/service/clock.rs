//! The service's clock: the system time, plus a skew that only moves forward.
//!
//! Every route, the channel and the expiry purge read the time from one place
//! (`ServiceState::now`), so they agree. The skew exists for tests of expiry and
//! token lifetimes, which cannot wait for hours to pass: [`Clock::advance`] moves this
//! service's time forward, and nothing in the service ever calls it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::protocol::Timestamp;

/// The system clock, possibly moved forward.
#[derive(Debug, Default)]
pub struct Clock {
    skew_ms: AtomicU64,
}

impl Clock {
    /// The current time.
    pub fn now(&self) -> Timestamp {
        Timestamp::now().plus(Duration::from_millis(self.skew_ms.load(Ordering::Relaxed)))
    }

    /// Moves this clock forward by `by` (tests only: see the module docs).
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        let _ = self
            .skew_ms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |skew| {
                Some(skew.saturating_add(ms))
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_advanced_clock_runs_ahead_by_that_much() {
        let clock = Clock::default();
        let before = clock.now();
        clock.advance(Duration::from_secs(3600));
        let ahead = clock.now();
        assert!(ahead >= before.plus(Duration::from_secs(3600)));
        assert!(ahead < Timestamp::now().plus(Duration::from_secs(3601)));
    }
}
