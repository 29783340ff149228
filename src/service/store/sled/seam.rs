//! [`SledStore`] as a [`Store`]: each method is the inherent one of the same name (sled
//! reads are synchronous and fast, so they run in place).

use std::collections::HashMap;

use crate::protocol::validate::StatePatch;
use crate::protocol::{
    ClientId, DeviceId, NotificationContent, NotificationId, Seq, Timestamp, Unsid, UserId,
};

use super::super::{
    AppRecord, DeviceRecord, FeedScan, NotificationRecord, RefreshRecord, Removed, Reseed, Store,
    StoreError, Stored, SubscriptionRecord, TimeHook, Usage, UserRecord,
};
use super::{Failure, SledStore};

#[async_trait::async_trait]
impl Store for SledStore {
    fn describe(&self) -> String {
        format!("sled in {}", self.dir.display())
    }

    fn as_sled(&self) -> Option<&SledStore> {
        Some(self)
    }

    fn failure(&self) -> Option<Failure> {
        SledStore::failure(self)
    }

    async fn wait_failed(&self) {
        SledStore::wait_failed(self).await;
    }

    fn recovery_runs(&self) {
        SledStore::recovery_runs(self);
    }

    fn recover(&self, reseed: Reseed) -> Result<bool, StoreError> {
        SledStore::recover(self, reseed)
    }

    async fn flush(&self) -> Result<(), StoreError> {
        SledStore::flush(self).await
    }

    fn on_commit(&self, observe: TimeHook) {
        self.on_flush(observe);
    }

    async fn size(&self) -> Result<u64, StoreError> {
        self.size_on_disk()
    }

    async fn last_seqs(&self) -> Result<HashMap<UserId, Seq>, StoreError> {
        Ok(SledStore::last_seqs(self))
    }

    async fn usage(&self, user: &UserId) -> Result<Usage, StoreError> {
        let (notifications, bytes) = self.lock().usage(user);
        Ok(Usage {
            notifications,
            bytes,
        })
    }

    fn durable_seq(&self, user: &UserId) -> Seq {
        SledStore::durable_seq(self, user)
    }

    async fn token_key(&self, fresh: [u8; 32]) -> Result<Vec<u8>, StoreError> {
        SledStore::token_key(self, fresh)
    }

    async fn remove_user(&self, user: &UserRecord) -> Result<Removed, StoreError> {
        SledStore::remove_user(self, user).await
    }

    async fn add_user(&self, user: UserRecord) -> Result<UserRecord, StoreError> {
        SledStore::add_user(self, user).await
    }

    async fn set_password(
        &self,
        name: &str,
        password_hash: String,
    ) -> Result<Option<UserRecord>, StoreError> {
        SledStore::set_password(self, name, password_hash).await
    }

    async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        SledStore::users(self)
    }

    async fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        SledStore::user_by_name(self, name)
    }

    async fn user_by_id(&self, id: &UserId) -> Result<Option<UserRecord>, StoreError> {
        SledStore::user_by_id(self, id)
    }

    async fn add_app(&self, app: AppRecord) -> Result<AppRecord, StoreError> {
        SledStore::add_app(self, app).await
    }

    async fn apps(&self) -> Result<Vec<AppRecord>, StoreError> {
        SledStore::apps(self)
    }

    async fn app(&self, client_id: &ClientId) -> Result<Option<AppRecord>, StoreError> {
        SledStore::app(self, client_id)
    }

    async fn add_device(&self, device: DeviceRecord) -> Result<DeviceRecord, StoreError> {
        SledStore::add_device(self, device).await
    }

    async fn devices(&self) -> Result<Vec<DeviceRecord>, StoreError> {
        SledStore::devices(self)
    }

    async fn device(&self, id: &DeviceId) -> Result<Option<DeviceRecord>, StoreError> {
        SledStore::device(self, id)
    }

    async fn user_devices(&self, user: &UserId) -> Result<Vec<DeviceRecord>, StoreError> {
        SledStore::user_devices(self, user)
    }

    async fn revoke_device(&self, id: &DeviceId) -> Result<Option<DeviceRecord>, StoreError> {
        SledStore::revoke_device(self, id).await
    }

    fn record_ack(&self, id: &DeviceId, seq: Seq, now: Timestamp) {
        SledStore::record_ack(self, id, seq, now);
    }

    fn touch_device(&self, id: &DeviceId, now: Timestamp) {
        SledStore::touch_device(self, id, now);
    }

    async fn refresh_record(&self, device: &DeviceId) -> Result<RefreshRecord, StoreError> {
        SledStore::refresh_record(self, device)
    }

    async fn rotate_refresh(
        &self,
        device: &DeviceId,
        current: &[u8],
        fresh: Vec<u8>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        SledStore::rotate_refresh(self, device, current, fresh, now).await
    }

    async fn subscribe(
        &self,
        user: &UserId,
        device: &DeviceId,
        host: &str,
        expires: Timestamp,
        fresh: Unsid,
    ) -> Result<SubscriptionRecord, StoreError> {
        SledStore::subscribe(self, user, device, host, expires, fresh).await
    }

    async fn subscription(&self, unsid: &Unsid) -> Result<Option<SubscriptionRecord>, StoreError> {
        SledStore::subscription(self, unsid)
    }

    async fn is_subscribed(
        &self,
        device: &DeviceId,
        host: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        SledStore::is_subscribed(self, device, host, now)
    }

    async fn device_subscriptions(
        &self,
        device: &DeviceId,
    ) -> Result<Vec<SubscriptionRecord>, StoreError> {
        SledStore::device_subscriptions(self, device)
    }

    async fn unsubscribe(&self, unsid: &Unsid) -> Result<Option<SubscriptionRecord>, StoreError> {
        SledStore::unsubscribe(self, unsid).await
    }

    async fn upsert(
        &self,
        user: &UserId,
        content: NotificationContent,
        now: Timestamp,
    ) -> Result<Stored, StoreError> {
        SledStore::upsert(self, user, content, now).await
    }

    async fn update_state(
        &self,
        user: &UserId,
        id: &NotificationId,
        patch: StatePatch,
        now: Timestamp,
    ) -> Result<Option<Stored>, StoreError> {
        SledStore::update_state(self, user, id, patch, now).await
    }

    async fn delete(
        &self,
        user: &UserId,
        id: &NotificationId,
        now: Timestamp,
    ) -> Result<Option<Stored>, StoreError> {
        SledStore::delete(self, user, id, now).await
    }

    async fn delete_group(
        &self,
        user: &UserId,
        host: &str,
        group: &str,
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        SledStore::delete_group(self, user, host, group, now).await
    }

    async fn get(
        &self,
        user: &UserId,
        id: &NotificationId,
        now: Timestamp,
    ) -> Result<Option<NotificationRecord>, StoreError> {
        SledStore::get(self, user, id, now).await
    }

    async fn feed_scan(
        &self,
        user: &UserId,
        after: Seq,
        upto: Option<Seq>,
        max: usize,
    ) -> Result<FeedScan, StoreError> {
        SledStore::feed_scan(self, user, after, upto, max)
    }

    async fn purge_expired(&self, now: Timestamp, max: usize) -> Result<usize, StoreError> {
        SledStore::purge_expired(self, now, max)
    }
}
