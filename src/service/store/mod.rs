//! The service's persistence: one backend-neutral interface, [`Store`], with two
//! implementations chosen by config (`[service] store`):
//!
//! - [`SledStore`] (`sled/`): an embedded sled database in the data directory. The
//!   default; one node.
//! - [`PgStore`] (`postgres/`): a PostgreSQL database that several service nodes share.
//!
//! Routes, the hub, the channel and the admin handler talk to `Arc<dyn Store>` in domain
//! terms (users, devices, notifications, feed pages); nothing outside this module names
//! sled or PostgreSQL.
//!
//! What every implementation promises (the whole service test suite runs against both):
//!
//! - a write is answered only once it is durable (a `201` means committed);
//! - each user's changes get consecutive `seq`s in commit order;
//! - the publish callback given at open sees every durable change exactly once, per user
//!   in `seq` order with no gap (a change may be superseded by a later one of the same
//!   notification: then only the later one is published), whichever node wrote it;
//! - a failure of the disk or the database link is reported ([`Store::failure`]), writes
//!   are refused meanwhile, and [`Store::recover`] brings the store back.

#[cfg(test)]
pub(crate) mod fixtures;
pub mod health;
mod postgres;
pub mod records;
mod sled;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub use self::postgres::{LOCK_PURGE, PgConfig, PgStore};
pub use self::sled::{BackupSummary, SledStore};
pub use health::Failure;
pub use records::{
    AppRecord, DeviceRecord, NotificationRecord, RefreshRecord, SubscriptionRecord, UserRecord,
};

use crate::protocol::validate::StatePatch;
use crate::protocol::{
    ClientId, DeviceId, Notification, NotificationContent, NotificationId, Seq, Timestamp, Unsid,
    UserId,
};

/// Errors of the store. Conflicts are reported as [`StoreError::Conflict`]; everything
/// else is a fault of the disk, the database or the data, not of the request.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be read or written just now (an embedded database whose
    /// handle is being replaced after a failure); try again.
    #[error("store I/O error: {0}")]
    Io(std::io::Error),
    /// The database refused a statement or an operation (not a lost link: that is
    /// `Unavailable`).
    #[error("database error: {0}")]
    Database(String),
    /// The request holds a value the store cannot hold (a NUL in a text column of
    /// PostgreSQL); answered `400`. The HTTP edge refuses these first.
    #[error("{0}")]
    Invalid(String),
    /// A value could not be encoded or decoded.
    #[error(transparent)]
    Record(#[from] crate::protocol::stored::RecordError),
    /// A stored value is not what this build expects.
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The write conflicts with what is stored (e.g. the user name is taken).
    #[error("{0}")]
    Conflict(String),
    /// The store could not be set up.
    #[error("{0}")]
    Commit(String),
    /// The store takes no writes (a flush failed, the database is unreachable; see
    /// [`health`]), or is being reopened.
    #[error("{0}")]
    Unavailable(Failure),
    /// A backup could not be made or restored (the message names the file).
    #[error("{0}")]
    Backup(String),
    /// Another process holds the database.
    #[error(
        "the data directory {0} is in use by another tidings service; stop it or pass another --data-dir"
    )]
    Locked(String),
}

/// What removing a user took away.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Removed {
    /// Their notifications (deleted ones too).
    pub notifications: u64,
    /// Their devices (revoked ones too).
    pub devices: u64,
}

/// What one user keeps in the store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Notifications kept (deleted ones too, until they expire).
    pub notifications: u64,
    /// Their size: with sled, their text and data
    /// ([`crate::protocol::NotificationContent::size`]); with PostgreSQL, their
    /// encoded rows (a few dozen bytes more each).
    pub bytes: u64,
}

/// A change to a user's feed that became durable.
#[derive(Clone, Debug)]
pub struct Committed {
    /// Whose feed.
    pub user: UserId,
    /// Its feed position.
    pub seq: Seq,
    /// The notification's new state.
    pub notification: Notification,
}

impl Committed {
    /// `record`'s latest change, to `user`'s feed.
    pub(crate) fn of(user: &UserId, record: &NotificationRecord) -> Self {
        Self {
            user: user.clone(),
            seq: record.seq,
            notification: record.to_notification(),
        }
    }
}

/// Called with each group of durable changes, per user in `seq` order.
pub type Publish = Arc<dyn Fn(Vec<Committed>) + Send + Sync>;

/// Called by a recovery that reopened the store with each user's last `seq`: every
/// channel must resync from its cursor.
pub type Reseed = Box<dyn FnOnce(HashMap<UserId, Seq>) + Send>;

/// Told of a duration: how long a commit took, how late a notification arrived.
pub type TimeHook = Box<dyn Fn(Duration) + Send + Sync>;

/// Told that something happened (counted).
pub type CountHook = Box<dyn Fn() + Send + Sync>;

/// Told of a device another node revoked.
pub type RevokeHook = Box<dyn Fn(&DeviceId) + Send + Sync>;

/// Asked whether a user's changes up to a `seq`, committed by another node, may go
/// unread: true (and the user's feed counted as published up to there) when no channel
/// of this node watches that user, whose devices will read them from the store.
pub type PassHook = Box<dyn Fn(&UserId, Seq) -> bool + Send + Sync>;

/// A change as stored (a post, a state change or a delete): the notification as it
/// now is, and the feed position of the change.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The notification as stored (a tombstone after a delete).
    pub notification: Notification,
    /// The change's feed position.
    pub seq: Seq,
}

/// One page of a feed scan.
#[derive(Debug, Default)]
pub struct FeedScan {
    /// Current records whose latest change lies in the scanned range, in `seq` order.
    pub records: Vec<NotificationRecord>,
    /// The last `seq` scanned; continue from here.
    pub last_scanned: Option<Seq>,
}

/// The service's store, whichever the backend. Shared as `Arc<dyn Store>`.
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    /// What the store is, for logs and `tidings config` ("sled in DIR", "PostgreSQL at
    /// HOST/DB").
    fn describe(&self) -> String;

    /// The sled store, for what only it can do (backups, the disk reserve).
    fn as_sled(&self) -> Option<&SledStore> {
        None
    }

    // --- health ---

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
    /// Tells `revoked` of each device another node revoked (a shared store only), so
    /// this node closes its channels too.
    fn on_remote_revoke(&self, _revoked: RevokeHook) {}
    /// Lets `pass` spare this node reading other nodes' changes of users it has no
    /// channel for (a shared store only).
    fn on_unwatched(&self, _pass: PassHook) {}
    /// Bytes the store takes (on disk, or the database's size).
    async fn size(&self) -> Result<u64, StoreError>;

    // --- feed positions and keys ---

    /// The last `seq` of every user's feed that was published: the hub's starting point.
    async fn last_seqs(&self) -> Result<HashMap<UserId, Seq>, StoreError>;
    /// `user`'s last published `seq`.
    fn durable_seq(&self, user: &UserId) -> Seq;
    /// What `user` keeps: notifications (deleted ones too, until they expire) and
    /// their size, for the user's quota.
    async fn usage(&self, user: &UserId) -> Result<Usage, StoreError>;
    /// The key that signs access tokens, made on first use (from `fresh`) and kept.
    async fn token_key(&self, fresh: [u8; 32]) -> Result<Vec<u8>, StoreError>;

    // --- users and apps ---

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

    // --- devices ---

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

    // --- subscriptions ---

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

    // --- notifications and the feed ---

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

/// A post's version of a notification at `seq`: new, or replacing `old` (the one with
/// the same `appNotificationId`) in place: same id and creation time, new content,
/// fresh state.
pub(crate) fn posted(
    old: Option<&NotificationRecord>,
    seq: Seq,
    content: NotificationContent,
    now: Timestamp,
) -> NotificationRecord {
    NotificationRecord {
        seq,
        id: old.map_or_else(NotificationId::random, |o| o.id.clone()),
        content,
        created: old.map_or(now, |o| o.created),
        modified: now,
        state: crate::protocol::UserState::FRESH,
    }
}

/// `old` with its state changed by `edit`, at `seq`.
pub(crate) fn changed(
    old: &NotificationRecord,
    seq: Seq,
    now: Timestamp,
    edit: impl Fn(&mut crate::protocol::UserState),
) -> NotificationRecord {
    let mut state = old.state;
    edit(&mut state);
    NotificationRecord {
        seq,
        modified: now,
        state,
        ..old.clone()
    }
}

/// Whether a record is live: not deleted and not expired.
pub(crate) fn is_live(record: &NotificationRecord, now: Timestamp) -> bool {
    record.state.status == crate::protocol::Status::Active
        && record.content.expiration_date_time > now
}
