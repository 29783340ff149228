//! Refused changes are taken back: a notification change answered with an error never
//! shows up later.
//!
//! A change is written to sled in memory first and answered once a flush has made it
//! durable. When that flush fails (a full disk, an I/O error), its writers are answered
//! `507` / `503`, but part of what they wrote may already be on disk all the same: sled
//! writes its log buffers out as they fill, so a flush that fails on its last buffer
//! leaves the earlier ones written; and closing the failed handle flushes once more.
//! Reopened from disk, the store would then hold, and send every device, a notification
//! its app was told was refused.
//!
//! So every write keeps how to take it back (an [`Undo`]: the key, the `seq` it wrote,
//! the version it replaced). The committer hands those of every writer it fails to
//! [`Refused`], and the reopen that follows a failure ([`take_back`]) restores, newest
//! first, each one whose refused version is what the disk holds, and flushes that before
//! anything is read or rebuilt from the reopened database. The reopen frees the disk
//! reserve first, so there is room for it.
//!
//! What this does not cover: the process killed between the failed flush and the reopen
//! (which the recovery task starts at once, a matter of milliseconds). The list is in
//! memory only: a full disk has no room to write it down.

use std::sync::Mutex;

use sled::Tree;

use super::StoreError;
use super::records::{NotificationRecord, decode};
use crate::protocol::Seq;

/// How to take back one written change.
#[derive(Debug, Clone)]
pub(crate) struct Undo {
    /// The record's key in the `notifications` tree.
    pub key: Vec<u8>,
    /// The `seq` the refused version carries.
    pub seq: Seq,
    /// The version it replaced (encoded), or `None` when it was new.
    pub old: Option<Vec<u8>>,
}

/// The changes answered with an error since the last reopen, in write order. Shared by
/// the store and each of its committers.
#[derive(Debug, Default)]
pub(crate) struct Refused(Mutex<Vec<Undo>>);

impl Refused {
    /// Records writes that were answered with an error.
    pub fn add(&self, undos: impl IntoIterator<Item = Undo>) {
        crate::sync::lock(&self.0).extend(undos);
    }

    fn take(&self) -> Vec<Undo> {
        std::mem::take(&mut *crate::sync::lock(&self.0))
    }

    /// Puts back what [`take_back`] could not finish, ahead of anything added since.
    fn restore(&self, mut undos: Vec<Undo>) {
        let mut list = crate::sync::lock(&self.0);
        undos.append(&mut list);
        *list = undos;
    }
}

/// Takes back, in `notes` of a freshly opened database, every refused change that
/// reached the disk, newest first, and flushes that. Returns how many were taken back.
/// On an error the list is kept for the next reopen.
pub(crate) fn take_back(
    db: &sled::Db,
    notes: &Tree,
    refused: &Refused,
) -> Result<usize, StoreError> {
    let undos = refused.take();
    if undos.is_empty() {
        return Ok(0);
    }
    let result = apply(notes, &undos).and_then(|taken| {
        db.flush()?;
        Ok(taken)
    });
    match result {
        Ok(taken) => {
            if taken > 0 {
                tracing::warn!(
                    taken,
                    refused = undos.len(),
                    "refused changes had reached the disk; taken back"
                );
            }
            Ok(taken)
        }
        Err(e) => {
            refused.restore(undos);
            Err(e)
        }
    }
}

fn apply(notes: &Tree, undos: &[Undo]) -> Result<usize, StoreError> {
    let mut taken = 0;
    for undo in undos.iter().rev() {
        let on_disk = match notes.get(&undo.key)? {
            Some(value) => decode::<NotificationRecord>(&value)?.seq,
            None => continue,
        };
        if on_disk != undo.seq {
            continue;
        }
        match &undo.old {
            Some(old) => notes.insert(&undo.key, old.as_slice())?,
            None => notes.remove(&undo.key)?,
        };
        taken += 1;
    }
    Ok(taken)
}
