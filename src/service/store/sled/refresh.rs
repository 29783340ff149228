//! Refresh-token rotation: each device's current refresh token is the hash in its
//! [`DeviceRecord`]; a [`RefreshRecord`] beside it (tree `refresh`, by device id) holds
//! when that token was issued and the hashes of the tokens it replaced, so that a
//! replaced token presented again is recognised (reuse detection).
//!
//! Devices from before rotation have no record: their token counts as issued when the
//! device was last seen.

use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use crate::protocol::{DeviceId, Timestamp};

use super::records::{DeviceRecord, RefreshRecord, decode, encode};
use super::{SledStore, StoreError};

impl SledStore {
    /// The refresh history of `device` (empty for one from before rotation).
    pub fn refresh_record(&self, device: &DeviceId) -> Result<RefreshRecord, StoreError> {
        let value = self
            .backend()?
            .trees
            .refresh
            .get(device.as_str().as_bytes())?;
        Ok(value.map(|v| decode(&v)).transpose()?.unwrap_or_default())
    }

    /// Replaces `device`'s refresh token whose hash is `current` by `fresh`, issued
    /// `now`, and remembers the old one; durable before it returns. `false` when the
    /// current token is no longer `current` (another request rotated it first).
    pub async fn rotate_refresh(
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
