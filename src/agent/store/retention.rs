//! Retention: expired notifications are purged, and history is capped (oldest read or
//! handled ones go first, then the oldest of the rest).

use sled::Batch;

use crate::protocol::stored::NotificationRecord;
use crate::protocol::{NotificationId, ReadState, Status, Timestamp};

use super::{AgentStore, AgentStoreError, note_key, seq_key};

impl AgentStore {
    /// Removes what expired by `now` and, beyond `cap` notifications, the oldest read
    /// ones, then the oldest. Returns the ids removed. (Not flushed: a purge lost in a
    /// crash is simply done again.)
    pub fn purge(
        &self,
        now: Timestamp,
        cap: usize,
    ) -> Result<Vec<NotificationId>, AgentStoreError> {
        let all = self.history(usize::MAX, None)?;
        let mut keep: Vec<&NotificationRecord> = Vec::with_capacity(all.len());
        let mut remove: Vec<&NotificationRecord> = Vec::new();
        for record in all.iter().rev() {
            if record.content.expiration_date_time <= now {
                remove.push(record);
            } else {
                keep.push(record);
            }
        }
        let excess = keep.len().saturating_sub(cap);
        if excess > 0 {
            // `keep` is oldest first: handled ones go first, then the oldest.
            let (handled, rest): (Vec<_>, Vec<_>) = keep.into_iter().partition(|r| {
                r.state.read_state == ReadState::Read || r.state.status == Status::Deleted
            });
            remove.extend(handled.into_iter().chain(rest).take(excess));
        }
        let mut batch = Batch::default();
        for record in &remove {
            batch.remove(note_key(&record.id));
            batch.remove(&seq_key(record.seq));
        }
        self.cache.apply_batch(batch)?;
        Ok(remove.into_iter().map(|r| r.id.clone()).collect())
    }
}
