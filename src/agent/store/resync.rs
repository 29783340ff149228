//! A sync from the start of the feed, asked for when this device subscribes to an app
//! it had no subscription for (`Mresync`, kept until the channel has replayed the whole
//! feed once, so a restart in between asks again).
//!
//! The service filters what it sends a device to the apps the device is subscribed to,
//! and the device's cursor moves past what was filtered. So an app subscribed to after
//! the channel passed some of its notifications (a device signed in again after being
//! revoked, whose channel opens before its apps subscribe anew; an app first
//! subscribed on a device that has synced) would never get them here, though every
//! other device of the user shows them. Replaying the feed from `seq` 0 once brings
//! them; what the store holds already is left as it is (each change is applied only
//! when newer than the stored one), and the replay is a backlog, so it toasts as one.

use super::{AgentStore, AgentStoreError, u64_of};

const RESYNC: &[u8] = b"Mresync";

impl AgentStore {
    /// Asks for a replay of the whole feed; durable on return.
    pub async fn want_resync(&self) -> Result<(), AgentStoreError> {
        let next = self.resync()? + 1;
        self.cache.insert(RESYNC, &next.to_be_bytes())?;
        self.flush().await
    }

    /// The replay asked for and not done yet (a number that grows with each ask), or 0.
    pub fn resync(&self) -> Result<u64, AgentStoreError> {
        self.cache.get(RESYNC)?.map_or(Ok(0), |v| u64_of(&v))
    }

    /// The replay `asked` (from [`Self::resync`]) is done: forgotten, unless it was
    /// asked again meanwhile.
    pub async fn resynced(&self, asked: u64) -> Result<(), AgentStoreError> {
        let swapped =
            self.cache
                .compare_and_swap(RESYNC, Some(&asked.to_be_bytes()), None::<&[u8]>)?;
        if swapped.is_ok() {
            self.flush().await?;
        }
        Ok(())
    }
}
