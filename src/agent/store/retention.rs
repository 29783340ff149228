//! Retention: expired notifications are purged, and history is capped (oldest read or
//! deleted ones go first, then the oldest of the rest).
//!
//! Expiry is found through the `E` index (reading only the expired records, for the
//! tally); the cap only reads records, oldest first, when the history is over it, and
//! stops as soon as enough are found. So a routine purge touches almost nothing: the
//! agent stays light.

use sled::Batch;

use crate::protocol::stored::NotificationRecord;
use crate::protocol::{NotificationId, ReadState, Seq, Status, Timestamp};

use super::tally::Delta;
use super::{AgentStore, AgentStoreError, BY_SEQ, COUNT, EXPIRY, expiry_key, note_key, seq_key};

impl AgentStore {
    /// Removes what expired by `now` and, beyond `cap` notifications, the oldest read
    /// ones, then the oldest. Returns the records removed. (Not flushed: a purge lost in
    /// a crash is simply done again.)
    pub fn purge(
        &self,
        now: Timestamp,
        cap: usize,
    ) -> Result<Vec<NotificationRecord>, AgentStoreError> {
        let _write = self.lock();
        let mut tally = Delta::default();
        let mut batch = Batch::default();
        let mut removed = Vec::new();
        let mut gone = std::collections::HashSet::new();
        for entry in self.cache.scan_prefix([EXPIRY]) {
            let (key, id) = entry?;
            let (at, seq) = split_expiry_key(&key)?;
            if at > now {
                break;
            }
            batch.remove(key);
            batch.remove(&seq_key(seq));
            let id = NotificationId::new(String::from_utf8_lossy(&id).into_owned());
            let record = self.get(&id)?;
            tally.replace(record.as_ref(), None);
            batch.remove(note_key(&id));
            gone.insert(seq);
            removed.extend(record);
        }
        let count = usize::try_from(self.count()?).unwrap_or(usize::MAX);
        let excess = count.saturating_sub(gone.len()).saturating_sub(cap);
        if excess > 0 {
            for record in self.oldest_to_drop(excess, &gone)? {
                batch.remove(note_key(&record.id));
                batch.remove(&seq_key(record.seq));
                batch.remove(&expiry_key(record.content.expiration_date_time, record.seq));
                tally.replace(Some(&record), None);
                removed.push(record);
            }
        }
        let left = count.saturating_sub(removed.len());
        batch.insert(
            COUNT,
            &u64::try_from(left).unwrap_or(u64::MAX).to_be_bytes(),
        );
        self.put_tally(&mut batch, tally)?;
        self.cache.apply_batch(batch)?;
        Ok(removed)
    }

    /// `excess` records to drop, oldest first: read or deleted ones, then any.
    fn oldest_to_drop(
        &self,
        excess: usize,
        skip: &std::collections::HashSet<Seq>,
    ) -> Result<Vec<NotificationRecord>, AgentStoreError> {
        let handled = |r: &NotificationRecord| {
            r.state.read_state == ReadState::Read || r.state.status == Status::Deleted
        };
        let mut picked = self.oldest_where(excess, skip, &handled)?;
        if picked.len() < excess {
            let mut skip = skip.clone();
            skip.extend(picked.iter().map(|r| r.seq));
            picked.extend(self.oldest_where(excess - picked.len(), &skip, &|_| true)?);
        }
        Ok(picked)
    }

    /// Up to `limit` records matching `keep`, oldest first, not in `skip`.
    fn oldest_where(
        &self,
        limit: usize,
        skip: &std::collections::HashSet<Seq>,
        keep: &dyn Fn(&NotificationRecord) -> bool,
    ) -> Result<Vec<NotificationRecord>, AgentStoreError> {
        let mut out = Vec::new();
        for entry in self.cache.scan_prefix([BY_SEQ]) {
            if out.len() == limit {
                break;
            }
            let (_, id) = entry?;
            let id = NotificationId::new(String::from_utf8_lossy(&id).into_owned());
            if let Some(record) = self.get(&id)?
                && !skip.contains(&record.seq)
                && keep(&record)
            {
                out.push(record);
            }
        }
        Ok(out)
    }
}

fn split_expiry_key(key: &[u8]) -> Result<(Timestamp, Seq), AgentStoreError> {
    let corrupt = || AgentStoreError::Corrupt("short expiry key".to_owned());
    let at: [u8; 8] = key
        .get(1..9)
        .ok_or_else(corrupt)?
        .try_into()
        .map_err(|_| corrupt())?;
    let seq: [u8; 8] = key
        .get(9..17)
        .ok_or_else(corrupt)?
        .try_into()
        .map_err(|_| corrupt())?;
    let millis = (u64::from_be_bytes(at) ^ (1 << 63)).cast_signed();
    Ok((Timestamp::from_millis(millis), Seq(u64::from_be_bytes(seq))))
}
