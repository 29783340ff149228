//! The store's interface, one trait per concern, each implemented once per backend in
//! the file that does that work (`sled/accounts.rs` is `impl Accounts for SledStore`,
//! and so on): no layer forwards one method onto another of the same name. [`Store`] is
//! all of them, and what the rest of the service holds (`Arc<dyn Store>`).

use std::collections::HashMap;

use crate::protocol::validate::StatePatch;
use crate::protocol::{
    ClientId, DeviceId, NotificationContent, NotificationId, Seq, Timestamp, Unsid, UserId,
};

use super::{
    AppRecord, CountHook, DeviceRecord, Failure, FeedScan, NotificationRecord, PassHook,
    RefreshRecord, Removed, Reseed, RevokeHook, SledStore, StoreError, Stored, SubscriptionRecord,
    TimeHook, Usage, UserRecord,
};

/// The service's store, whichever the backend: every trait below. Shared as
/// `Arc<dyn Store>`; its methods need no import.
pub trait Store: Lifecycle + Accounts + Devices + Subscriptions + Notes {}

impl<T: Lifecycle + Accounts + Devices + Subscriptions + Notes + ?Sized> Store for T {}

/// What the store is, whether it can take writes, the hooks that watch it, and each
/// user's feed head.
#[async_trait::async_trait]
pub trait Lifecycle: Send + Sync {
    /// What the store is, for logs and `tidings config` ("sled in DIR", "PostgreSQL at
    /// HOST/DB").
    fn describe(&self) -> String;

    /// The sled store, for what only it can do (backups, the disk reserve).
    fn as_sled(&self) -> Option<&SledStore> {
        None
    }

    /// Why the store takes no writes, if it does not.
    fn failure(&self) -> Option<Failure>;
    /// Resolves when the store fails.
    async fn wait_failed(&self);
    /// Says that a recovery task runs (reads may then wait for a reopen).
    fn recovery_runs(&self) {}
    /// Tries to bring a failed store back; returns whether writes are accepted again.
    /// Blocking: call it off the async runtime (`spawn_blocking`).
    fn recover(&self, reseed: Reseed) -> Result<bool, StoreError>;
    /// Makes everything written so far durable.
    async fn flush(&self) -> Result<(), StoreError>;
    /// Tells `observe` how long each durable commit takes (a flush, a database commit).
    fn on_commit(&self, observe: TimeHook);
    /// Tells `observe` how long changes committed by other nodes took to reach this one
    /// (only a shared store has other nodes).
    fn on_notify_lag(&self, _observe: TimeHook) {}
    /// Tells `observe` each time this node fell behind other nodes' announcements,
    /// dropped some and caught up from the database instead (a shared store only).
    fn on_notify_overflow(&self, _observe: CountHook) {}
    /// Tells `observe` each time this node read other nodes' changes back from the
    /// database because their announcements did not carry them (a shared store only).
    fn on_notify_read(&self, _observe: CountHook) {}
    /// Tells `revoked` of each device another node revoked (a shared store only), so
    /// this node closes its channels too.
    fn on_remote_revoke(&self, _revoked: RevokeHook) {}
    /// Lets `pass` spare this node reading other nodes' changes of users it has no
    /// channel for (a shared store only).
    fn on_unwatched(&self, _pass: PassHook) {}
    /// Says that a channel of `user` opens on this node, before it registers with the
    /// hub. A shared store marks the user watched by this node, so that other nodes
    /// announce their changes, and counts everything committed before the mark; an
    /// error means the channel cannot be served.
    async fn watch(&self, _user: &UserId) -> Result<(), StoreError> {
        Ok(())
    }
    /// Says that a channel of `user` on this node closed (each [`Lifecycle::watch`]
    /// that succeeded is followed by one).
    async fn unwatch(&self, _user: &UserId) {}
    /// Bytes the store takes (on disk, or the database's size).
    async fn size(&self) -> Result<u64, StoreError>;

    /// The last `seq` of every user's feed that was published: the hub's starting point.
    async fn last_seqs(&self) -> Result<HashMap<UserId, Seq>, StoreError>;
    /// `user`'s last published `seq`.
    fn durable_seq(&self, user: &UserId) -> Seq;
    /// The key that signs access tokens, made on first use (from `fresh`) and kept.
    async fn token_key(&self, fresh: [u8; 32]) -> Result<Vec<u8>, StoreError>;
}

/// Users and apps.
#[async_trait::async_trait]
pub trait Accounts: Send + Sync {
    /// Adds a user; a taken name is a [`StoreError::Conflict`].
    async fn add_user(&self, user: UserRecord) -> Result<UserRecord, StoreError>;
    /// Removes a user for good with their notifications, devices (and their refresh
    /// histories) and subscriptions. Revoke the devices first: this closes nothing.
    async fn remove_user(&self, user: &UserRecord) -> Result<Removed, StoreError>;
    /// Replaces a user's password hash; `None` when there is no such user.
    async fn set_password(
        &self,
        name: &str,
        password_hash: String,
    ) -> Result<Option<UserRecord>, StoreError>;
    /// Every user, by name.
    async fn users(&self) -> Result<Vec<UserRecord>, StoreError>;
    /// The user with this sign-in name.
    async fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>, StoreError>;
    /// The user with this id.
    async fn user_by_id(&self, id: &UserId) -> Result<Option<UserRecord>, StoreError>;
    /// Adds an app.
    async fn add_app(&self, app: AppRecord) -> Result<AppRecord, StoreError>;
    /// Every app.
    async fn apps(&self) -> Result<Vec<AppRecord>, StoreError>;
    /// The app with this client id.
    async fn app(&self, client_id: &ClientId) -> Result<Option<AppRecord>, StoreError>;
}

/// Signed-in devices, their refresh tokens and their acks.
#[async_trait::async_trait]
pub trait Devices: Send + Sync {
    /// Adds a signed-in device.
    async fn add_device(&self, device: DeviceRecord) -> Result<DeviceRecord, StoreError>;
    /// Every device, revoked ones included.
    async fn devices(&self) -> Result<Vec<DeviceRecord>, StoreError>;
    /// The device with this id.
    async fn device(&self, id: &DeviceId) -> Result<Option<DeviceRecord>, StoreError>;
    /// The user's signed-in (not revoked) devices.
    async fn user_devices(&self, user: &UserId) -> Result<Vec<DeviceRecord>, StoreError>;
    /// How many devices of `user` are signed in (not revoked).
    async fn live_devices(&self, user: &UserId) -> Result<usize, StoreError> {
        Ok(self.user_devices(user).await?.len())
    }
    /// Marks a device revoked and drops its subscriptions; `None` when unknown.
    async fn revoke_device(&self, id: &DeviceId) -> Result<Option<DeviceRecord>, StoreError>;
    /// Records a device's cumulative ack (never moving it back) and that it was seen.
    /// Best effort and not waited for: no read or channel fails on it.
    fn record_ack(&self, id: &DeviceId, seq: Seq, now: Timestamp);
    /// Records that a device talked to the service; best effort, like `record_ack`.
    fn touch_device(&self, id: &DeviceId, now: Timestamp);
    /// The refresh history of `device` (empty for one from before rotation).
    async fn refresh_record(&self, device: &DeviceId) -> Result<RefreshRecord, StoreError>;
    /// Replaces `device`'s refresh token whose hash is `current` by `fresh`, issued
    /// `now`, and remembers the old one. `false` when the current token is no longer
    /// `current` (another request rotated it first).
    async fn rotate_refresh(
        &self,
        device: &DeviceId,
        current: &[u8],
        fresh: Vec<u8>,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
}

/// Subscriptions (UNSIDs): which device takes which app's notifications.
#[async_trait::async_trait]
pub trait Subscriptions: Send + Sync {
    /// Subscribes `device` to `host`, or renews its subscription (same UNSID, later
    /// expiry). `fresh` is used as the UNSID of a new subscription.
    async fn subscribe(
        &self,
        user: &UserId,
        device: &DeviceId,
        host: &str,
        expires: Timestamp,
        fresh: Unsid,
    ) -> Result<SubscriptionRecord, StoreError>;
    /// The subscription a UNSID names, if it exists.
    async fn subscription(&self, unsid: &Unsid) -> Result<Option<SubscriptionRecord>, StoreError>;
    /// Whether `device` holds an unexpired subscription to `host`.
    async fn is_subscribed(
        &self,
        device: &DeviceId,
        host: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// One device's subscriptions, expired ones included.
    async fn device_subscriptions(
        &self,
        device: &DeviceId,
    ) -> Result<Vec<SubscriptionRecord>, StoreError>;
    /// Ends a subscription; `None` when there is no such subscription.
    async fn unsubscribe(&self, unsid: &Unsid) -> Result<Option<SubscriptionRecord>, StoreError>;
}

/// Notifications and each user's feed.
#[async_trait::async_trait]
pub trait Notes: Send + Sync {
    /// What `user` keeps: notifications (deleted ones too, until they expire) and
    /// their size, for the user's quota.
    async fn usage(&self, user: &UserId) -> Result<Usage, StoreError>;
    /// Stores a new notification, or replaces the one with the same
    /// (user, host, `appNotificationId`) in place: same id, new content, fresh state.
    async fn upsert(
        &self,
        user: &UserId,
        content: NotificationContent,
        now: Timestamp,
    ) -> Result<Stored, StoreError>;
    /// Applies a device's state change. `None` when the notification does not exist
    /// (or is deleted or expired).
    async fn update_state(
        &self,
        user: &UserId,
        id: &NotificationId,
        patch: StatePatch,
        now: Timestamp,
    ) -> Result<Option<Stored>, StoreError>;
    /// Turns a notification into a tombstone that devices receive as a change.
    async fn delete(
        &self,
        user: &UserId,
        id: &NotificationId,
        now: Timestamp,
    ) -> Result<Option<Stored>, StoreError>;
    /// Deletes every live notification of `host` in `group` for `user`; returns how many.
    async fn delete_group(
        &self,
        user: &UserId,
        host: &str,
        group: &str,
        now: Timestamp,
    ) -> Result<usize, StoreError>;
    /// A live (not deleted, not expired) notification of `user`, as committed.
    async fn get(
        &self,
        user: &UserId,
        id: &NotificationId,
        now: Timestamp,
    ) -> Result<Option<NotificationRecord>, StoreError>;
    /// Scans `user`'s feed after `after` (and up to `upto`, when given, and never past
    /// what is durable), visiting at most `max` entries, in `seq` order.
    async fn feed_scan(
        &self,
        user: &UserId,
        after: Seq,
        upto: Option<Seq>,
        max: usize,
    ) -> Result<FeedScan, StoreError>;
    /// Removes up to `max` notifications that expired by `now`; returns how many. Feed
    /// positions never go back. Several nodes never purge at once.
    async fn purge_expired(&self, now: Timestamp, max: usize) -> Result<usize, StoreError>;
}
