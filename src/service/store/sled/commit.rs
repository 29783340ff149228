//! Group commit: many writers, one flush.
//!
//! A writer applies its change to sled in memory, then queues a [`Pending`] here and
//! waits. One thread (`tidings-commit`) takes everything queued, calls `flush` once,
//! hands the committed changes (in queue order, which is `seq` order) to the publish
//! callback, and only then answers every writer. So a change is never visible to
//! devices, and never answered with 201, before it is on disk; and under load one fsync
//! covers many posts.
//!
//! A failed flush marks the store failed ([`Health`]) and fails its writers; from then
//! on the thread flushes nothing and fails every writer at once, so nothing answered
//! with an error is made durable later without being published. Each failed writer's
//! [`Undo`] goes to [`Refused`], for the reopen to take back what reached the disk
//! anyway (`undo.rs`).
//!
//! A plain thread, not a task: the flush blocks, and calling it directly saves the hop
//! through sled's own thread pool that `flush_async` makes (measured: about 8 % more
//! posts per second, see `benches/service.rs`). The thread ends when the store is
//! dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{mpsc, oneshot};
use tracing::debug_span;

use super::health::{Failure, Health};
use super::undo::{Refused, Undo};
use super::{Committed, Publish};
use crate::service::stage;

/// A writer's answer: durable, or why not.
pub(crate) type Outcome = Result<(), Failure>;

/// One writer's request to be made durable.
pub(crate) struct Pending {
    pub changes: Vec<Committed>,
    /// How to take the changes back if they are refused.
    pub undo: Vec<Undo>,
    pub done: oneshot::Sender<Outcome>,
}

/// What the committer thread works with.
pub(crate) struct Context {
    pub db: sled::Db,
    pub publish: Publish,
    pub health: Arc<Health>,
    /// Where the undos of refused writers go.
    pub refused: Arc<Refused>,
    /// The flush-failure switch (tests) and the flush-time observer.
    pub hooks: Arc<FlushHooks>,
}

/// What may watch or fault the flushes, shared with the store across reopenings.
#[derive(Default)]
pub struct FlushHooks {
    /// Makes every flush fail while set (tests of the failure path).
    pub fail: AtomicBool,
    /// Told how long each successful flush took (the service's metrics).
    pub observer: std::sync::OnceLock<Box<dyn Fn(std::time::Duration) + Send + Sync>>,
}

/// The queue writers put their pending commits on. Dropping it stops the thread and
/// waits for it, so the database is closed when the store is.
pub(crate) struct Committer {
    tx: Option<mpsc::UnboundedSender<Pending>>,
    refused: Arc<Refused>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Committer {
    /// Starts the committer thread.
    pub fn start(context: Context) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let refused = context.refused.clone();
        let thread = std::thread::Builder::new()
            .name("tidings-commit".to_owned())
            .spawn(move || run(&context, rx))?;
        Ok(Self {
            tx: Some(tx),
            refused,
            thread: Some(thread),
        })
    }

    /// Queues `changes` (already applied in memory) and returns once they are on disk.
    pub async fn commit(&self, changes: Vec<Committed>) -> Outcome {
        self.enqueue(changes, Vec::new())
            .await
            .map_err(|_| Failure::other("the store is closed"))?
    }

    /// Queues `changes` without waiting; used while holding the write lock so that
    /// queue order is `seq` order. `undo` takes them back if they are refused. Returns
    /// the receiver to wait on.
    pub fn enqueue(&self, changes: Vec<Committed>, undo: Vec<Undo>) -> oneshot::Receiver<Outcome> {
        let (done, wait) = oneshot::channel();
        // A send error drops `done` (the waiter sees "store closed") and hands the
        // pending back, whose undo is then kept as refused.
        if let Some(tx) = &self.tx
            && let Err(mpsc::error::SendError(pending)) = tx.send(Pending {
                changes,
                undo,
                done,
            })
        {
            self.refused.add(pending.undo);
        }
        wait
    }
}

fn run(context: &Context, mut rx: mpsc::UnboundedReceiver<Pending>) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while let Ok(next) = rx.try_recv() {
            batch.push(next);
        }
        let result = debug_span!(target: stage::TARGET, "flush").in_scope(|| flush(context));
        if result.is_ok() {
            let changes: Vec<Committed> = batch
                .iter_mut()
                .flat_map(|p| std::mem::take(&mut p.changes))
                .collect();
            if !changes.is_empty() {
                debug_span!(target: stage::TARGET, "publish")
                    .in_scope(|| (context.publish)(changes));
            }
        }
        if result.is_err() {
            context
                .refused
                .add(batch.iter_mut().flat_map(|p| std::mem::take(&mut p.undo)));
        }
        for pending in batch {
            let _ = pending.done.send(result.clone());
        }
    }
}

/// One flush, unless the store already failed; a failure marks it failed.
fn flush(context: &Context) -> Outcome {
    if let Some(failure) = context.health.failure() {
        return Err(failure);
    }
    let started = std::time::Instant::now();
    let result = if context.hooks.fail.load(Ordering::SeqCst) {
        Err(sled::Error::Io(std::io::Error::from(
            std::io::ErrorKind::StorageFull,
        )))
    } else {
        crate::embedded::flush_blocking(&context.db)
    };
    if let (Ok(()), Some(observe)) = (&result, context.hooks.observer.get()) {
        observe(started.elapsed());
    }
    result.map_err(|e| {
        let failure = super::error::failure(&e);
        context.health.fail(failure.clone());
        failure
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::protocol::UserId;
    use crate::service::store::fixtures;

    fn change(seq: u64) -> Committed {
        let record = fixtures::record(seq, &format!("n{seq}"), None, None, i64::MAX / 2);
        Committed::of(&UserId::new("u"), &record)
    }

    /// A change written to memory before a flush failed, and queued after it, must not be
    /// flushed and published by a later flush: devices would get it and skip the failed
    /// one before it.
    #[tokio::test]
    async fn after_a_failed_flush_nothing_is_flushed_or_published() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let published = Arc::new(Mutex::new(Vec::new()));
        let seen = published.clone();
        let hooks = Arc::new(FlushHooks::default());
        hooks.fail.store(true, Ordering::SeqCst);
        let health = Arc::new(Health::default());
        let committer = Committer::start(Context {
            db,
            publish: Arc::new(move |changes: Vec<Committed>| {
                seen.lock().unwrap().extend(changes.iter().map(|c| c.seq.0));
            }),
            health: health.clone(),
            refused: Arc::default(),
            hooks: hooks.clone(),
        })
        .unwrap();
        let failed = committer.commit(vec![change(1)]).await.unwrap_err();
        assert!(failed.disk_full);
        hooks.fail.store(false, Ordering::SeqCst);
        assert!(committer.commit(vec![change(2)]).await.is_err());
        assert!(published.lock().unwrap().is_empty());
        assert!(health.failure().is_some());
    }
}
