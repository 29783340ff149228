//! The sync loop: keeps one push session open at a time (`channel::session`), getting
//! access tokens as needed and reconnecting with backoff, until `shutdown` or until
//! the service signs the device out. The link state (`status`) is kept up to date.

use tokio_util::sync::CancellationToken;

use crate::protocol::local::LinkState;

use super::backoff::Backoff;
use super::channel::{self, SessionEnd};
use super::{AgentError, AgentHandle};

/// Runs push sessions until `shutdown` (`Ok`), or until an error retrying cannot mend
/// (signed out, a bad configuration).
pub(super) async fn run(
    handle: &AgentHandle,
    dead_link: std::time::Duration,
    shutdown: &CancellationToken,
) -> Result<(), AgentError> {
    // Boxed: the sessions' future is large, and made once per agent.
    let sessions = Box::pin(sessions(handle, dead_link, shutdown));
    #[cfg(feature = "test-hooks")]
    let sessions = hang::maybe(sessions);
    sessions.await
}

/// Built with the `test-hooks` feature only (the test command's build, never a release).
#[cfg(feature = "test-hooks")]
mod hang {
    /// `TIDINGS_TEST_HANG_SYNC_LOOP=TIME` blocks the sync loop's thread for good `TIME`
    /// after it starts, as a hung loop would: the watchdog test. It blocks the thread on
    /// purpose (an await would not do): the watchdog's pings come from the loop's own
    /// task, so they stop only when that task cannot run.
    const SWITCH: &str = "TIDINGS_TEST_HANG_SYNC_LOOP";

    pub(super) async fn maybe<T>(work: impl Future<Output = T>) -> T {
        let after = std::env::var(SWITCH)
            .ok()
            .and_then(|text| crate::config::values::parse_duration(&text).ok());
        let Some(after) = after else {
            return work.await;
        };
        tokio::select! {
            result = work => result,
            () = tokio::time::sleep(after) => {
                tracing::warn!("{SWITCH}: the sync loop hangs now (a test of the watchdog)");
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(3600));
                }
            }
        }
    }
}

/// The loop of sessions.
async fn sessions(
    handle: &AgentHandle,
    dead_link: std::time::Duration,
    shutdown: &CancellationToken,
) -> Result<(), AgentError> {
    let present = |delivery: channel::Delivery<'_>| handle.deliver(delivery);
    let signals = channel::Signals {
        dead_link,
        shutdown,
        outbox: &handle.outbox,
        resync: &handle.resync,
        link: &handle.link,
        telling: &handle.telling,
    };
    let mut backoff = Backoff::new();
    // A session ended for a replay of the feed is followed by the next at once, on the
    // same node, and the link stays as it was (it was not lost).
    let mut resyncing = false;
    loop {
        if !std::mem::take(&mut resyncing) {
            handle.link.set(LinkState::Connecting);
        }
        let attempt = async {
            let token = handle.api.token().await?;
            let (endpoint, tls) = (handle.api.endpoint(), handle.api.tls());
            channel::session(&handle.store, endpoint, &token, tls, &signals, &present).await
        };
        let outcome = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            outcome = attempt => outcome,
        };
        match outcome {
            Ok(SessionEnd::Shutdown) => return Ok(()),
            Ok(SessionEnd::Resync) => {
                resyncing = true;
                continue;
            }
            Ok(SessionEnd::Lost { healthy: true }) => backoff.reset(),
            Ok(SessionEnd::Lost { healthy: false }) => {}
            Err(AgentError::TokenRejected) => {
                handle.api.forget_token().await;
                continue;
            }
            Err(e) if e.is_retryable() => {
                tracing::warn!(error = %e, "channel failed; will retry");
            }
            Err(AgentError::SignedOut) => {
                handle.link.set(LinkState::SignedOut);
                // The device's subscriptions ended with it: so do their keys.
                if let Err(e) = handle.store.forget_all_keys().await {
                    tracing::warn!(error = %e, "could not remove the subscriptions' keys");
                }
                return Err(AgentError::SignedOut);
            }
            Err(e) => return Err(e),
        }
        handle.link.set(LinkState::Offline);
        if !shutdown.is_cancelled() && handle.api.endpoint().fail_over() {
            let next = handle.api.endpoint().base();
            tracing::info!(service = %next, "trying the service's next node");
        }
        if shutdown.is_cancelled() {
            // The link went because everything is stopping (local mode's service
            // closes first): not a reason to say "reconnecting".
            return Ok(());
        }
        let delay = backoff.next_delay();
        tracing::info!(?delay, "reconnecting");
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(delay) => {}
        }
    }
}
