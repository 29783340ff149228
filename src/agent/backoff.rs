//! Reconnect delays with jitter.

use std::time::Duration;

/// Reconnect delays: 250 ms doubling to 60 s, each drawn at random from the upper half
/// (jitter, so many agents do not reconnect in step), reset after a healthy session.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(250);
    const CAP: Duration = Duration::from_secs(60);

    /// A fresh backoff.
    pub fn new() -> Self {
        Self { next: Self::FIRST }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.next;
        self.next = (self.next * 2).min(Self::CAP);
        ceiling.mul_f64(rand::random_range(0.5..=1.0))
    }

    /// After a healthy session, start again from the shortest delay.
    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap_and_resets() {
        let mut backoff = Backoff::new();
        let first = backoff.next_delay();
        assert!(first >= Duration::from_millis(125) && first <= Duration::from_millis(250));
        for _ in 0..20 {
            assert!(backoff.next_delay() <= Duration::from_secs(60));
        }
        assert!(
            backoff.next_delay() >= Duration::from_secs(30),
            "capped at 60 s, jitter in the upper half"
        );
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(250));
    }
}
