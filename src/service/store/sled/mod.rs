//! The embedded store: one sled database in the data directory, for one service node.
//!
//! Trees: `users` (name → user), `users_by_id`, `apps` (client id → app), `devices`,
//! `refresh` (device → refresh-token history), `subs` (UNSID → subscription),
//! `subs_by_device`, `meta`, and `notifications`: each
//! notification record (which carries its `seq`) plus each user's `seq` floor. The
//! feed, `appNotificationId` and expiry indexes are derived from the records and kept
//! in memory (`index`), so one change is one sled insert.
//!
//! Durability: every write that a caller is answered for goes through the group
//! committer (`commit`): applied in memory, then one shared flush, then published.
//! Reads never go past what is on disk: the feed stops at each user's durable `seq`,
//! and a notification whose latest version is not yet flushed is read after the flush.
//! A failed flush fails the store for writes until `Lifecycle::recover` reopens it
//! (`health`).
//!
//! Each of the store's traits is implemented in its own file (`lifecycle.rs`,
//! `accounts.rs`, `devices.rs`, `subscriptions.rs`, `notes.rs`); a few things (backup,
//! restore, the disk reserve) exist only here.

mod accounts;
mod backup;
mod commit;
mod devices;
mod error;
mod index;
mod keys;
mod lifecycle;
mod notes;
mod reserve;
mod subscriptions;
#[cfg(test)]
mod tests;
mod undo;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use sled::Tree;

pub use backup::BackupSummary;

use super::health::{self, Failure, Health};
use super::records::{self, NotificationRecord};
use super::{Committed, FeedScan, Publish, Reseed, StoreError, Stored, changed, is_live, posted};
use crate::protocol::{Seq, UserId};
use crate::sync::{self, lock};
use commit::{Committer, Context};

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
    refresh: Tree,
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
            refresh: db.open_tree("refresh")?,
        })
    }
}

/// An open database with its trees and its committer thread.
struct Open {
    db: sled::Db,
    trees: Trees,
    committer: Committer,
}

/// Each user's last durable `seq`, shared with the publish path.
type Marks = Arc<Mutex<HashMap<UserId, Seq>>>;

/// The sled store. Cheap to share behind an `Arc`.
pub struct SledStore {
    dir: PathBuf,
    cache_bytes: u64,
    /// The caller's publish callback, behind the durable marks.
    publish: Publish,
    /// The database; `None` only while it is being reopened.
    open: RwLock<Option<Arc<Open>>>,
    /// The in-memory indexes; the lock also serialises notification writes so that
    /// `seq` order is commit-queue order.
    index: Mutex<index::Index>,
    health: Arc<Health>,
    /// Each user's last `seq` known to be on disk: reads never go past it.
    durable: Marks,
    flush_hooks: Arc<commit::FlushHooks>,
    /// The writes answered with an error since the last reopen, to take back.
    refused: Arc<undo::Refused>,
    reserve: Mutex<reserve::Reserve>,
    /// Whether a recovery task replaces failed handles (reads wait for it).
    recovering: AtomicBool,
}

impl SledStore {
    /// Opens (or creates) the store in `dir` with a page cache of `cache_bytes`, and
    /// starts its group committer, which calls `publish` with every durable change.
    pub fn open(dir: &Path, cache_bytes: u64, publish: Publish) -> Result<Self, StoreError> {
        backup::remove_unfinished_restores(dir);
        let health = Arc::new(Health::default());
        let durable: Marks = Arc::default();
        let marks = durable.clone();
        let publish: Publish = Arc::new(move |changes: Vec<Committed>| {
            {
                let mut marks = lock(&marks);
                for change in &changes {
                    marks.insert(change.user.clone(), change.seq);
                }
            }
            publish(changes);
        });
        let store = Self {
            dir: dir.to_owned(),
            cache_bytes,
            publish,
            open: RwLock::new(None),
            index: Mutex::new(index::Index::default()),
            health,
            durable,
            flush_hooks: Arc::default(),
            refused: Arc::default(),
            reserve: Mutex::new(reserve::Reserve::new(dir, 0)),
            recovering: AtomicBool::new(false),
        };
        let (backend, index) = match store.load() {
            Err(e) if disk_full(&e) => store.load_on_a_full_disk(&e)?,
            other => other?,
        };
        *store.lock() = index;
        *sync::write(&store.open) = Some(Arc::new(backend));
        Ok(store)
    }

    /// Opens the database, sets the durable marks from what is on disk, starts the
    /// committer, and returns the database and the rebuilt indexes for the caller to put
    /// in place (it holds their locks). Called with no database open.
    fn load(&self) -> Result<(Open, index::Index), StoreError> {
        // Writes are flushed by the group committer (and the token key at once); what is
        // written without a flush of its own (last contact, acked cursors, purges)
        // reaches the disk with the next one.
        let db =
            crate::embedded::open(&self.dir.join("db"), self.cache_bytes).map_err(|e| match e {
                crate::embedded::OpenError::Locked => {
                    StoreError::Locked(self.dir.display().to_string())
                }
                crate::embedded::OpenError::Sled(e) => e.into(),
            })?;
        let trees = Trees::open(&db)?;
        undo::take_back(&db, &trees.notifications, &self.refused)?;
        let rebuilt = rebuild_index(&trees.notifications)?;
        *lock(&self.durable) = rebuilt.last_seqs();
        let committer = Committer::start(Context {
            db: db.clone(),
            publish: self.publish.clone(),
            health: self.health.clone(),
            refused: self.refused.clone(),
            hooks: self.flush_hooks.clone(),
        })
        .map_err(|e| StoreError::Commit(format!("cannot start the commit thread: {e}")))?;
        Ok((
            Open {
                db,
                trees,
                committer,
            },
            rebuilt,
        ))
    }

    /// Opens the store on a disk too full for sled to open it (the service stopped or
    /// killed while the disk was full): frees the reserve, opens it for reads, and
    /// starts failed, so writes are refused until the recovery finds room again, as
    /// when the disk fills under a running service. A restart into a full disk would
    /// otherwise fail in a loop.
    fn load_on_a_full_disk(&self, error: &StoreError) -> Result<(Open, index::Index), StoreError> {
        tracing::warn!(%error, "the disk is full: freeing the store's reserve to open it");
        // The reserve's size is not known before the settings give it; its file is.
        lock(&self.reserve).release();
        let opened = self.load()?;
        self.start_full(format!(
            "the disk was full when the store was opened: {error}"
        ));
        Ok(opened)
    }

    /// Marks the freshly opened store failed by a full disk: reads go on, writes are
    /// refused until the recovery can write the reserve again.
    fn start_full(&self, message: String) {
        self.health.fail(Failure {
            disk_full: true,
            message,
            since: crate::protocol::Timestamp::now(),
        });
        self.health.handle_replaced();
    }

    /// The open database, or why there is none.
    ///
    /// sled fails reads on a handle whose flush failed. While a recovery task runs
    /// ([`Self::recovery_runs`]) it replaces that handle at once, so a read waits for that
    /// (bounded by [`REOPEN_WAIT`]) rather than fail.
    fn backend(&self) -> Result<Arc<Open>, StoreError> {
        if self.recovering.load(Ordering::SeqCst) {
            let deadline = Instant::now() + REOPEN_WAIT;
            while self.health.handle_broken() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        sync::read(&self.open).clone().ok_or_else(|| {
            StoreError::Unavailable(
                self.health
                    .failure()
                    .unwrap_or_else(|| Failure::other("the store is being reopened")),
            )
        })
    }

    /// Keeps `bytes` of the disk in reserve for a recovery from a full disk
    /// (`reserve.rs`), writing the reserve now if it is missing.
    ///
    /// On a full disk the store starts failed (reads only) and the recovery writes the
    /// reserve once there is room.
    pub fn keep_reserve(&self, bytes: u64) -> Result<(), StoreError> {
        let reserve = reserve::Reserve::new(&self.dir, bytes);
        *lock(&self.reserve) = reserve.clone();
        match reserve.fill() {
            Ok(()) => Ok(()),
            Err(e) if health::is_disk_full(&e) => {
                self.start_full(format!(
                    "the disk is full: cannot write the {bytes}-byte reserve in {}: {e}",
                    self.dir.display()
                ));
                Ok(())
            }
            Err(e) => Err(StoreError::Commit(format!(
                "cannot write the {bytes}-byte reserve in {}: {e}; free some disk space",
                self.dir.display()
            ))),
        }
    }

    /// Refuses a write while the store is failed.
    fn writable(&self) -> Result<(), StoreError> {
        match self.health.failure() {
            Some(failure) => Err(StoreError::Unavailable(failure)),
            None => Ok(()),
        }
    }

    /// A write the database refused: an I/O error fails the store like a failed flush.
    fn failed_write(&self, error: sled::Error) -> StoreError {
        if error::is_io(&error) {
            let failure = error::failure(&error);
            self.health.fail(failure.clone());
            return StoreError::Unavailable(failure);
        }
        error.into()
    }

    /// Makes every flush fail while `on` (to exercise the failure path in tests).
    #[doc(hidden)]
    pub fn fail_flushes(&self, on: bool) {
        self.flush_hooks.fail.store(on, Ordering::SeqCst);
    }

    /// Closes the database and opens it again from disk (see `Lifecycle::recover`).
    /// Readers wait for it (they hold the database for one call only).
    fn reopen(&self, reseed: Reseed) -> Result<(), StoreError> {
        let mut writers = self.lock();
        let mut open = sync::write(&self.open);
        if let Some(old) = open.take() {
            close(old);
        }
        let (backend, index) = self.load()?;
        *open = Some(Arc::new(backend));
        *writers = index;
        reseed(writers.last_seqs());
        Ok(())
    }

    /// Waits until everything written so far is durable, through the group committer.
    async fn barrier(&self) -> Result<(), StoreError> {
        self.backend()?
            .committer
            .commit(Vec::new())
            .await
            .map_err(StoreError::Unavailable)
    }
}

/// How long a read waits for a failed handle to be replaced.
const REOPEN_WAIT: Duration = Duration::from_secs(2);

/// Closes a database once no reader holds it any more (they hold it for one call).
fn close(mut open: Arc<Open>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Arc::try_unwrap(open) {
            Ok(open) => {
                drop(open);
                return;
            }
            Err(shared) if Instant::now() < deadline => {
                open = shared;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => {
                tracing::warn!("the old store is still in use; reopening regardless");
                return;
            }
        }
    }
}

/// Whether `error` is the disk being full.
fn disk_full(error: &StoreError) -> bool {
    matches!(error, StoreError::Io(io) if health::is_disk_full(io))
}

/// Whether the data directory takes a write again: 1 MiB written, synced and removed.
fn probe_disk(dir: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let path = dir.join(".write-probe");
    let result = std::fs::File::create(&path).and_then(|mut file| {
        file.write_all(&vec![0; 1 << 20])?;
        file.sync_all()
    });
    let _ = std::fs::remove_file(&path);
    result
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

/// Reads a big-endian u64 value.
fn be_u64(bytes: &[u8]) -> Result<u64, StoreError> {
    Ok(crate::protocol::stored::be_u64(bytes)?)
}
