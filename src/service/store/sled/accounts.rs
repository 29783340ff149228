//! Users, apps, devices and subscriptions.
//!
//! Account writes are rare; each is made durable through the group committer before the
//! caller is answered. Acks and "last seen" are frequent and advisory, so they are
//! written without waiting for a flush (sled's background flush picks them up).

use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use crate::protocol::stored::Versioned;
use crate::protocol::{ClientId, DeviceId, Seq, Timestamp, Unsid, UserId};

use super::records::{
    AppRecord, DeviceRecord, SubscriptionExpiry, SubscriptionRecord, UserRecord, decode, encode,
};
use super::{SledStore, StoreError, keys};

impl SledStore {
    /// Adds a user; a taken name is a [`StoreError::Conflict`].
    pub async fn add_user(&self, user: UserRecord) -> Result<UserRecord, StoreError> {
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

    /// Replaces a user's password hash; `None` when there is no such user.
    pub async fn set_password(
        &self,
        name: &str,
        password_hash: String,
    ) -> Result<Option<UserRecord>, StoreError> {
        self.writable()?;
        let Some(mut user) = self.user_by_name(name)? else {
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

    /// Every user, by name.
    pub fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        all(&self.backend()?.trees.users)
    }

    /// The user with this sign-in name.
    pub fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        one(&self.backend()?.trees.users, name.as_bytes())
    }

    /// The user with this id.
    pub fn user_by_id(&self, id: &UserId) -> Result<Option<UserRecord>, StoreError> {
        match self
            .backend()?
            .trees
            .users_by_id
            .get(id.as_str().as_bytes())?
        {
            Some(name) => one(&self.backend()?.trees.users, &name),
            None => Ok(None),
        }
    }

    /// Adds an app.
    pub async fn add_app(&self, app: AppRecord) -> Result<AppRecord, StoreError> {
        self.writable()?;
        self.backend()?
            .trees
            .apps
            .insert(app.client_id.as_str().as_bytes(), encode(&app)?)?;
        self.barrier().await?;
        Ok(app)
    }

    /// Every app.
    pub fn apps(&self) -> Result<Vec<AppRecord>, StoreError> {
        all(&self.backend()?.trees.apps)
    }

    /// The app with this client id.
    pub fn app(&self, client_id: &ClientId) -> Result<Option<AppRecord>, StoreError> {
        one(&self.backend()?.trees.apps, client_id.as_str().as_bytes())
    }

    /// Adds a signed-in device.
    pub async fn add_device(&self, device: DeviceRecord) -> Result<DeviceRecord, StoreError> {
        self.writable()?;
        self.backend()?
            .trees
            .devices
            .insert(device.id.as_str().as_bytes(), encode(&device)?)?;
        self.barrier().await?;
        Ok(device)
    }

    /// Every device, revoked ones included.
    pub fn devices(&self) -> Result<Vec<DeviceRecord>, StoreError> {
        all(&self.backend()?.trees.devices)
    }

    /// The device with this id.
    pub fn device(&self, id: &DeviceId) -> Result<Option<DeviceRecord>, StoreError> {
        one(&self.backend()?.trees.devices, id.as_str().as_bytes())
    }

    /// Marks a device revoked and drops its subscriptions; `None` when unknown.
    pub async fn revoke_device(&self, id: &DeviceId) -> Result<Option<DeviceRecord>, StoreError> {
        self.writable()?;
        let updated = self.update_device(id, |d| d.revoked = true)?;
        if updated.is_some() {
            for entry in self
                .backend()?
                .trees
                .subs_by_device
                .scan_prefix(keys::device_prefix(id))
            {
                let (key, unsid) = entry?;
                self.backend()?.trees.subs.remove(unsid)?;
                self.backend()?.trees.subs_by_device.remove(key)?;
            }
            self.barrier().await?;
        }
        Ok(updated)
    }

    /// Records a device's cumulative ack (never moving it back) and that it was seen.
    /// Bookkeeping for `device list`: best effort, so that no read or channel fails on it.
    pub fn record_ack(&self, id: &DeviceId, seq: Seq, now: Timestamp) {
        let result = self.update_device(id, |d| {
            d.acked_seq = d.acked_seq.max(seq);
            d.last_seen = Some(now);
        });
        if let Err(e) = result {
            tracing::debug!(device = %id, error = %e, "ack not recorded");
        }
    }

    /// Records that a device talked to the service; best effort, like [`Self::record_ack`].
    pub fn touch_device(&self, id: &DeviceId, now: Timestamp) {
        if let Err(e) = self.update_device(id, |d| d.last_seen = Some(now)) {
            tracing::debug!(device = %id, error = %e, "last-seen not recorded");
        }
    }

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

    /// Subscribes `device` to `host`, or renews its subscription (same UNSID, later
    /// expiry). `fresh` is used as the UNSID of a new subscription.
    pub async fn subscribe(
        &self,
        user: &UserId,
        device: &DeviceId,
        host: &str,
        expires: Timestamp,
        fresh: Unsid,
    ) -> Result<SubscriptionRecord, StoreError> {
        self.writable()?;
        let index = keys::device_host(device, host);
        let unsid = match self.backend()?.trees.subs_by_device.get(&index)? {
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
        let backend = self.backend()?;
        let t = &backend.trees;
        (&t.subs, &t.subs_by_device).transaction(|(subs, by_device)| {
            subs.insert(unsid.as_str().as_bytes(), value.clone())?;
            by_device.insert(index.clone(), unsid.as_str().as_bytes())?;
            Ok::<_, ConflictableTransactionError<StoreError>>(())
        })?;
        self.barrier().await?;
        Ok(record)
    }

    /// The subscription a UNSID names, if it exists.
    pub fn subscription(&self, unsid: &Unsid) -> Result<Option<SubscriptionRecord>, StoreError> {
        one(&self.backend()?.trees.subs, unsid.as_str().as_bytes())
    }

    /// Whether `device` holds an unexpired subscription to `host`.
    pub fn is_subscribed(
        &self,
        device: &DeviceId,
        host: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let Some(unsid) = self
            .backend()?
            .trees
            .subs_by_device
            .get(keys::device_host(device, host))?
        else {
            return Ok(false);
        };
        let Some(value) = self.backend()?.trees.subs.get(&unsid)? else {
            return Ok(false);
        };
        Ok(decode::<SubscriptionExpiry<'_>>(&value)?.expires > now)
    }
}

fn one<T: serde::de::DeserializeOwned + Versioned>(
    tree: &sled::Tree,
    key: &[u8],
) -> Result<Option<T>, StoreError> {
    tree.get(key)?.map(|v| decode(&v)).transpose()
}

fn all<T: serde::de::DeserializeOwned + Versioned>(
    tree: &sled::Tree,
) -> Result<Vec<T>, StoreError> {
    tree.iter().map(|entry| decode(&entry?.1)).collect()
}
