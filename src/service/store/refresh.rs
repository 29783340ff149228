//! Refresh-token rotation: each device's current refresh token is the hash in its
//! [`DeviceRecord`]; a [`RefreshRecord`] beside it (tree `refresh`, by device id) holds
//! when that token was issued and the hashes of the tokens it replaced, so that a
//! replaced token presented again is recognised (reuse detection).
//!
//! Devices from before rotation have no record: their token counts as issued when the
//! device was last seen.

use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use crate::protocol::{DeviceId, Timestamp, UserId};

use super::records::{DeviceRecord, decode, encode};
use super::{Store, StoreError};

/// Replaced tokens remembered per device.
const RETIRED_KEPT: usize = 16;

/// A device's refresh-token history.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RefreshRecord {
    /// When the current token was issued.
    pub issued: Option<Timestamp>,
    /// SHA-256 of the tokens the current one replaced, newest last.
    pub retired: Vec<Vec<u8>>,
}

impl RefreshRecord {
    /// When `device`'s current token was issued.
    pub fn issued(&self, device: &DeviceRecord) -> Timestamp {
        self.issued
            .unwrap_or_else(|| device.last_seen.unwrap_or(device.created))
    }
}

impl Store {
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
            history
                .retired
                .push(std::mem::replace(&mut record.refresh_hash, fresh.clone()));
            let excess = history.retired.len().saturating_sub(RETIRED_KEPT);
            history.retired.drain(..excess);
            history.issued = Some(now);
            devices.insert(key, encode(&record).map_err(abort)?)?;
            refresh.insert(key, encode(&history).map_err(abort)?)?;
            Ok(true)
        })?;
        if rotated {
            self.barrier().await?;
        }
        Ok(rotated)
    }

    /// How many devices of `user` are signed in (not revoked).
    pub fn live_devices(&self, user: &UserId) -> Result<usize, StoreError> {
        Ok(self.user_devices(user)?.len())
    }
}
