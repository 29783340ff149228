//! The service's persistence: one sled database behind a narrow, backend-neutral API.
//!
//! Routes, the hub and the admin handler only see the methods of [`Store`], in domain
//! terms (users, devices, notifications, feed pages); nothing outside this module names
//! sled. A second backend would turn `Store` into a trait with the same methods.
//!
//! Trees: `users` (name → user), `users_by_id`, `apps` (client id → app), `devices`,
//! `subs` (UNSID → subscription), `subs_by_device`, `meta`, and `notifications`: each
//! notification record (which carries its `seq`) plus each user's `seq` floor. The
//! feed, `appNotificationId` and expiry indexes are derived from the records and kept
//! in memory (`index`), so one change is one sled insert.
//!
//! Durability: every write that a caller is answered for goes through the group
//! committer (`commit`): applied in memory, then one shared flush, then published.

mod accounts;
mod commit;
mod index;
mod keys;
mod notes;
pub mod records;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use sled::Tree;

pub use commit::{Committed, Publish};
pub use notes::{FeedScan, Upserted};
pub use records::{AppRecord, DeviceRecord, NotificationRecord, SubscriptionRecord, UserRecord};

use crate::protocol::{Seq, UserId};
use commit::Committer;

/// Errors of the store. Conflicts are reported as [`StoreError::Conflict`]; everything
/// else is a fault of the disk or the data, not of the request.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed (I/O, or the database is locked by another process).
    #[error("store I/O error: {0}")]
    Sled(#[from] sled::Error),
    /// A value could not be encoded or decoded.
    #[error(transparent)]
    Record(#[from] crate::protocol::stored::RecordError),
    /// A stored value is not what this build expects.
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The write conflicts with what is stored (e.g. the user name is taken).
    #[error("{0}")]
    Conflict(String),
    /// The flush that makes a write durable failed, or the store is closed.
    #[error("{0}")]
    Commit(String),
    /// Another process holds the database.
    #[error(
        "the data directory {0} is in use by another tidings service; stop it or pass another --data-dir"
    )]
    Locked(String),
}

impl<E: Into<StoreError>> From<sled::transaction::TransactionError<E>> for StoreError {
    fn from(err: sled::transaction::TransactionError<E>) -> Self {
        match err {
            sled::transaction::TransactionError::Abort(e) => e.into(),
            sled::transaction::TransactionError::Storage(e) => StoreError::Sled(e),
        }
    }
}

/// The sled trees, opened once.
#[derive(Clone)]
struct Trees {
    users: Tree,
    users_by_id: Tree,
    apps: Tree,
    devices: Tree,
    subs: Tree,
    subs_by_device: Tree,
    notifications: Tree,
    meta: Tree,
}

impl Trees {
    fn open(db: &sled::Db) -> Result<Self, StoreError> {
        Ok(Self {
            users: db.open_tree("users")?,
            users_by_id: db.open_tree("users_by_id")?,
            apps: db.open_tree("apps")?,
            devices: db.open_tree("devices")?,
            subs: db.open_tree("subs")?,
            subs_by_device: db.open_tree("subs_by_device")?,
            notifications: db.open_tree("notifications")?,
            meta: db.open_tree("meta")?,
        })
    }
}

/// The service store. Cheap to share behind an `Arc`.
pub struct Store {
    db: sled::Db,
    trees: Trees,
    /// The in-memory indexes; the lock also serialises notification writes so that
    /// `seq` order is commit-queue order.
    index: Mutex<index::Index>,
    committer: Committer,
}

impl Store {
    /// Opens (or creates) the store in `dir` with a page cache of `cache_bytes`, and
    /// starts its group committer, which calls `publish` with every durable change.
    pub fn open(dir: &Path, cache_bytes: u64, publish: Publish) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir.join("db"))
            .cache_capacity(cache_bytes)
            .open()
            .map_err(|e| match e {
                sled::Error::Io(io) if is_lock_error(&io) => {
                    StoreError::Locked(dir.display().to_string())
                }
                other => StoreError::Sled(other),
            })?;
        let trees = Trees::open(&db)?;
        let index = rebuild_index(&trees.notifications)?;
        let committer = Committer::start(db.clone(), publish)
            .map_err(|e| StoreError::Commit(format!("cannot start the commit thread: {e}")))?;
        Ok(Self {
            db,
            trees,
            index: Mutex::new(index),
            committer,
        })
    }

    /// Makes everything written so far durable.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_async().await?;
        Ok(())
    }

    /// Waits until everything written so far is durable, through the group committer.
    async fn commit_nothing(&self) -> Result<(), StoreError> {
        self.committer
            .commit(Vec::new())
            .await
            .map_err(StoreError::Commit)
    }

    /// The last `seq` of every user's feed: the hub's starting point.
    pub fn last_seqs(&self) -> HashMap<UserId, Seq> {
        self.lock().last_seqs()
    }

    /// The key that signs access tokens, made on first use and kept.
    pub fn token_key(&self, fresh: [u8; 32]) -> Result<Vec<u8>, StoreError> {
        let key = b"token_key";
        let _ = self
            .trees
            .meta
            .compare_and_swap(key, None as Option<&[u8]>, Some(&fresh[..]))?;
        self.trees
            .meta
            .get(key)?
            .map(|v| v.to_vec())
            .ok_or_else(|| StoreError::Corrupt("token key missing".to_owned()))
    }

    /// Bytes the database takes on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }
}

/// Rebuilds the indexes from the stored records and the `seq` floors left by purges.
fn rebuild_index(tree: &Tree) -> Result<index::Index, StoreError> {
    let mut index = index::Index::default();
    for entry in tree.scan_prefix([keys::NOTE]) {
        let (key, value) = entry?;
        let user = keys::note_user(&key)
            .ok_or_else(|| StoreError::Corrupt("short notification key".to_owned()))?;
        let record: NotificationRecord = records::decode(&value)?;
        index.put(&user, None, &record);
    }
    for entry in tree.scan_prefix([keys::SEQ]) {
        let (key, value) = entry?;
        let user =
            keys::seq_user(&key).ok_or_else(|| StoreError::Corrupt("short seq key".to_owned()))?;
        index.raise_seq(&user, Seq(be_u64(&value)?));
    }
    Ok(index)
}

/// sled reports a held lock as a custom I/O error wrapping `WouldBlock`.
fn is_lock_error(err: &std::io::Error) -> bool {
    err.kind() == std::io::ErrorKind::WouldBlock
        || err.to_string().contains("could not acquire lock")
}

/// Reads a big-endian u64 value.
fn be_u64(bytes: &[u8]) -> Result<u64, StoreError> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("a counter is not 8 bytes".to_owned()))?;
    Ok(u64::from_be_bytes(array))
}
