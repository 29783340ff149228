//! The outbox: state changes made on this device (read, unread, dismiss, delete),
//! applied to the local copy at once and kept until the service confirms them, so
//! nothing done offline or before a crash is lost.
//!
//! Keys: `O` + a counter → the change; `Mnext_op` → the next counter. The counter, as
//! text, is the change's `requestId` on the channel, so a `result` finds its entry.

use serde::{Deserialize, Serialize};
use sled::Batch;

use crate::protocol::stored::{decode, encode};
use crate::protocol::validate::StatePatch;
use crate::protocol::{NotificationId, Status, UserState};

use super::tally::Delta;
use super::{AgentStore, AgentStoreError, Applied, note_key, u64_of};

const OUTBOX: u8 = b'O';
const NEXT_OP: &[u8] = b"Mnext_op";

/// A change the user made here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LocalChange {
    /// Read / unread / dismissed / activated.
    Update(StatePatch),
    /// Deleted.
    Delete,
}

impl LocalChange {
    /// Applies the change to a local state.
    pub fn apply_to(self, state: &mut UserState) {
        match self {
            LocalChange::Update(patch) => patch.apply_to(state),
            LocalChange::Delete => state.status = Status::Deleted,
        }
    }
}

/// One pending change: which notification, what, and its request id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// The channel `requestId`.
    pub request_id: String,
    /// The notification.
    pub id: NotificationId,
    /// The change.
    pub change: LocalChange,
}

impl crate::protocol::stored::Versioned for OutboxEntry {}

fn outbox_key(n: u64) -> [u8; 9] {
    let mut key = [OUTBOX; 9];
    key[1..].copy_from_slice(&n.to_be_bytes());
    key
}

impl AgentStore {
    /// Applies `change` to each stored notification of `ids` at once and queues it for
    /// the service; durable on return. Returns the notifications changed (unknown ids
    /// are skipped).
    pub async fn change_locally(
        &self,
        ids: &[NotificationId],
        change: LocalChange,
    ) -> Result<Vec<Applied>, AgentStoreError> {
        let changed = self.write_local(ids, change)?;
        self.flush().await?;
        Ok(changed)
    }

    /// The synchronous part of [`Self::change_locally`], under the write lock.
    fn write_local(
        &self,
        ids: &[NotificationId],
        change: LocalChange,
    ) -> Result<Vec<Applied>, AgentStoreError> {
        let _write = self.lock();
        let mut tally = Delta::default();
        let mut next = self
            .cache
            .get(NEXT_OP)?
            .map(|v| u64_of(&v))
            .transpose()?
            .unwrap_or(1);
        let mut batch = Batch::default();
        let mut changed = Vec::new();
        for id in ids {
            let Some(old) = self.get(id)? else {
                continue;
            };
            let mut record = old.clone();
            change.apply_to(&mut record.state);
            tally.replace(Some(&old), Some(&record));
            batch.insert(note_key(id), encode(&record)?);
            let entry = OutboxEntry {
                request_id: next.to_string(),
                id: id.clone(),
                change,
            };
            batch.insert(&outbox_key(next), encode(&entry)?);
            next += 1;
            changed.push(Applied::Updated(record));
        }
        batch.insert(NEXT_OP, &next.to_be_bytes());
        self.put_tally(&mut batch, tally)?;
        self.cache.apply_batch(batch)?;
        Ok(changed)
    }

    /// Every pending change, oldest first.
    pub fn outbox(&self) -> Result<Vec<OutboxEntry>, AgentStoreError> {
        self.cache
            .scan_prefix([OUTBOX])
            .map(|entry| Ok(decode(&entry?.1)?))
            .collect()
    }

    /// Drops a change the service has answered (applied, or refused for good).
    pub fn confirm(&self, request_id: &str) -> Result<bool, AgentStoreError> {
        let Ok(n) = request_id.parse::<u64>() else {
            return Ok(false);
        };
        Ok(self.cache.remove(outbox_key(n))?.is_some())
    }
}
