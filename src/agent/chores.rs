//! The agent's periodic chores: retention (expired notifications, the history cap;
//! their toasts are closed and watchers told) and renewing subscriptions before they
//! lapse.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::protocol::Timestamp;

use super::AgentHandle;

/// How often retention and subscription renewal run by default.
pub(super) const CHORES_EVERY: Duration = Duration::from_secs(60);
/// Subscriptions expiring sooner than this are renewed.
const RENEW_WITHIN: Duration = Duration::from_secs(7 * 24 * 3600);

/// At start and `every` after: purge expired and excess notifications (closing their
/// toasts, telling watchers) and renew subscriptions before they lapse.
pub(super) async fn run(handle: AgentHandle, every: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        {
            // Not between a received group's storing and its telling (see `telling`).
            let _in_order = handle.telling.lock().await;
            match handle.store.purge(Timestamp::now(), handle.history_cap) {
                Ok(removed) => handle.removed(&removed),
                Err(e) => tracing::warn!(error = %e, "purging the cache failed"),
            }
        }
        let due = Timestamp::now().plus(RENEW_WITHIN);
        if let Err(e) = handle.renew_due(due).await {
            tracing::warn!(error = %e, "renewing subscriptions failed; will try again");
        }
    }
}
