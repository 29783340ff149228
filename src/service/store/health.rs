//! Whether the store can still take writes.
//!
//! The first failed flush (a full disk, an I/O error) marks the store failed. From then
//! on every write is refused before it touches the database, and the group committer
//! flushes nothing more: a change answered with an error must never reach the disk
//! through a later, successful flush without being published (a device would get `N+1`,
//! ack past `N` and never get `N`).
//!
//! sled keeps a failed flush's error in its handle and then fails reads too, so the
//! failed handle is replaced at once by one opened afresh from disk, for reads
//! ([`super::Store::recover`]); writes stay refused until the disk takes a write again.

use std::sync::Mutex;

use crate::protocol::Timestamp;

/// Why the store takes no writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The disk is full (`ENOSPC`): answered `507`; anything else `503`.
    pub disk_full: bool,
    /// What failed, for the log and `/healthz`.
    pub message: String,
    /// When it failed.
    pub since: Timestamp,
}

impl Failure {
    /// A failure that is not a full disk, described by `message`.
    pub fn other(message: &str) -> Self {
        Self {
            disk_full: false,
            message: message.to_owned(),
            since: Timestamp::now(),
        }
    }
}

/// Whether an I/O error means the disk is full.
pub fn is_disk_full(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::StorageFull
        || error.raw_os_error() == Some(28)
        || error.to_string().contains("No space left on device")
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (since {})", self.message, self.since)
    }
}

/// The store's health, shared by its writers and its committer thread.
#[derive(Debug, Default)]
pub struct Health {
    /// Why writes are refused, and whether the database handle saw the error (and must
    /// be reopened before it serves reads again).
    failure: Mutex<Option<(Failure, bool)>>,
    /// Wakes the recovery task when the store fails.
    failed: tokio::sync::Notify,
}

impl Health {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Failure, bool)>> {
        crate::sync::lock(&self.failure)
    }

    /// The failure in force, if any.
    pub fn failure(&self) -> Option<Failure> {
        self.lock().as_ref().map(|(failure, _)| failure.clone())
    }

    /// Whether the database handle saw the failure and must be reopened.
    pub fn handle_broken(&self) -> bool {
        self.lock().as_ref().is_some_and(|(_, broken)| *broken)
    }

    /// The handle was replaced by a fresh one; writes stay refused.
    pub fn handle_replaced(&self) {
        if let Some((_, broken)) = self.lock().as_mut() {
            *broken = false;
        }
    }

    /// Marks the store failed by an error of its database handle (the first failure is
    /// kept), and wakes [`Self::wait_failed`].
    pub fn fail(&self, failure: Failure) {
        let mut slot = self.lock();
        match slot.as_mut() {
            None => {
                tracing::error!(%failure, "store failed: writes are refused until it recovers");
                *slot = Some((failure, true));
            }
            Some((_, broken)) => *broken = true,
        }
        self.failed.notify_one();
    }

    /// Resolves when the store fails (at once if it failed since the last call).
    pub async fn wait_failed(&self) {
        self.failed.notified().await;
    }

    /// Clears the failure once the store is reopened.
    pub fn clear(&self) {
        *self.lock() = None;
    }
}
