//! Removing a user for good (`tidings admin user remove`): their notifications, their
//! feed position, their devices with their refresh histories and subscriptions, and the
//! user record. The caller revokes the devices first (closing their channels).

use sled::Batch;

use crate::protocol::UserId;

use super::records::{DeviceRecord, UserRecord};
use super::{Removed, SledStore, StoreError, keys};

impl SledStore {
    /// Removes `user` and everything they hold; flushed before it returns.
    pub async fn remove_user(&self, user: &UserRecord) -> Result<Removed, StoreError> {
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
            for device in self.devices_of(&user.id)? {
                for entry in trees
                    .subs_by_device
                    .scan_prefix(keys::device_prefix(&device.id))
                {
                    let (key, unsid) = entry?;
                    trees.subs.remove(unsid)?;
                    trees.subs_by_device.remove(key)?;
                }
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

    /// Every device of `user`, revoked ones included.
    fn devices_of(&self, user: &UserId) -> Result<Vec<DeviceRecord>, StoreError> {
        Ok(self
            .devices()?
            .into_iter()
            .filter(|d| &d.user == user)
            .collect())
    }
}
