//! The background expiry purge: removes notifications past their
//! `expirationDateTime`, with their feed entries, every `purge_interval`.

use super::State;

/// Notifications removed per store call, so the write lock (which every post waits on;
/// a row lock per user on PostgreSQL) is held for about a millisecond at a time, not for
/// a thousand removals. On PostgreSQL one node at a time purges (an advisory lock).
const BATCH: usize = 100;

/// Runs until the service shuts down.
pub async fn run(state: State) {
    let mut tick = tokio::time::interval(state.settings.purge_interval);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = state.shutdown.cancelled() => return,
        }
        purge_now(&state).await;
    }
}

/// Purges everything expired by now.
pub async fn purge_now(state: &State) {
    let mut total = 0;
    loop {
        match state.store.purge_expired(state.now(), BATCH).await {
            Ok(n) => {
                total += n;
                if n < BATCH {
                    break;
                }
                // Let requests waiting on the store's write lock in between batches.
                tokio::task::yield_now().await;
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
