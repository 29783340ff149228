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
//! A failed flush fails the store for writes until [`SledStore::recover`] reopens it
//! (`health`).
//!
//! The methods here are the sled side of the [`super::Store`] seam (`seam.rs` maps one
//! onto the other); a few (backup, restore, the disk reserve) exist only here.

mod accounts;
mod backup;
mod commit;
mod error;
mod index;
mod keys;
mod notes;
mod owned;
mod refresh;
mod remove;
mod reserve;
mod seam;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use sled::Tree;

pub use backup::BackupSummary;

use super::health::{self, Failure, Health};
use super::records::{self, NotificationRecord};
use super::{Committed, FeedScan, Publish, Removed, StoreError, Stored, changed, is_live, posted};
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
            reserve: Mutex::new(reserve::Reserve::new(dir, 0)),
            recovering: AtomicBool::new(false),
        };
        let (backend, index) = store.load()?;
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
        let rebuilt = rebuild_index(&trees.notifications)?;
        *lock(&self.durable) = rebuilt.last_seqs();
        let committer = Committer::start(Context {
            db: db.clone(),
            publish: self.publish.clone(),
            health: self.health.clone(),
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
                self.failure()
                    .unwrap_or_else(|| Failure::other("the store is being reopened")),
            )
        })
    }

    /// Says that a recovery task runs (`service::recovery`): reads then wait for a failed
    /// handle to be replaced instead of failing.
    pub fn recovery_runs(&self) {
        self.recovering.store(true, Ordering::SeqCst);
    }

    /// Keeps `bytes` of the disk in reserve for a recovery from a full disk
    /// (`reserve.rs`), writing the reserve now if it is missing.
    pub fn keep_reserve(&self, bytes: u64) -> Result<(), StoreError> {
        let reserve = reserve::Reserve::new(&self.dir, bytes);
        reserve.fill().map_err(|e| {
            StoreError::Commit(format!(
                "cannot write the {bytes}-byte reserve in {}: {e}; free some disk space",
                self.dir.display()
            ))
        })?;
        *lock(&self.reserve) = reserve;
        Ok(())
    }

    /// Why the store takes no writes, if it does not.
    pub fn failure(&self) -> Option<Failure> {
        self.health.failure()
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

    /// `user`'s last `seq` known to be on disk.
    pub fn durable_seq(&self, user: &UserId) -> Seq {
        lock(&self.durable).get(user).copied().unwrap_or(Seq::ZERO)
    }

    /// Tells `observe` how long each successful flush takes (once; later calls are
    /// ignored).
    pub fn on_flush(&self, observe: impl Fn(Duration) + Send + Sync + 'static) {
        let _ = self.flush_hooks.observer.set(Box::new(observe));
    }

    /// Makes every flush fail while `on` (to exercise the failure path in tests).
    #[doc(hidden)]
    pub fn fail_flushes(&self, on: bool) {
        self.flush_hooks.fail.store(on, Ordering::SeqCst);
    }

    /// Recovers a failed store in two steps. First, at once, the failed database handle
    /// (which sled then fails reads on too) is replaced by one opened afresh from disk:
    /// the indexes and durable marks are rebuilt and `reseed` is called with every
    /// user's last `seq` while no write can run (the hub takes them and closes every
    /// channel, so each device resyncs from its cursor: a change answered with an error
    /// may have reached the disk after all, unpublished). Then, once the disk takes a
    /// write again, writes are accepted. Returns whether writes are accepted again.
    /// Blocking: call it off the async runtime.
    pub fn recover(&self, reseed: impl FnOnce(HashMap<UserId, Seq>)) -> Result<bool, StoreError> {
        if self.health.failure().is_none() {
            return Ok(false);
        }
        let reserve = lock(&self.reserve).clone();
        if self.health.handle_broken() {
            // Room for the reopen (sled writes as it opens).
            reserve.release();
            self.reopen(reseed)?;
            self.health.handle_replaced();
            tracing::warn!(
                "store reopened for reads; writes stay refused until the disk takes them"
            );
        }
        if let Err(e) = probe_disk(&self.dir).and_then(|()| reserve.fill()) {
            tracing::debug!(error = %e, "the disk still takes no writes");
            return Ok(false);
        }
        self.health.clear();
        tracing::info!("the disk takes writes again; the store accepts them");
        Ok(true)
    }

    /// Closes the database and opens it again from disk (see [`Self::recover`]).
    /// Readers wait for it (they hold the database for one call only).
    fn reopen(&self, reseed: impl FnOnce(HashMap<UserId, Seq>)) -> Result<(), StoreError> {
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

    /// Resolves when the store fails.
    pub async fn wait_failed(&self) {
        self.health.wait_failed().await;
    }

    /// Makes everything written so far durable.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.writable()?;
        crate::embedded::flush(&self.backend()?.db).await?;
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

    /// The last `seq` of every user's feed: the hub's starting point.
    pub fn last_seqs(&self) -> HashMap<UserId, Seq> {
        self.lock().last_seqs()
    }

    /// The key that signs access tokens, made on first use and kept.
    pub fn token_key(&self, fresh: [u8; 32]) -> Result<Vec<u8>, StoreError> {
        let key = b"token_key";
        let backend = self.backend()?;
        let meta = backend.trees.meta.clone();
        if meta
            .compare_and_swap(key, None as Option<&[u8]>, Some(&fresh[..]))?
            .is_ok()
        {
            // A new key: on disk before any token is signed with it.
            backend.db.flush()?;
        }
        meta.get(key)?
            .map(|v| v.to_vec())
            .ok_or_else(|| StoreError::Corrupt("token key missing".to_owned()))
    }

    /// Bytes the database takes on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.backend()?.db.size_on_disk()?)
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
