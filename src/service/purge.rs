//! The background expiry purge: removes notifications past their
//! `expirationDateTime`, with their feed entries, every `purge_interval`.

use super::State;

/// Notifications removed per store call, so the write lock (which every post waits on)
/// is held for about a millisecond at a time, not for a thousand removals.
const BATCH: usize = 100;

/// Runs until the service shuts down.
pub async fn run(state: State) {
    let mut tick = tokio::time::interval(state.settings.purge_interval);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = state.shutdown.cancelled() => return,
        }
        // sled calls block: off the async runtime, so requests are served meanwhile.
        let purging = state.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || purge_now(&purging)).await {
            tracing::error!(error = %e, "the expiry purge failed");
        }
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
