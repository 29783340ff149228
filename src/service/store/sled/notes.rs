//! [`SledStore`] as [`Notes`]: notifications and the per-user feed: create / replace, state changes, deletes,
//! feed scans and the expiry purge.
//!
//! Every change runs under the write lock (which guards the in-memory [`Index`]):
//! it stamps the user's next `seq`, writes the notification record (which carries the
//! `seq`) with one sled insert, updates the index, and queues itself on the group
//! committer before the lock is released; it returns once the record is durable.

use std::sync::MutexGuard;

use sled::Batch;

use crate::protocol::validate::StatePatch;
use crate::protocol::{
    NotificationContent, NotificationId, Seq, Status, Timestamp, UserId, UserState,
};

use super::super::{Lifecycle, Notes, Usage};
use super::index::Index;
use super::records::{NotificationRecord, decode, encode};
use super::undo::Undo;
use super::{Committed, FeedScan, SledStore, StoreError, Stored, changed, is_live, keys, posted};

type Durable = tokio::sync::oneshot::Receiver<super::commit::Outcome>;

#[async_trait::async_trait]
impl Notes for SledStore {
    async fn usage(&self, user: &UserId) -> Result<Usage, StoreError> {
        let (notifications, bytes) = self.lock().usage(user);
        Ok(Usage {
            notifications,
            bytes,
        })
    }

    /// Stores a new notification, or replaces the one with the same
    /// (user, host, `appNotificationId`) in place: same id, new content, fresh state.
    async fn upsert(
        &self,
        user: &UserId,
        content: NotificationContent,
        now: Timestamp,
    ) -> Result<Stored, StoreError> {
        let (wait, record) = {
            let mut index = self.lock();
            self.writable()?;
            let old = match &content.app_notification_id {
                Some(app_id) => match index.by_app_id(user, &content.target_host_name, app_id) {
                    Some(id) => self.record(user, &id)?,
                    None => None,
                },
                None => None,
            };
            let record = posted(old.as_ref(), index.next_seq(user), content, now);
            let wait = self.write(&mut index, user, old.as_ref(), &record)?;
            (wait, record)
        };
        wait_durable(wait).await?;
        Ok(Stored {
            seq: record.seq,
            notification: record.into_notification(),
        })
    }

    /// Applies a device's state change. `None` when the notification does not exist
    /// (or is deleted or expired).
    async fn update_state(
        &self,
        user: &UserId,
        id: &NotificationId,
        patch: StatePatch,
        now: Timestamp,
    ) -> Result<Option<Stored>, StoreError> {
        self.change(user, id, now, |state| patch.apply_to(state))
            .await
    }

    /// Turns a notification into a tombstone that devices receive as a change.
    async fn delete(
        &self,
        user: &UserId,
        id: &NotificationId,
        now: Timestamp,
    ) -> Result<Option<Stored>, StoreError> {
        self.change(user, id, now, |state| state.status = Status::Deleted)
            .await
    }

    /// Deletes every live notification of `host` in `group` for `user`; returns how many.
    async fn delete_group(
        &self,
        user: &UserId,
        host: &str,
        group: &str,
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        let mut ids = Vec::new();
        let prefix = keys::user_prefix(keys::NOTE, user);
        for entry in self.backend()?.trees.notifications.scan_prefix(prefix) {
            let (_, value) = entry?;
            let record: NotificationRecord = decode(&value)?;
            if record.content.target_host_name == host
                && record.content.group_name.as_deref() == Some(group)
                && is_live(&record, now)
            {
                ids.push(record.id);
            }
        }
        let mut deleted = 0;
        for id in ids {
            if self.delete(user, &id, now).await?.is_some() {
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    /// A live (not deleted, not expired) notification of `user`, as it is on disk: if
    /// its latest version is not flushed yet, this waits for the flush (and fails when
    /// the flush does).
    async fn get(
        &self,
        user: &UserId,
        id: &NotificationId,
        now: Timestamp,
    ) -> Result<Option<NotificationRecord>, StoreError> {
        let mut record = self.record(user, id)?;
        if record
            .as_ref()
            .is_some_and(|r| r.seq > self.durable_seq(user))
        {
            self.barrier().await?;
            record = self.record(user, id)?;
        }
        Ok(record.filter(|r| is_live(r, now)))
    }

    /// Scans `user`'s feed after `after` (and up to `upto`, when given, and never past
    /// the user's durable `seq`), visiting at most `max` entries. Entries whose
    /// notification has changed again since are skipped: the newer change has its own,
    /// later entry.
    async fn feed_scan(
        &self,
        user: &UserId,
        after: Seq,
        upto: Option<Seq>,
        max: usize,
    ) -> Result<FeedScan, StoreError> {
        let durable = self.durable_seq(user);
        let upto = upto.map_or(durable, |upto| upto.min(durable));
        let entries = self.lock().feed_range(user, after, upto, max);
        let mut scan = FeedScan::default();
        for (seq, id) in entries {
            scan.last_scanned = Some(seq);
            if let Some(record) = self.record(user, &id)?
                && record.seq == seq
            {
                scan.records.push(record);
            }
        }
        Ok(scan)
    }

    /// Removes up to `max` notifications that expired by `now`. Each user's last `seq`
    /// is written down with the removal, so feed positions never go back. Returns how
    /// many were removed. Not flushed: a purge lost in a crash is simply redone.
    async fn purge_expired(&self, now: Timestamp, max: usize) -> Result<usize, StoreError> {
        let mut index = self.lock();
        self.writable()?;
        let expired = index.expired(now, max);
        let mut batch = Batch::default();
        let mut users = Vec::new();
        for (at, user, seq, id) in &expired {
            let record = match id {
                Some(id) => self.record(user, id)?.filter(|r| r.seq == *seq),
                None => None,
            };
            match record {
                Some(record) => {
                    batch.remove(keys::note(user, &record.id));
                    index.drop_record(user, &record);
                }
                None => index.drop_entry(user, *seq, *at),
            }
            if !users.contains(user) {
                users.push(user.clone());
            }
        }
        for user in &users {
            let floor = Seq(index.next_seq(user).0 - 1);
            batch.insert(keys::seq(user), &floor.0.to_be_bytes());
        }
        self.backend()?.trees.notifications.apply_batch(batch)?;
        Ok(expired.len())
    }
}

impl SledStore {
    /// Changes the state of a live notification with a new `seq`.
    async fn change(
        &self,
        user: &UserId,
        id: &NotificationId,
        now: Timestamp,
        edit: impl Fn(&mut UserState),
    ) -> Result<Option<Stored>, StoreError> {
        let (wait, record) = {
            let mut index = self.lock();
            self.writable()?;
            let Some(old) = self.record(user, id)?.filter(|r| is_live(r, now)) else {
                return Ok(None);
            };
            let record = changed(&old, index.next_seq(user), now, edit);
            (self.write(&mut index, user, Some(&old), &record)?, record)
        };
        wait_durable(wait).await?;
        Ok(Some(Stored {
            seq: record.seq,
            notification: record.into_notification(),
        }))
    }

    /// The stored record of a notification, whatever its state.
    pub(super) fn record(
        &self,
        user: &UserId,
        id: &NotificationId,
    ) -> Result<Option<NotificationRecord>, StoreError> {
        self.backend()?
            .trees
            .notifications
            .get(keys::note(user, id))?
            .map(|v| decode(&v))
            .transpose()
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Index> {
        crate::sync::lock(&self.index)
    }

    /// Writes a new version of a notification (one insert), updates the index and
    /// queues the change for the group commit, with how to take it back if it is
    /// refused (`undo.rs`). Called with the write lock held, so
    /// queue order is `seq` order.
    fn write(
        &self,
        index: &mut Index,
        user: &UserId,
        old: Option<&NotificationRecord>,
        record: &NotificationRecord,
    ) -> Result<Durable, StoreError> {
        let backend = self.backend()?;
        let undo = Undo {
            key: keys::note(user, &record.id),
            seq: record.seq,
            old: old.map(encode).transpose()?,
        };
        if let Err(e) = backend
            .trees
            .notifications
            .insert(&undo.key, encode(record)?)
        {
            self.refused.add([undo]);
            return Err(self.failed_write(e));
        }
        index.put(user, old, record);
        Ok(backend
            .committer
            .enqueue(vec![Committed::of(user, record)], vec![undo]))
    }
}

async fn wait_durable(wait: Durable) -> Result<(), StoreError> {
    wait.await
        .map_err(|_| StoreError::Commit("the store closed before the flush".to_owned()))?
        .map_err(StoreError::Unavailable)
}
