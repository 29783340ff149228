//! What one user holds: their signed-in devices and their devices' subscriptions, for
//! the device API's "my devices" and "my apps" (the web app's pages), and a user
//! cancelling one subscription.

use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use crate::protocol::{DeviceId, Unsid, UserId};

use super::records::{DeviceRecord, SubscriptionRecord, decode};
use super::{SledStore, StoreError, keys};

impl SledStore {
    /// The user's signed-in (not revoked) devices.
    pub fn user_devices(&self, user: &UserId) -> Result<Vec<DeviceRecord>, StoreError> {
        Ok(self
            .devices()?
            .into_iter()
            .filter(|d| &d.user == user && !d.revoked)
            .collect())
    }

    /// One device's subscriptions, expired ones included (they lapse at the next
    /// renewal or revoke).
    pub fn device_subscriptions(
        &self,
        device: &DeviceId,
    ) -> Result<Vec<SubscriptionRecord>, StoreError> {
        let backend = self.backend()?;
        let mut out = Vec::new();
        for entry in backend
            .trees
            .subs_by_device
            .scan_prefix(keys::device_prefix(device))
        {
            let (_, unsid) = entry?;
            if let Some(value) = backend.trees.subs.get(unsid)? {
                out.push(decode(&value)?);
            }
        }
        Ok(out)
    }

    /// Ends a subscription: its UNSID stops working for the app at once. `None` when
    /// there is no such subscription.
    pub async fn unsubscribe(
        &self,
        unsid: &Unsid,
    ) -> Result<Option<SubscriptionRecord>, StoreError> {
        self.writable()?;
        let Some(record) = self.subscription(unsid)? else {
            return Ok(None);
        };
        let index = keys::device_host(&record.device, &record.host);
        let backend = self.backend()?;
        let t = &backend.trees;
        (&t.subs, &t.subs_by_device).transaction(|(subs, by_device)| {
            subs.remove(unsid.as_str().as_bytes())?;
            by_device.remove(index.clone())?;
            Ok::<_, ConflictableTransactionError<StoreError>>(())
        })?;
        self.barrier().await?;
        Ok(Some(record))
    }
}
