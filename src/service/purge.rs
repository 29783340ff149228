//! The background expiry purge: removes notifications past their
//! `expirationDateTime`, with their feed entries, every `purge_interval`.

use super::State;

/// Notifications removed per store call, so the write lock is never held for long.
const BATCH: usize = 1000;

/// Runs until the service shuts down.
pub async fn run(state: State) {
    let mut tick = tokio::time::interval(state.settings.purge_interval);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = state.shutdown.cancelled() => return,
        }
        purge_now(&state);
    }
}

/// Purges everything expired by now.
pub fn purge_now(state: &State) {
    let mut total = 0;
    loop {
        match state.store.purge_expired(state.now(), BATCH) {
            Ok(n) => {
                total += n;
                if n < BATCH {
                    break;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "expiry purge failed");
                break;
            }
        }
    }
    if total > 0 {
        tracing::debug!(purged = total, "expired notifications purged");
    }
}
