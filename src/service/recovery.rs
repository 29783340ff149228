//! Recovery from a failed store (a full disk, an I/O error, a lost database link): at
//! once, the failed database handle is replaced by a fresh one so reads go on, and every
//! device resyncs (`Store::recover`, `Hub::resync`); then the store keeps checking
//! whether it takes a write again, and accepts writes once it does.
//!
//! Attempts are paced whatever wakes the loop: after each one the loop waits, from
//! [`FIRST_PAUSE`] doubling up to `recovery_interval`, before it tries again. (A failed
//! reconnect raises the store's failure signal itself; waking on it alone made a node
//! whose database was down retry in a busy loop.) The first failed attempt is logged
//! as an error, each later one as one warning with the pause that follows it.
//!
//! Why reopen in the process rather than exit for the supervisor to restart us: reads
//! (feeds, channels' backlogs, the app `GET`) keep being served the whole time, local
//! mode (the service inside the agent) has no supervisor, and sled keeps a flush error
//! in its handle, so a reopen is needed either way.

use std::time::Duration;

use super::State;

/// The pause after the first attempt of a failure; it doubles with each failed one.
pub const FIRST_PAUSE: Duration = Duration::from_millis(250);

/// Runs until the service shuts down.
pub async fn run(state: State) {
    state.store.recovery_runs();
    let interval = state.settings.recovery_interval;
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = state.store.wait_failed() => {}
            () = state.shutdown.cancelled() => return,
        }
        if state.store.failure().is_some() && !recover(&state, interval).await {
            return;
        }
    }
}

/// Attempts until the store takes writes again: `false` when the service shuts down
/// first.
async fn recover(state: &State, interval: Duration) -> bool {
    let mut pause = FIRST_PAUSE.min(interval);
    let mut failed = 0_u32;
    while state.store.failure().is_some() {
        state.metrics.recovery_attempt();
        match attempt(state).await {
            Ok(true) => {
                tracing::info!("the store recovered");
                return true;
            }
            // Reopened for reads; the disk does not take a write yet.
            Ok(false) => {}
            Err(e) if failed == 0 => {
                tracing::error!(error = %e, retry_in = ?pause, "reopening the store failed; retrying");
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt = failed + 1, retry_in = ?pause, "reopening the store failed again");
            }
        }
        failed = failed.saturating_add(1);
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = state.shutdown.cancelled() => return false,
        }
        pause = (pause * 2).min(interval);
    }
    true
}

/// One attempt, off the async runtime (sled's reopen blocks).
async fn attempt(state: &State) -> Result<bool, String> {
    let attempt = state.clone();
    tokio::task::spawn_blocking(move || {
        let hub = attempt.hub.clone();
        attempt
            .store
            .recover(Box::new(move |durable| hub.resync(durable)))
    })
    .await
    .map_err(|e| format!("the recovery task failed: {e}"))?
    .map_err(|e| e.to_string())
}
