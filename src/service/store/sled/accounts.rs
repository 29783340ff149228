//! [`SledStore`] as [`Accounts`]: users and apps, and removing a user for good.
//!
//! Account writes are rare; each is made durable through the group committer before the
//! caller is answered.

use sled::transaction::ConflictableTransactionError;
use sled::{Batch, Transactional};

use crate::protocol::stored::Versioned;
use crate::protocol::{ClientId, UserId};

use super::super::{Accounts, Removed};
use super::records::{AppRecord, DeviceRecord, UserRecord, decode, encode};
use super::{SledStore, StoreError, keys, subscriptions};

#[async_trait::async_trait]
impl Accounts for SledStore {
    async fn add_user(&self, user: UserRecord) -> Result<UserRecord, StoreError> {
        self.writable()?;
        let value = encode(&user)?;
        let backend = self.backend()?;
        let t = &backend.trees;
        (&t.users, &t.users_by_id).transaction(|(users, by_id)| {
            if users.get(user.name.as_bytes())?.is_some() {
                return Err(ConflictableTransactionError::Abort(StoreError::Conflict(
                    format!("a user named {:?} already exists", user.name),
                )));
            }
            users.insert(user.name.as_bytes(), value.clone())?;
            by_id.insert(user.id.as_str().as_bytes(), user.name.as_bytes())?;
            Ok(())
        })?;
        self.barrier().await?;
        Ok(user)
    }

    /// Removes `user`: their notifications, their feed position, their devices with
    /// their refresh histories and subscriptions, and the user record; flushed before
    /// it returns. The caller revokes the devices first (closing their channels).
    async fn remove_user(&self, user: &UserRecord) -> Result<Removed, StoreError> {
        self.writable()?;
        let mut removed = Removed::default();
        {
            // Under the write lock: no change of this user is queued meanwhile.
            let mut index = self.lock();
            let backend = self.backend()?;
            let trees = &backend.trees;
            let mut notes = Batch::default();
            for entry in trees
                .notifications
                .scan_prefix(keys::user_prefix(keys::NOTE, &user.id))
            {
                notes.remove(entry?.0);
                removed.notifications += 1;
            }
            notes.remove(keys::seq(&user.id));
            trees.notifications.apply_batch(notes)?;
            index.remove_user(&user.id);
            let devices: Vec<DeviceRecord> = all(&trees.devices)?;
            for device in devices.iter().filter(|d| d.user == user.id) {
                subscriptions::drop_device(trees, &device.id)?;
                trees.refresh.remove(device.id.as_str().as_bytes())?;
                trees.devices.remove(device.id.as_str().as_bytes())?;
                removed.devices += 1;
            }
            trees.users.remove(user.name.as_bytes())?;
            trees.users_by_id.remove(user.id.as_str().as_bytes())?;
        }
        self.barrier().await?;
        Ok(removed)
    }

    async fn set_password(
        &self,
        name: &str,
        password_hash: String,
    ) -> Result<Option<UserRecord>, StoreError> {
        self.writable()?;
        let Some(mut user) = self.user_by_name(name).await? else {
            return Ok(None);
        };
        user.password_hash = password_hash;
        self.backend()?
            .trees
            .users
            .insert(name.as_bytes(), encode(&user)?)?;
        self.barrier().await?;
        Ok(Some(user))
    }

    async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        all(&self.backend()?.trees.users)
    }

    async fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        one(&self.backend()?.trees.users, name.as_bytes())
    }

    async fn user_by_id(&self, id: &UserId) -> Result<Option<UserRecord>, StoreError> {
        let backend = self.backend()?;
        match backend.trees.users_by_id.get(id.as_str().as_bytes())? {
            Some(name) => one(&backend.trees.users, &name),
            None => Ok(None),
        }
    }

    async fn add_app(&self, app: AppRecord) -> Result<AppRecord, StoreError> {
        self.writable()?;
        self.backend()?
            .trees
            .apps
            .insert(app.client_id.as_str().as_bytes(), encode(&app)?)?;
        self.barrier().await?;
        Ok(app)
    }

    async fn apps(&self) -> Result<Vec<AppRecord>, StoreError> {
        all(&self.backend()?.trees.apps)
    }

    async fn app(&self, client_id: &ClientId) -> Result<Option<AppRecord>, StoreError> {
        one(&self.backend()?.trees.apps, client_id.as_str().as_bytes())
    }
}

/// The record under `key` in `tree`, if there is one.
pub(super) fn one<T: serde::de::DeserializeOwned + Versioned>(
    tree: &sled::Tree,
    key: &[u8],
) -> Result<Option<T>, StoreError> {
    tree.get(key)?.map(|v| decode(&v)).transpose()
}

/// Every record in `tree`.
pub(super) fn all<T: serde::de::DeserializeOwned + Versioned>(
    tree: &sled::Tree,
) -> Result<Vec<T>, StoreError> {
    tree.iter().map(|entry| decode(&entry?.1)).collect()
}
