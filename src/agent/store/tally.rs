//! Kept counts of active and unread notifications (`Mtally`), updated in the same
//! batch as every change, so `status` reads two numbers instead of every record.
//!
//! Each write path computes a [`Delta`] from the records it replaces and writes, under
//! the store's write lock (so two writers cannot lose each other's counts).

use sled::Batch;

use crate::protocol::Status;
use crate::protocol::stored::{NotificationRecord, decode};

use super::{AgentStore, AgentStoreError, NOTE, u64_of};

/// The kept tally. (`Mtally`, from before dismissed stopped counting as unread, is
/// ignored, so such a store recounts once.)
const TALLY: &[u8] = b"Mtally2";

/// Counts of the stored notifications.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Active ones.
    pub total: u64,
    /// Active and unread (not read, not dismissed: [`crate::protocol::UserState::is_unread`]).
    pub unread: u64,
}

/// How a group of writes changes the tally.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Delta {
    total: i64,
    unread: i64,
}

impl Delta {
    /// Counts `old` (the record replaced, if any) out and `new` (written, if any) in.
    pub(super) fn replace(
        &mut self,
        old: Option<&NotificationRecord>,
        new: Option<&NotificationRecord>,
    ) {
        let (old_total, old_unread) = weight(old);
        let (new_total, new_unread) = weight(new);
        self.total += new_total - old_total;
        self.unread += new_unread - old_unread;
    }
}

/// (active, active and unread) as 0 or 1.
fn weight(record: Option<&NotificationRecord>) -> (i64, i64) {
    match record {
        Some(r) if r.state.status == Status::Active => (1, i64::from(r.state.is_unread())),
        _ => (0, 0),
    }
}

impl AgentStore {
    /// The counts (from the kept tally; counted once for a store without one).
    pub fn tally(&self) -> Result<Tally, AgentStoreError> {
        match self.cache.get(TALLY)? {
            Some(bytes) if bytes.len() == 16 => Ok(Tally {
                total: u64_of(&bytes[..8])?,
                unread: u64_of(&bytes[8..])?,
            }),
            _ => self.count_tally(),
        }
    }

    /// Adds the new tally to `batch`. Call with the write lock held.
    pub(super) fn put_tally(&self, batch: &mut Batch, delta: Delta) -> Result<(), AgentStoreError> {
        let now = self.tally()?;
        let shift = |value: u64, by: i64| value.saturating_add_signed(by);
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&shift(now.total, delta.total).to_be_bytes());
        bytes[8..].copy_from_slice(&shift(now.unread, delta.unread).to_be_bytes());
        batch.insert(TALLY, &bytes);
        Ok(())
    }

    /// Counts by reading every record.
    pub(super) fn count_tally(&self) -> Result<Tally, AgentStoreError> {
        let mut tally = Tally::default();
        for entry in self.cache.scan_prefix([NOTE]) {
            let record: NotificationRecord = decode(&entry?.1)?;
            let (total, unread) = weight(Some(&record));
            tally.total += total.unsigned_abs();
            tally.unread += unread.unsigned_abs();
        }
        Ok(tally)
    }
}
