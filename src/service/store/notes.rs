//! Notifications and the per-user feed: create / replace, state changes, deletes,
//! feed scans and the expiry purge.
//!
//! Every change runs under the write lock in one sled transaction over `notes`, `feed`,
//! `app_ids`, `expiry` and `seqs`, stamps the user's next `seq`, queues itself on the
//! group committer before the lock is released, and returns once it is durable.

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use crate::protocol::validate::StatePatch;
use crate::protocol::{
    Notification, NotificationContent, NotificationId, Seq, Status, Timestamp, UserId, UserState,
};

use super::records::{NotificationRecord, decode, encode};
use super::{Committed, Store, StoreError, be_u64, keys};

/// The result of a post: the stored notification and whether it replaced one.
#[derive(Debug, Clone)]
pub struct Upserted {
    /// The notification as stored.
    pub notification: Notification,
    /// Its feed position.
    pub seq: Seq,
    /// True when an earlier notification with the same `appNotificationId` was replaced.
    pub replaced: bool,
}

/// One page of a feed scan.
#[derive(Debug, Default)]
pub struct FeedScan {
    /// Current records whose latest change lies in the scanned range, in `seq` order.
    pub records: Vec<NotificationRecord>,
    /// The last `seq` scanned; continue from here.
    pub last_scanned: Option<Seq>,
}

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

fn abort(err: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(err)
}

impl Store {
    /// Stores a new notification, or replaces the one with the same
    /// (user, host, `appNotificationId`) in place: same id, new content, fresh state.
    pub async fn upsert(
        &self,
        user: &UserId,
        content: NotificationContent,
        now: Timestamp,
    ) -> Result<Upserted, StoreError> {
        let (wait, record, replaced) = {
            let _guard = self.lock();
            let old = match &content.app_notification_id {
                Some(app_id) => self.by_app_id(user, &content.target_host_name, app_id)?,
                None => None,
            };
            let replaced = old.is_some();
            let id = old
                .as_ref()
                .map_or_else(NotificationId::random, |o| o.id.clone());
            let created = old.as_ref().map_or(now, |o| o.created);
            let record = self.write(user, old.as_ref(), |seq| NotificationRecord {
                seq,
                id: id.clone(),
                content: content.clone(),
                created,
                modified: now,
                state: UserState::FRESH,
            })?;
            (self.enqueue(user, &record), record, replaced)
        };
        wait_durable(wait).await?;
        Ok(Upserted {
            notification: record.to_notification(),
            seq: record.seq,
            replaced,
        })
    }

    /// Applies a device's state change. `None` when the notification does not exist
    /// (or is deleted or expired).
    pub async fn update_state(
        &self,
        user: &UserId,
        id: &NotificationId,
        patch: StatePatch,
        now: Timestamp,
    ) -> Result<Option<Upserted>, StoreError> {
        self.change(user, id, now, |state| {
            if let Some(read) = patch.read_state {
                state.read_state = read;
            }
            if let Some(action) = patch.user_action_state {
                state.user_action_state = action;
            }
        })
        .await
    }

    /// Turns a notification into a tombstone that devices receive as a change.
    pub async fn delete(
        &self,
        user: &UserId,
        id: &NotificationId,
        now: Timestamp,
    ) -> Result<Option<Upserted>, StoreError> {
        self.change(user, id, now, |state| state.status = Status::Deleted)
            .await
    }

    /// Deletes every live notification of `host` in `group` for `user`; returns how many.
    pub async fn delete_group(
        &self,
        user: &UserId,
        host: &str,
        group: &str,
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        let mut ids = Vec::new();
        for entry in self.trees.notes.scan_prefix(keys::user_prefix(user)) {
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

    /// A live (not deleted, not expired) notification of `user`.
    pub fn get(
        &self,
        user: &UserId,
        id: &NotificationId,
        now: Timestamp,
    ) -> Result<Option<NotificationRecord>, StoreError> {
        Ok(self.record(user, id)?.filter(|r| is_live(r, now)))
    }

    /// Scans `user`'s feed after `after` (and up to `upto`, when given), visiting at most
    /// `max` entries. Entries whose notification has changed again since are skipped:
    /// the newer change has its own, later entry.
    pub fn feed_scan(
        &self,
        user: &UserId,
        after: Seq,
        upto: Option<Seq>,
        max: usize,
    ) -> Result<FeedScan, StoreError> {
        let start = keys::feed(user, after.next());
        let end = keys::feed(user, upto.unwrap_or(Seq(u64::MAX)));
        let mut scan = FeedScan::default();
        for entry in self.trees.feed.range(start..=end).take(max) {
            let (key, value) = entry?;
            let seq = keys::feed_seq(&key)
                .ok_or_else(|| StoreError::Corrupt("short feed key".to_owned()))?;
            scan.last_scanned = Some(seq);
            let id = NotificationId::new(String::from_utf8_lossy(&value).into_owned());
            if let Some(record) = self.record(user, &id)?
                && record.seq == seq
            {
                scan.records.push(record);
            }
        }
        Ok(scan)
    }

    /// Removes up to `max` notifications that expired before `now`, with their feed,
    /// id and expiry entries. Returns how many were removed.
    pub fn purge_expired(&self, now: Timestamp, max: usize) -> Result<usize, StoreError> {
        let mut purged = 0;
        let _guard = self.lock();
        for entry in self.trees.expiry.iter().take(max) {
            let (key, _) = entry?;
            let Some((at, note_key)) = keys::split_expiry(&key) else {
                return Err(StoreError::Corrupt("short expiry key".to_owned()));
            };
            if at > now {
                break;
            }
            let record = self
                .trees
                .notes
                .get(note_key)?
                .map(|v| decode(&v))
                .transpose()?;
            self.remove(&key, note_key, record.as_ref())?;
            purged += 1;
        }
        Ok(purged)
    }

    fn remove(
        &self,
        expiry_key: &[u8],
        note_key: &[u8],
        record: Option<&NotificationRecord>,
    ) -> Result<(), StoreError> {
        let t = &self.trees;
        (&t.notes, &t.feed, &t.app_ids, &t.expiry).transaction(
            |(notes, feed, app_ids, expiry)| {
                expiry.remove(expiry_key)?;
                notes.remove(note_key)?;
                if let Some(record) = record {
                    let user = user_of(note_key);
                    feed.remove(keys::feed(&user, record.seq))?;
                    if let Some(app_id) = &record.content.app_notification_id {
                        app_ids.remove(keys::app_id(
                            &user,
                            &record.content.target_host_name,
                            app_id,
                        ))?;
                    }
                }
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            },
        )?;
        Ok(())
    }

    /// Changes the state of a live notification with a new `seq`.
    async fn change(
        &self,
        user: &UserId,
        id: &NotificationId,
        now: Timestamp,
        edit: impl Fn(&mut UserState),
    ) -> Result<Option<Upserted>, StoreError> {
        let (wait, record) = {
            let _guard = self.lock();
            let Some(old) = self.record(user, id)?.filter(|r| is_live(r, now)) else {
                return Ok(None);
            };
            let record = self.write(user, Some(&old), |seq| {
                let mut state = old.state;
                edit(&mut state);
                NotificationRecord {
                    seq,
                    modified: now,
                    state,
                    ..old.clone()
                }
            })?;
            (self.enqueue(user, &record), record)
        };
        wait_durable(wait).await?;
        Ok(Some(Upserted {
            notification: record.to_notification(),
            seq: record.seq,
            replaced: false,
        }))
    }

    fn record(
        &self,
        user: &UserId,
        id: &NotificationId,
    ) -> Result<Option<NotificationRecord>, StoreError> {
        self.trees
            .notes
            .get(keys::note(user, id))?
            .map(|v| decode(&v))
            .transpose()
    }

    fn by_app_id(
        &self,
        user: &UserId,
        host: &str,
        app_id: &str,
    ) -> Result<Option<NotificationRecord>, StoreError> {
        match self.trees.app_ids.get(keys::app_id(user, host, app_id))? {
            Some(id) => {
                let id = NotificationId::new(String::from_utf8_lossy(&id).into_owned());
                self.record(user, &id)
            }
            None => Ok(None),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.write_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes a new version of a notification in one transaction, with the next `seq`.
    fn write(
        &self,
        user: &UserId,
        old: Option<&NotificationRecord>,
        build: impl Fn(Seq) -> NotificationRecord,
    ) -> Result<NotificationRecord, StoreError> {
        let t = &self.trees;
        let record = (&t.notes, &t.feed, &t.app_ids, &t.expiry, &t.seqs).transaction(
            |(notes, feed, app_ids, expiry, seqs)| {
                let seq = next_seq(seqs, user)?;
                let record = build(seq);
                if let Some(old) = old {
                    feed.remove(keys::feed(user, old.seq))?;
                    expiry.remove(keys::expiry(
                        old.content.expiration_date_time,
                        user,
                        &old.id,
                    ))?;
                }
                notes.insert(
                    keys::note(user, &record.id),
                    encode(&record).map_err(abort)?,
                )?;
                feed.insert(keys::feed(user, seq), record.id.as_str().as_bytes())?;
                if let Some(app_id) = &record.content.app_notification_id {
                    let key = keys::app_id(user, &record.content.target_host_name, app_id);
                    app_ids.insert(key, record.id.as_str().as_bytes())?;
                }
                let at = record.content.expiration_date_time;
                expiry.insert(keys::expiry(at, user, &record.id), &[])?;
                Ok(record)
            },
        )?;
        Ok(record)
    }

    fn enqueue(
        &self,
        user: &UserId,
        record: &NotificationRecord,
    ) -> tokio::sync::oneshot::Receiver<Result<(), String>> {
        self.committer.enqueue(vec![Committed {
            user: user.clone(),
            seq: record.seq,
            notification: record.to_notification(),
        }])
    }
}

/// Reads and bumps the user's feed counter inside a transaction.
fn next_seq(seqs: &TransactionalTree, user: &UserId) -> TxResult<Seq> {
    let last = match seqs.get(user.as_str().as_bytes())? {
        Some(v) => be_u64(&v).map_err(abort)?,
        None => 0,
    };
    let seq = Seq(last + 1);
    seqs.insert(user.as_str().as_bytes(), &seq.0.to_be_bytes())?;
    Ok(seq)
}

async fn wait_durable(
    wait: tokio::sync::oneshot::Receiver<Result<(), String>>,
) -> Result<(), StoreError> {
    wait.await
        .map_err(|_| StoreError::Commit("the store closed before the flush".to_owned()))?
        .map_err(StoreError::Commit)
}

fn is_live(record: &NotificationRecord, now: Timestamp) -> bool {
    record.state.status == Status::Active && record.content.expiration_date_time > now
}

/// The user id at the start of a `notes` key.
fn user_of(note_key: &[u8]) -> UserId {
    let len = note_key
        .get(..2)
        .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])));
    let bytes = note_key.get(2..2 + len).unwrap_or_default();
    UserId::new(String::from_utf8_lossy(bytes).into_owned())
}
