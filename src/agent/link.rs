//! What the agent knows about its link to the service, for `status`: the state, when it
//! last caught up, and how many encrypted notifications it could not open. Written by
//! the agent's loop and its channel session; each change of state is also the unit's
//! status line under systemd (`supervisor`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::protocol::Timestamp;
use crate::protocol::local::LinkState;

/// The link's state and the last sync time.
#[derive(Debug)]
pub struct Link {
    inner: Mutex<(LinkState, Option<Timestamp>)>,
    /// Encrypted notifications for this device that could not be opened, since start.
    unopened: AtomicU64,
    /// Told of each change of state.
    changes: tokio::sync::Notify,
}

impl Default for Link {
    fn default() -> Self {
        Self {
            inner: Mutex::new((LinkState::Connecting, None)),
            unopened: AtomicU64::new(0),
            changes: tokio::sync::Notify::new(),
        }
    }
}

impl Link {
    /// Counts an encrypted notification for this device that could not be opened.
    pub fn unopened(&self) {
        self.unopened.fetch_add(1, Ordering::Relaxed);
    }

    /// How many encrypted notifications for this device could not be opened since the
    /// agent started.
    pub fn unopened_count(&self) -> u64 {
        self.unopened.load(Ordering::Relaxed)
    }

    /// Sets the state.
    pub fn set(&self, state: LinkState) {
        let before = std::mem::replace(&mut self.lock().0, state);
        if before != state {
            self.told(state);
        }
    }

    /// Caught up (or stored a live change): connected, synced now.
    pub fn synced(&self) {
        let before = std::mem::replace(
            &mut *self.lock(),
            (LinkState::Connected, Some(Timestamp::now())),
        );
        if before.0 != LinkState::Connected {
            self.told(LinkState::Connected);
        }
    }

    /// Returns once the state has changed since the last return (at once if it has
    /// meanwhile). For one waiter: the panel icon.
    pub async fn changed(&self) {
        self.changes.notified().await;
    }

    fn told(&self, state: LinkState) {
        crate::supervisor::status(describe(state));
        self.changes.notify_one();
    }

    /// The state and the last sync time.
    pub fn get(&self) -> (LinkState, Option<Timestamp>) {
        *self.lock()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (LinkState, Option<Timestamp>)> {
        // The data is two plain values: a panic elsewhere cannot leave it half-written.
        crate::sync::lock(&self.inner)
    }
}

/// The status line for `state`.
fn describe(state: LinkState) -> &'static str {
    match state {
        LinkState::Connected => "connected: notifications arrive live",
        LinkState::Connecting => "connecting to the service",
        LinkState::Offline => "offline: reconnecting (notifications are kept meanwhile)",
        LinkState::SignedOut => "signed out: sign in again with `tidings login`",
    }
}
