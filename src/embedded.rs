//! sled, as both the agent's store and the service's sled store use it: opened without
//! the periodic flusher, a lock held by another process told apart from other failures,
//! and a flush that lets go of the database before it answers and frees what the
//! writes before it replaced (sled's epoch garbage, [`flush`]). Any layer may use this
//! module; nothing else outside the two stores names sled.

use std::path::Path;

/// Why [`open`] failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Another process holds the database (sled locks its files).
    #[error("the database is locked by another process")]
    Locked,
    /// sled could not open it.
    #[error("{0}")]
    Sled(#[from] sled::Error),
}

/// Opens (or creates) the database in `dir` with a page cache of `cache_bytes`.
///
/// No periodic flusher: each store flushes what must last when it writes it (the
/// service's group committer, the agent's changes), and the flusher would wake an idle
/// machine 4 times a second for nothing.
pub fn open(dir: &Path, cache_bytes: u64) -> Result<sled::Db, OpenError> {
    sled::Config::new()
        .path(dir)
        .cache_capacity(cache_bytes)
        .flush_every_ms(None)
        .open()
        .map_err(|e| match e {
            sled::Error::Io(io) if is_lock_error(&io) => OpenError::Locked,
            other => OpenError::Sled(other),
        })
}

/// Whether an open failed because another process holds the database: sled reports its
/// file lock as an I/O error (`WouldBlock`, or "could not acquire lock").
fn is_lock_error(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::WouldBlock
        || error.to_string().contains("could not acquire lock")
}

/// Flushes the database on the blocking pool, and lets go of it before answering.
///
/// sled's own `flush_async` runs on its pool with a handle that is dropped only after
/// the awaiting task is woken, so a database dropped right after it may still be locked
/// for a moment and cannot be opened again at once. Here the handle goes with the job.
pub async fn flush(db: &sled::Db) -> Result<(), FlushError> {
    let db = db.clone();
    collect_garbage();
    tokio::task::spawn_blocking(move || flush_blocking(&db)).await??;
    Ok(())
}

/// Flushes the database on this thread, then frees what this thread's writes replaced
/// ([`collect_garbage`]). For a thread that may block: the service's group committer,
/// and [`flush`]'s blocking job.
pub fn flush_blocking(db: &sled::Db) -> sled::Result<()> {
    let flushed = db.flush();
    collect_garbage();
    flushed.map(|_| ())
}

/// Hands what this thread's sled calls replaced to the epoch collector and frees what
/// no reader can still see.
///
/// sled frees a replaced value (a page's old version, a log buffer it has moved past)
/// through crossbeam's epoch collector, which keeps up to 64 of them per thread until
/// that thread pins again, and frees those handed on only when some thread pins 128
/// times. A flush runs on a blocking-pool thread that may never touch sled again, and
/// an idle process pins nothing: an agent that caught up with 10,000 notifications kept
/// 36 of sled's 512 KiB log buffers (18 MiB) until it exited. So each flush hands on
/// what its thread and the thread that asked for it replaced, and collects; so does the
/// service's group committer after each of its flushes ([`flush_blocking`]).
fn collect_garbage() {
    crossbeam_epoch::pin().flush();
}

/// Why [`flush`] failed.
#[derive(Debug, thiserror::Error)]
pub enum FlushError {
    /// sled could not write.
    #[error("{0}")]
    Sled(#[from] sled::Error),
    /// The job panicked or was cancelled at shutdown.
    #[error("the flush did not finish: {0}")]
    Job(#[from] tokio::task::JoinError),
}
