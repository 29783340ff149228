//! What the agent knows about its link to the service, for `status`: the state and
//! when it last caught up. Written by the agent's loop and its channel session.

use std::sync::Mutex;

use crate::protocol::Timestamp;
use crate::protocol::local::LinkState;

/// The link's state and the last sync time.
#[derive(Debug)]
pub struct Link {
    inner: Mutex<(LinkState, Option<Timestamp>)>,
}

impl Default for Link {
    fn default() -> Self {
        Self {
            inner: Mutex::new((LinkState::Connecting, None)),
        }
    }
}

impl Link {
    /// Sets the state.
    pub fn set(&self, state: LinkState) {
        self.lock().0 = state;
    }

    /// Caught up (or stored a live change): connected, synced now.
    pub fn synced(&self) {
        *self.lock() = (LinkState::Connected, Some(Timestamp::now()));
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
