//! [`PgStore`] as a [`Store`]: mostly the inherent methods of the same name.

use std::collections::HashMap;

use crate::protocol::validate::StatePatch;
use crate::protocol::{
    ClientId, DeviceId, NotificationContent, NotificationId, Seq, Timestamp, Unsid, UserId,
};

use super::super::{
    AppRecord, CountHook, DeviceRecord, FeedScan, NotificationRecord, PassHook, RefreshRecord,
    Removed, Reseed, RevokeHook, Store, StoreError, Stored, SubscriptionRecord, TimeHook, Usage,
    UserRecord,
};
use super::{PgStore, col};
use crate::service::store::health::Failure;

#[async_trait::async_trait]
impl Store for PgStore {
    fn describe(&self) -> String {
        format!("PostgreSQL at {}", self.where_)
    }

    fn failure(&self) -> Option<Failure> {
        self.health.failure()
    }

    async fn wait_failed(&self) {
        self.health.wait_failed().await;
    }

    /// Channels stay open through a lost link (`_reseed` is not needed): once the
    /// database answers, the catch-up publishes what they missed.
    fn recover(&self, _reseed: Reseed) -> Result<bool, StoreError> {
        tokio::runtime::Handle::current().block_on(self.recover_link())
    }

    /// Every answered write is committed already.
    async fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn on_commit(&self, observe: TimeHook) {
        let _ = self.commit_observer.set(observe);
    }

    fn on_notify_lag(&self, observe: TimeHook) {
        self.follow.on_lag(observe);
    }

    fn on_notify_overflow(&self, observe: CountHook) {
        self.follow.on_overflow(observe);
    }

    fn on_remote_revoke(&self, revoked: RevokeHook) {
        self.follow.on_revoke(revoked);
    }

    fn on_unwatched(&self, pass: PassHook) {
        self.follow.on_unwatched(pass);
    }

    async fn size(&self) -> Result<u64, StoreError> {
        let rows = self
            .rows("SELECT pg_database_size(current_database())", &[])
            .await?;
        let bytes: i64 = rows
            .first()
            .map(|row| col(row, 0))
            .transpose()?
            .unwrap_or(0);
        Ok(u64::try_from(bytes).unwrap_or_default())
    }

    async fn last_seqs(&self) -> Result<HashMap<UserId, Seq>, StoreError> {
        Ok(self.follow.all())
    }

    fn durable_seq(&self, user: &UserId) -> Seq {
        self.follow.published(user)
    }

    async fn usage(&self, user: &UserId) -> Result<Usage, StoreError> {
        let rows = self
            .rows(
                "SELECT kept, kept_bytes FROM feed_heads WHERE user_id = $1",
                &[&user.as_str()],
            )
            .await?;
        let (count, bytes): (i64, i64) = match rows.first() {
            Some(row) => (col(row, 0)?, col(row, 1)?),
            None => (0, 0),
        };
        Ok(Usage {
            notifications: u64::try_from(count).unwrap_or_default(),
            bytes: u64::try_from(bytes).unwrap_or_default(),
        })
    }

    async fn token_key(&self, fresh: [u8; 32]) -> Result<Vec<u8>, StoreError> {
        PgStore::token_key(self, fresh).await
    }

    async fn remove_user(&self, user: &UserRecord) -> Result<Removed, StoreError> {
        PgStore::remove_user(self, user).await
    }

    async fn add_user(&self, user: UserRecord) -> Result<UserRecord, StoreError> {
        PgStore::add_user(self, user).await
    }

    async fn set_password(
        &self,
        name: &str,
        password_hash: String,
    ) -> Result<Option<UserRecord>, StoreError> {
        PgStore::set_password(self, name, password_hash).await
    }

    async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        PgStore::users(self).await
    }

    async fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        self.user_where("name", name).await
    }

    async fn user_by_id(&self, id: &UserId) -> Result<Option<UserRecord>, StoreError> {
        self.user_where("id", id.as_str()).await
    }

    async fn add_app(&self, app: AppRecord) -> Result<AppRecord, StoreError> {
        PgStore::add_app(self, app).await
    }

    async fn apps(&self) -> Result<Vec<AppRecord>, StoreError> {
        PgStore::apps(self).await
    }

    async fn app(&self, client_id: &ClientId) -> Result<Option<AppRecord>, StoreError> {
        PgStore::app(self, client_id).await
    }

    async fn add_device(&self, device: DeviceRecord) -> Result<DeviceRecord, StoreError> {
        PgStore::add_device(self, device).await
    }

    async fn devices(&self) -> Result<Vec<DeviceRecord>, StoreError> {
        self.devices_where(None).await
    }

    async fn device(&self, id: &DeviceId) -> Result<Option<DeviceRecord>, StoreError> {
        Ok(self
            .devices_where(Some(("id = $1", id.as_str())))
            .await?
            .pop())
    }

    async fn user_devices(&self, user: &UserId) -> Result<Vec<DeviceRecord>, StoreError> {
        self.devices_where(Some(("user_id = $1 AND NOT revoked", user.as_str())))
            .await
    }

    async fn revoke_device(&self, id: &DeviceId) -> Result<Option<DeviceRecord>, StoreError> {
        PgStore::revoke_device(self, id).await
    }

    fn record_ack(&self, id: &DeviceId, seq: Seq, now: Timestamp) {
        self.note_contact(id, seq, now);
    }

    fn touch_device(&self, id: &DeviceId, now: Timestamp) {
        self.note_contact(id, Seq::ZERO, now);
    }

    async fn refresh_record(&self, device: &DeviceId) -> Result<RefreshRecord, StoreError> {
        PgStore::refresh_record(self, device).await
    }

    async fn rotate_refresh(
        &self,
        device: &DeviceId,
        current: &[u8],
        fresh: Vec<u8>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        PgStore::rotate_refresh(self, device, current, fresh, now).await
    }

    async fn subscribe(
        &self,
        user: &UserId,
        device: &DeviceId,
        host: &str,
        expires: Timestamp,
        fresh: Unsid,
    ) -> Result<SubscriptionRecord, StoreError> {
        PgStore::subscribe(self, user, device, host, expires, fresh).await
    }

    async fn subscription(&self, unsid: &Unsid) -> Result<Option<SubscriptionRecord>, StoreError> {
        if let Some(kept) = self.recent.subscription(unsid, Timestamp::now()) {
            return Ok(Some(kept));
        }
        let found = self
            .subscriptions_where("unsid = $1", &[&unsid.as_str()])
            .await?
            .into_iter()
            .next();
        if let Some(found) = &found {
            self.recent.put_subscription(found);
        }
        Ok(found)
    }

    async fn is_subscribed(
        &self,
        device: &DeviceId,
        host: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        PgStore::is_subscribed(self, device, host, now).await
    }

    async fn device_subscriptions(
        &self,
        device: &DeviceId,
    ) -> Result<Vec<SubscriptionRecord>, StoreError> {
        self.subscriptions_where("device_id = $1", &[&device.as_str()])
            .await
    }

    async fn unsubscribe(&self, unsid: &Unsid) -> Result<Option<SubscriptionRecord>, StoreError> {
        PgStore::unsubscribe(self, unsid).await
    }

    async fn upsert(
        &self,
        user: &UserId,
        content: NotificationContent,
        now: Timestamp,
    ) -> Result<Stored, StoreError> {
        PgStore::upsert(self, user, content, now).await
    }

    async fn update_state(
        &self,
        user: &UserId,
        id: &NotificationId,
        patch: StatePatch,
        now: Timestamp,
    ) -> Result<Option<Stored>, StoreError> {
        PgStore::update_state(self, user, id, patch, now).await
    }

    async fn delete(
        &self,
        user: &UserId,
        id: &NotificationId,
        now: Timestamp,
    ) -> Result<Option<Stored>, StoreError> {
        PgStore::delete(self, user, id, now).await
    }

    async fn delete_group(
        &self,
        user: &UserId,
        host: &str,
        group: &str,
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        PgStore::delete_group(self, user, host, group, now).await
    }

    async fn get(
        &self,
        user: &UserId,
        id: &NotificationId,
        now: Timestamp,
    ) -> Result<Option<NotificationRecord>, StoreError> {
        PgStore::get(self, user, id, now).await
    }

    async fn feed_scan(
        &self,
        user: &UserId,
        after: Seq,
        upto: Option<Seq>,
        max: usize,
    ) -> Result<FeedScan, StoreError> {
        PgStore::feed_scan(self, user, after, upto, max).await
    }

    async fn purge_expired(&self, now: Timestamp, max: usize) -> Result<usize, StoreError> {
        PgStore::purge_expired(self, now, max).await
    }
}
