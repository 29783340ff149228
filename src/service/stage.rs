//! Stage spans: the steps a post takes on its way to a device, for measuring where its
//! time goes (`cargo bench --bench nodes` prints p50 / p99 per stage; see
//! docs/performance.md).
//!
//! Each step is a `debug` span of target [`TARGET`] named after the stage (`auth`,
//! `body`, `admit`, `store`, `answer` in the request; `flush` and `publish` in the
//! committer; `deliver` in the channel), and the wait between the hub and a channel
//! is an event of that target with the stage `hop` and the wait in `us`. Nothing records
//! them unless a subscriber enables that target at `debug`: the service's log filter
//! does not by default, and a disabled span costs one relaxed load.

/// The target of every stage span and event.
pub const TARGET: &str = "tidings::stage";

/// Records the `hop` stage: how long a change waited between the hub offering it
/// (`published`) and a channel taking it.
pub fn hop(published: std::time::Instant) {
    tracing::debug!(
        target: TARGET,
        stage = "hop",
        us = u64::try_from(published.elapsed().as_micros()).unwrap_or(u64::MAX),
    );
}
