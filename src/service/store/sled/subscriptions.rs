//! [`SledStore`] as [`Subscriptions`]: tree `subs` (UNSID to subscription) and its index
//! `subs_by_device` (device and host to UNSID). Each write is durable before the caller
//! is answered.

use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use crate::protocol::{DeviceId, Timestamp, Unsid, UserId};

use super::super::Subscriptions;
use super::accounts::one;
use super::records::{SubscriptionExpiry, SubscriptionRecord, decode, encode};
use super::{SledStore, StoreError, Trees, keys};

#[async_trait::async_trait]
impl Subscriptions for SledStore {
    async fn subscribe(
        &self,
        user: &UserId,
        device: &DeviceId,
        host: &str,
        expires: Timestamp,
        fresh: Unsid,
    ) -> Result<SubscriptionRecord, StoreError> {
        self.writable()?;
        let index = keys::device_host(device, host);
        let backend = self.backend()?;
        let t = &backend.trees;
        let unsid = match t.subs_by_device.get(&index)? {
            Some(existing) => Unsid::new(String::from_utf8_lossy(&existing).into_owned()),
            None => fresh,
        };
        let record = SubscriptionRecord {
            unsid: unsid.clone(),
            user: user.clone(),
            device: device.clone(),
            host: host.to_owned(),
            expires,
        };
        let value = encode(&record)?;
        (&t.subs, &t.subs_by_device).transaction(|(subs, by_device)| {
            subs.insert(unsid.as_str().as_bytes(), value.clone())?;
            by_device.insert(index.clone(), unsid.as_str().as_bytes())?;
            Ok::<_, ConflictableTransactionError<StoreError>>(())
        })?;
        self.barrier().await?;
        Ok(record)
    }

    async fn subscription(&self, unsid: &Unsid) -> Result<Option<SubscriptionRecord>, StoreError> {
        one(&self.backend()?.trees.subs, unsid.as_str().as_bytes())
    }

    async fn is_subscribed(
        &self,
        device: &DeviceId,
        host: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let backend = self.backend()?;
        let t = &backend.trees;
        let Some(unsid) = t.subs_by_device.get(keys::device_host(device, host))? else {
            return Ok(false);
        };
        let Some(value) = t.subs.get(&unsid)? else {
            return Ok(false);
        };
        Ok(decode::<SubscriptionExpiry<'_>>(&value)?.expires > now)
    }

    /// Expired ones lapse at the next renewal or revoke.
    async fn device_subscriptions(
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

    /// The UNSID stops working for the app at once.
    async fn unsubscribe(&self, unsid: &Unsid) -> Result<Option<SubscriptionRecord>, StoreError> {
        self.writable()?;
        let Some(record) = self.subscription(unsid).await? else {
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

/// Drops every subscription of `device` (it was revoked, or its user removed); made
/// durable by the caller's next barrier.
pub(super) fn drop_device(trees: &Trees, device: &DeviceId) -> Result<(), StoreError> {
    for entry in trees
        .subs_by_device
        .scan_prefix(keys::device_prefix(device))
    {
        let (key, unsid) = entry?;
        trees.subs.remove(unsid)?;
        trees.subs_by_device.remove(key)?;
    }
    Ok(())
}
