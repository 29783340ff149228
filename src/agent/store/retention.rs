//! Retention: expired notifications are purged, and history is capped (oldest read or
//! handled ones go first, then the oldest of the rest).
//!
//! The scan keeps only a small summary per notification, never the whole history in
//! memory at once: the agent should stay light.

use sled::Batch;

use crate::protocol::stored::NotificationRecord;
use crate::protocol::{NotificationId, ReadState, Seq, Status, Timestamp};

use super::{AgentStore, AgentStoreError, BY_SEQ, note_key, seq_key};

/// What retention needs to know of one stored notification.
struct Summary {
    seq: Seq,
    id: NotificationId,
    expired: bool,
    handled: bool,
}

impl AgentStore {
    /// Removes what expired by `now` and, beyond `cap` notifications, the oldest read
    /// ones, then the oldest. Returns the ids removed. (Not flushed: a purge lost in a
    /// crash is simply done again.)
    pub fn purge(
        &self,
        now: Timestamp,
        cap: usize,
    ) -> Result<Vec<NotificationId>, AgentStoreError> {
        let mut live = Vec::new();
        let mut remove = Vec::new();
        for summary in self.summaries(now)? {
            if summary.expired {
                remove.push(summary);
            } else {
                live.push(summary);
            }
        }
        let excess = live.len().saturating_sub(cap);
        if excess > 0 {
            // `live` is oldest first: handled ones go first, then the oldest.
            let (handled, rest): (Vec<_>, Vec<_>) = live.into_iter().partition(|s| s.handled);
            remove.extend(handled.into_iter().chain(rest).take(excess));
        }
        let mut batch = Batch::default();
        for summary in &remove {
            batch.remove(note_key(&summary.id));
            batch.remove(&seq_key(summary.seq));
        }
        self.cache.apply_batch(batch)?;
        Ok(remove.into_iter().map(|s| s.id).collect())
    }

    /// A summary of every stored notification, oldest first.
    fn summaries(&self, now: Timestamp) -> Result<Vec<Summary>, AgentStoreError> {
        let mut out = Vec::new();
        for entry in self.cache.scan_prefix([BY_SEQ]) {
            let (_, id) = entry?;
            let id = NotificationId::new(String::from_utf8_lossy(&id).into_owned());
            let Some(record) = self.get(&id)? else {
                continue;
            };
            out.push(summarize(&record, now));
        }
        Ok(out)
    }
}

fn summarize(record: &NotificationRecord, now: Timestamp) -> Summary {
    Summary {
        seq: record.seq,
        id: record.id.clone(),
        expired: record.content.expiration_date_time <= now,
        handled: record.state.read_state == ReadState::Read
            || record.state.status == Status::Deleted,
    }
}
