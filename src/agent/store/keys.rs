//! The keys of this device's subscriptions (`K` + UNSID → the 48 bytes of
//! [`DeviceKeys`]): made when the device subscribes, kept through renewals (the UNSID
//! stays), used to open encrypted content sent to it. They never leave the device; the
//! store's directory is the user's alone, as the credentials are.

use std::collections::HashMap;

use crate::protocol::Unsid;
use crate::protocol::sealed::{DeviceKeys, Keyring};

use super::{AgentStore, AgentStoreError};

const KEYS: u8 = b'K';

fn keys_key(unsid: &Unsid) -> Vec<u8> {
    let mut key = vec![KEYS];
    key.extend_from_slice(unsid.as_str().as_bytes());
    key
}

impl AgentStore {
    /// The keys of `unsid`, made and kept now if it has none (a new subscription, or one
    /// made before this device kept keys); durable on return.
    pub async fn ensure_keys(&self, unsid: &Unsid) -> Result<DeviceKeys, AgentStoreError> {
        if let Some(bytes) = self.cache.get(keys_key(unsid))? {
            return read(&bytes);
        }
        let keys = DeviceKeys::generate()?;
        self.cache.insert(keys_key(unsid), &keys.to_bytes()[..])?;
        self.flush().await?;
        Ok(keys)
    }

    /// Destroys the keys of `unsid` (flushed by the caller).
    pub(super) fn forget_keys(&self, unsid: &Unsid) -> Result<(), AgentStoreError> {
        self.cache.remove(keys_key(unsid))?;
        Ok(())
    }

    /// Destroys every subscription's keys (the device was signed out); durable on
    /// return.
    pub async fn forget_all_keys(&self) -> Result<(), AgentStoreError> {
        for entry in self.cache.scan_prefix([KEYS]) {
            self.cache.remove(entry?.0)?;
        }
        self.flush().await
    }

    /// Each subscription that has keys, with its app's host.
    pub fn keyring(&self) -> Result<Keyring, AgentStoreError> {
        let mut keys = self.all_keys()?;
        Ok(self
            .subscriptions()?
            .into_iter()
            .filter_map(|sub| {
                let of = keys.remove(&sub.unsid)?;
                Some((sub.unsid, (sub.target_host_name, of)))
            })
            .collect())
    }

    /// The keys of every subscription that has them, by UNSID.
    pub fn all_keys(&self) -> Result<HashMap<Unsid, DeviceKeys>, AgentStoreError> {
        self.cache
            .scan_prefix([KEYS])
            .map(|entry| {
                let (key, value) = entry?;
                let unsid = String::from_utf8_lossy(&key[1..]).into_owned();
                Ok((Unsid::new(unsid), read(&value)?))
            })
            .collect()
    }
}

fn read(bytes: &[u8]) -> Result<DeviceKeys, AgentStoreError> {
    DeviceKeys::from_bytes(bytes).map_err(|e| AgentStoreError::Corrupt(e.to_string()))
}
