//! Group commit: many writers, one flush.
//!
//! A writer applies its change to sled in memory, then queues a [`Pending`] here and
//! waits. One task takes everything queued, calls `flush_async` once, hands the
//! committed changes (in queue order, which is `seq` order) to the publish callback,
//! and only then answers every writer. So a change is never visible to devices, and
//! never answered with 201, before it is on disk; and under load one fsync covers many
//! posts.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::protocol::{Notification, Seq, UserId};

/// A change to a user's feed that became durable.
#[derive(Clone, Debug)]
pub struct Committed {
    /// Whose feed.
    pub user: UserId,
    /// Its feed position.
    pub seq: Seq,
    /// The notification's new state.
    pub notification: Notification,
}

/// Called with each group of durable changes, in `seq` order, before writers are answered.
pub type Publish = Arc<dyn Fn(Vec<Committed>) + Send + Sync>;

/// One writer's request to be made durable.
pub(crate) struct Pending {
    pub changes: Vec<Committed>,
    pub done: oneshot::Sender<Result<(), String>>,
}

/// The queue writers put their pending commits on.
#[derive(Clone)]
pub(crate) struct Committer {
    tx: mpsc::UnboundedSender<Pending>,
}

impl Committer {
    /// Starts the flushing task on the current runtime.
    pub fn start(db: sled::Db, publish: Publish) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(db, rx, publish));
        Self { tx }
    }

    /// Queues `changes` (already applied in memory) and returns once they are on disk.
    pub async fn commit(&self, changes: Vec<Committed>) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Pending { changes, done })
            .map_err(|_| "the store is closed".to_owned())?;
        wait.await
            .map_err(|_| "the store closed before the flush".to_owned())?
    }

    /// Queues `changes` without waiting; used while holding the write lock so that
    /// queue order is `seq` order. Returns the receiver to wait on.
    pub fn enqueue(&self, changes: Vec<Committed>) -> oneshot::Receiver<Result<(), String>> {
        let (done, wait) = oneshot::channel();
        // A send error drops `done`, which the waiter sees as "store closed".
        let _ = self.tx.send(Pending { changes, done });
        wait
    }
}

async fn run(db: sled::Db, mut rx: mpsc::UnboundedReceiver<Pending>, publish: Publish) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while let Ok(next) = rx.try_recv() {
            batch.push(next);
        }
        let result = db
            .flush_async()
            .await
            .map(|_| ())
            .map_err(|e| format!("flushing the store failed: {e}"));
        if result.is_ok() {
            let changes: Vec<Committed> = batch
                .iter_mut()
                .flat_map(|p| std::mem::take(&mut p.changes))
                .collect();
            if !changes.is_empty() {
                publish(changes);
            }
        } else {
            tracing::error!(error = ?result, "store flush failed; writers get 500");
        }
        for pending in batch {
            let _ = pending.done.send(result.clone());
        }
    }
}
