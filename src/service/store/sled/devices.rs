//! [`SledStore`] as [`Devices`]: signed-in devices, their acks, and refresh-token
//! rotation.
//!
//! Adding and revoking a device is made durable before the caller is answered. Acks and
//! "last seen" are frequent and advisory, so they are written without waiting for a
//! flush (the next flush takes them).
//!
//! Each device's current refresh token is the hash in its [`DeviceRecord`]; a
//! [`RefreshRecord`] beside it (tree `refresh`, by device id) holds when that token was
//! issued and the hashes of the tokens it replaced, so that a replaced token presented
//! again is recognised (reuse detection). Devices from before rotation have no record:
//! their token counts as issued when the device was last seen.

use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use crate::protocol::{DeviceId, Seq, Timestamp, UserId};

use super::super::Devices;
use super::accounts::{all, one};
use super::records::{DeviceRecord, RefreshRecord, decode, encode};
use super::{SledStore, StoreError, subscriptions};

#[async_trait::async_trait]
impl Devices for SledStore {
    async fn add_device(&self, device: DeviceRecord) -> Result<DeviceRecord, StoreError> {
        self.writable()?;
        self.backend()?
            .trees
            .devices
            .insert(device.id.as_str().as_bytes(), encode(&device)?)?;
        self.barrier().await?;
        Ok(device)
    }

    async fn devices(&self) -> Result<Vec<DeviceRecord>, StoreError> {
        all(&self.backend()?.trees.devices)
    }

    async fn device(&self, id: &DeviceId) -> Result<Option<DeviceRecord>, StoreError> {
        one(&self.backend()?.trees.devices, id.as_str().as_bytes())
    }

    async fn user_devices(&self, user: &UserId) -> Result<Vec<DeviceRecord>, StoreError> {
        Ok(self
            .devices()
            .await?
            .into_iter()
            .filter(|d| &d.user == user && !d.revoked)
            .collect())
    }

    async fn revoke_device(&self, id: &DeviceId) -> Result<Option<DeviceRecord>, StoreError> {
        self.writable()?;
        let updated = self.update_device(id, |d| d.revoked = true)?;
        if updated.is_some() {
            subscriptions::drop_device(&self.backend()?.trees, id)?;
            self.barrier().await?;
        }
        Ok(updated)
    }

    /// Bookkeeping for `device list`: best effort, so that no read or channel fails on it.
    fn record_ack(&self, id: &DeviceId, seq: Seq, now: Timestamp) {
        let result = self.update_device(id, |d| {
            d.acked_seq = d.acked_seq.max(seq);
            d.last_seen = Some(now);
        });
        if let Err(e) = result {
            tracing::debug!(device = %id, error = %e, "ack not recorded");
        }
    }

    fn touch_device(&self, id: &DeviceId, now: Timestamp) {
        if let Err(e) = self.update_device(id, |d| d.last_seen = Some(now)) {
            tracing::debug!(device = %id, error = %e, "last-seen not recorded");
        }
    }

    async fn refresh_record(&self, device: &DeviceId) -> Result<RefreshRecord, StoreError> {
        let value = self
            .backend()?
            .trees
            .refresh
            .get(device.as_str().as_bytes())?;
        Ok(value.map(|v| decode(&v)).transpose()?.unwrap_or_default())
    }

    /// Durable before it returns.
    async fn rotate_refresh(
        &self,
        device: &DeviceId,
        current: &[u8],
        fresh: Vec<u8>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.writable()?;
        let backend = self.backend()?;
        let trees = &backend.trees;
        let key = device.as_str().as_bytes();
        let rotated = (&trees.devices, &trees.refresh).transaction(|(devices, refresh)| {
            let abort = |e: StoreError| ConflictableTransactionError::Abort(e);
            let Some(value) = devices.get(key)? else {
                return Ok(false);
            };
            let mut record: DeviceRecord = decode(&value).map_err(abort)?;
            if record.refresh_hash != current {
                return Ok(false);
            }
            let mut history: RefreshRecord = match refresh.get(key)? {
                Some(v) => decode(&v).map_err(abort)?,
                None => RefreshRecord::default(),
            };
            history.retire(
                std::mem::replace(&mut record.refresh_hash, fresh.clone()),
                now,
            );
            devices.insert(key, encode(&record).map_err(abort)?)?;
            refresh.insert(key, encode(&history).map_err(abort)?)?;
            Ok(true)
        })?;
        if rotated {
            self.barrier().await?;
        }
        Ok(rotated)
    }
}

impl SledStore {
    /// Applies `edit` to the stored device `id`; `None` when there is no such device.
    fn update_device(
        &self,
        id: &DeviceId,
        edit: impl Fn(&mut DeviceRecord),
    ) -> Result<Option<DeviceRecord>, StoreError> {
        self.writable()?;
        let mut failure = None;
        let updated =
            self.backend()?
                .trees
                .devices
                .update_and_fetch(id.as_str().as_bytes(), |old| {
                    let old = old?;
                    let mut device: DeviceRecord = match decode(old) {
                        Ok(d) => d,
                        Err(e) => {
                            failure = Some(e);
                            return Some(old.to_vec());
                        }
                    };
                    edit(&mut device);
                    // `None` here would delete the device: on an encode failure keep
                    // the old value and report the error.
                    match encode(&device) {
                        Ok(bytes) => Some(bytes),
                        Err(e) => {
                            failure = Some(e);
                            Some(old.to_vec())
                        }
                    }
                })?;
        if let Some(e) = failure {
            return Err(e);
        }
        updated.map(|v| decode(&v)).transpose()
    }
}
