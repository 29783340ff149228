//! The agent's local cache: one sled database per user and device.
//!
//! One tree, `cache`, with keys told apart by their first byte:
//! `N` + id → the notification record (versioned postcard, carries its `seq`);
//! `Q` + seq → id, the history order; `O` + n → the outbox (`outbox.rs`);
//! `S` + host → this device's subscription to that app; `E` + expiry + seq → id, the
//! expiry order (so retention never reads every record);
//! `M` + name → meta (the cursor, the outbox counter); `K` + UNSID → that subscription's
//! keys (`keys.rs`).
//!
//! Changes are applied in groups ([`AgentStore::apply`]): every change of the group in
//! one atomic batch together with the new cursor, then one flush; only then may the
//! caller ack the cursor. A change whose `seq` is not newer than what is stored for its
//! id changes nothing, so replays after a reconnect or a crash are harmless.

mod dnd;
mod keys;
mod outbox;
mod paused;
mod query;
mod resync;
mod retention;
mod tally;

use std::collections::HashMap;
use std::path::Path;

use sled::{Batch, Tree};

use crate::protocol::stored::{NotificationRecord, RecordError, decode, encode};
use crate::protocol::{Notification, NotificationId, Seq, Timestamp};

use crate::protocol::rest::Subscription;

const NOTE: u8 = b'N';
pub(super) const BY_SEQ: u8 = b'Q';
const SUBSCRIPTION: u8 = b'S';
pub(super) const EXPIRY: u8 = b'E';
const CURSOR: &[u8] = b"Mcursor";
/// How many notifications are stored (kept with every change, so retention need not
/// count them).
pub(super) const COUNT: &[u8] = b"Mcount";

/// Errors of the agent's store.
#[derive(Debug, thiserror::Error)]
pub enum AgentStoreError {
    /// Another agent holds the store.
    #[error(
        "another tidings agent is already running for this user (its store {0} is locked); stop it first"
    )]
    AlreadyRunning(String),
    /// sled failed.
    #[error("agent store I/O error: {0}")]
    Sled(#[from] sled::Error),
    /// A stored value could not be read.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// A stored value is malformed.
    #[error("corrupt agent store: {0}")]
    Corrupt(String),
    /// New keys could not be made (no randomness from the system).
    #[error("making a subscription's keys: {0}")]
    Keys(#[from] crate::protocol::sealed::SealError),
    /// Flushing failed.
    #[error("agent store I/O error: {0}")]
    Flush(#[from] crate::embedded::FlushError),
}

/// What applying one change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// A notification seen for the first time.
    Created(NotificationRecord),
    /// A newer version of a known notification (replace, state change or delete).
    Updated(NotificationRecord),
}

pub use outbox::{LocalChange, OutboxEntry};
pub use query::{Filter, Page};
pub use tally::Tally;

/// The store. Open it once per process and share it (behind an `Arc`).
pub struct AgentStore {
    db: sled::Db,
    cache: Tree,
    /// Held by every read-modify-write of records and counters (apply, local changes,
    /// purge) up to its batch, never across an await.
    write: std::sync::Mutex<()>,
}

/// The agent keeps its subscriptions as the service answered them.
impl crate::protocol::stored::Versioned for Subscription {}

fn note_key(id: &NotificationId) -> Vec<u8> {
    let mut key = vec![NOTE];
    key.extend_from_slice(id.as_str().as_bytes());
    key
}

fn seq_key(seq: Seq) -> [u8; 9] {
    let mut key = [BY_SEQ; 9];
    key[1..].copy_from_slice(&seq.0.to_be_bytes());
    key
}

/// `E` + expiry + seq → id: the notifications in expiry order, for a cheap purge.
pub(super) fn expiry_key(at: Timestamp, seq: Seq) -> [u8; 17] {
    let mut key = [EXPIRY; 17];
    key[1..9].copy_from_slice(&(at.as_millis().cast_unsigned() ^ (1 << 63)).to_be_bytes());
    key[9..].copy_from_slice(&seq.0.to_be_bytes());
    key
}

fn u64_of(bytes: &[u8]) -> Result<u64, AgentStoreError> {
    Ok(crate::protocol::stored::be_u64(bytes)?)
}

impl AgentStore {
    /// Opens (or creates) the store in `dir`, with a page cache of `cache_bytes`.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Self, AgentStoreError> {
        let db = crate::embedded::open(dir, cache_bytes).map_err(|e| match e {
            crate::embedded::OpenError::Locked => {
                AgentStoreError::AlreadyRunning(dir.display().to_string())
            }
            crate::embedded::OpenError::Sled(e) => AgentStoreError::Sled(e),
        })?;
        let cache = db.open_tree("cache")?;
        Ok(Self {
            db,
            cache,
            write: std::sync::Mutex::new(()),
        })
    }

    /// The highest `seq` durably applied: where the channel resumes.
    pub fn cursor(&self) -> Result<Seq, AgentStoreError> {
        Ok(Seq(self
            .cache
            .get(CURSOR)?
            .map(|v| u64_of(&v))
            .transpose()?
            .unwrap_or(0)))
    }

    /// The stored record of a notification.
    pub fn get(&self, id: &NotificationId) -> Result<Option<NotificationRecord>, AgentStoreError> {
        Ok(self
            .cache
            .get(note_key(id))?
            .map(|v| decode(&v))
            .transpose()?)
    }

    /// Applies a group of changes received in `seq` order, moves the cursor to the last
    /// of them and makes it all durable. Returns what changed (stale changes are left
    /// out) and the new cursor, which the caller may now ack.
    pub async fn apply(
        &self,
        changes: Vec<(Seq, Notification)>,
    ) -> Result<(Vec<Applied>, Seq), AgentStoreError> {
        let outcome = self.write_group(changes)?;
        self.flush().await?;
        Ok(outcome)
    }

    /// The synchronous part of [`Self::apply`]: one batch, under the write lock.
    fn write_group(
        &self,
        changes: Vec<(Seq, Notification)>,
    ) -> Result<(Vec<Applied>, Seq), AgentStoreError> {
        let _write = self.lock();
        let mut cursor = self.cursor()?;
        let mut tally = tally::Delta::default();
        // The record each id has now, counting this group's earlier changes.
        let mut latest: HashMap<NotificationId, NotificationRecord> = HashMap::new();
        let pending = self.pending_by_id()?;
        let mut batch = Batch::default();
        let mut applied = Vec::new();
        for (seq, notification) in changes {
            cursor = cursor.max(seq);
            let stored = match latest.remove(&notification.id) {
                Some(old) => Some(old),
                None => self.get(&notification.id)?,
            };
            if let Some(old) = stored.as_ref().filter(|old| old.seq >= seq) {
                latest.insert(old.id.clone(), old.clone());
                continue;
            }
            if let Some(old) = &stored {
                batch.remove(&seq_key(old.seq));
                batch.remove(&expiry_key(old.content.expiration_date_time, old.seq));
            }
            let mut record = NotificationRecord::new(seq, notification);
            // What the user did here and the service has not confirmed yet stays done.
            for change in pending.get(&record.id).into_iter().flatten() {
                change.apply_to(&mut record.state);
            }
            batch.insert(note_key(&record.id), encode(&record)?);
            batch.insert(&seq_key(seq), record.id.as_str().as_bytes());
            let expires = record.content.expiration_date_time;
            batch.insert(&expiry_key(expires, seq), record.id.as_str().as_bytes());
            latest.insert(record.id.clone(), record.clone());
            tally.replace(stored.as_ref(), Some(&record));
            match stored {
                None => applied.push(Applied::Created(record)),
                // The service echoing a change this device made (or any change that
                // leaves content and state as they are) moves the seq, nothing else.
                Some(old) if old.content == record.content && old.state == record.state => {}
                Some(_) => applied.push(Applied::Updated(record)),
            }
        }
        let created = applied
            .iter()
            .filter(|a| matches!(a, Applied::Created(_)))
            .count();
        let count = self.count()? + u64::try_from(created).unwrap_or(u64::MAX);
        batch.insert(COUNT, &count.to_be_bytes());
        batch.insert(CURSOR, &cursor.0.to_be_bytes());
        self.put_tally(&mut batch, tally)?;
        self.cache.apply_batch(batch)?;
        Ok((applied, cursor))
    }

    /// The write lock (see the field).
    /// Makes every change so far durable (after each write that must last, and at
    /// shutdown).
    pub async fn flush(&self) -> Result<(), AgentStoreError> {
        Ok(crate::embedded::flush(&self.db).await?)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        crate::sync::lock(&self.write)
    }

    fn pending_by_id(&self) -> Result<HashMap<NotificationId, Vec<LocalChange>>, AgentStoreError> {
        let mut pending: HashMap<NotificationId, Vec<LocalChange>> = HashMap::new();
        for entry in self.outbox()? {
            pending.entry(entry.id).or_default().push(entry.change);
        }
        Ok(pending)
    }

    /// Keeps (or replaces) this device's subscription to its host. A subscription it
    /// replaces under another UNSID has ended: its keys are destroyed with it.
    pub async fn save_subscription(&self, sub: &Subscription) -> Result<(), AgentStoreError> {
        let mut key = vec![SUBSCRIPTION];
        key.extend_from_slice(sub.target_host_name.as_bytes());
        let before = self.cache.insert(key, encode(sub)?)?;
        if let Some(old) = before.map(|v| decode::<Subscription>(&v)).transpose()?
            && old.unsid != sub.unsid
        {
            self.forget_keys(&old.unsid)?;
        }
        self.flush().await?;
        Ok(())
    }

    /// This device's subscriptions, by host.
    pub fn subscriptions(&self) -> Result<Vec<Subscription>, AgentStoreError> {
        self.cache
            .scan_prefix([SUBSCRIPTION])
            .map(|entry| Ok(decode(&entry?.1)?))
            .collect()
    }

    /// How many notifications are stored, from the kept counter (counted once for a
    /// store written before the counter existed).
    pub fn count(&self) -> Result<u64, AgentStoreError> {
        match self.cache.get(COUNT)? {
            Some(v) => u64_of(&v),
            None => Ok(u64::try_from(self.len()).unwrap_or(u64::MAX)),
        }
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.cache.scan_prefix([BY_SEQ]).next().is_none()
    }
}

#[cfg(test)]
mod tests;
