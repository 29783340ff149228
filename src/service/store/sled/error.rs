//! sled's errors in the store's terms: everything that matches on a `sled::Error` is
//! here, so that [`StoreError`] and the HTTP edge name no backend.

use super::super::StoreError;
use super::super::health::{Failure, is_disk_full};

impl From<sled::Error> for StoreError {
    fn from(error: sled::Error) -> Self {
        match error {
            sled::Error::Io(io) => StoreError::Io(io),
            sled::Error::Corruption { .. } => StoreError::Corrupt(error.to_string()),
            other => StoreError::Database(other.to_string()),
        }
    }
}

impl<E: Into<StoreError>> From<sled::transaction::TransactionError<E>> for StoreError {
    fn from(error: sled::transaction::TransactionError<E>) -> Self {
        match error {
            sled::transaction::TransactionError::Abort(e) => e.into(),
            sled::transaction::TransactionError::Storage(e) => e.into(),
        }
    }
}

impl From<crate::embedded::FlushError> for StoreError {
    fn from(error: crate::embedded::FlushError) -> Self {
        match error {
            crate::embedded::FlushError::Sled(e) => e.into(),
            job @ crate::embedded::FlushError::Job(_) => StoreError::Commit(job.to_string()),
        }
    }
}

/// The failure a write or a flush that sled refused puts the store in.
pub(super) fn failure(error: &sled::Error) -> Failure {
    Failure {
        disk_full: matches!(error, sled::Error::Io(io) if is_disk_full(io)),
        message: format!("the store cannot write: {error}"),
        since: crate::protocol::Timestamp::now(),
    }
}

/// Whether sled's error is an I/O error (which fails the store for writes).
pub(super) fn is_io(error: &sled::Error) -> bool {
    matches!(error, sled::Error::Io(_))
}
