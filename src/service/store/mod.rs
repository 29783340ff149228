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
mod traits;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub use self::postgres::{LOCK_PURGE, PgConfig, PgStore};
pub use self::sled::{BackupSummary, SledStore};
pub use health::Failure;
pub use records::{
    AppRecord, DeviceRecord, NotificationRecord, RefreshRecord, SubscriptionRecord, UserRecord,
};
pub use traits::{Accounts, Devices, Lifecycle, Notes, Store, Subscriptions};

use crate::protocol::{
    DeviceId, Notification, NotificationContent, NotificationId, Seq, Timestamp, UserId,
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

/// Where a store runs its own tasks (the PostgreSQL listener, its batch lanes, the ack
/// writer): the service's tracker for them, and a token the service cancels last, after
/// its final flush, so that writes still in flight at shutdown are committed first.
/// `service::run` stops and waits for them as the agent does its tasks.
#[derive(Clone, Debug, Default)]
pub struct StoreTasks {
    /// The store's tasks, waited for at shutdown.
    pub tracker: tokio_util::task::TaskTracker,
    /// Cancelled once the service has stopped and flushed.
    pub stop: tokio_util::sync::CancellationToken,
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
