//! [`SledStore`] as a [`Lifecycle`]: its health, the recovery from a failed disk, flushes,
//! the durable feed heads and the token key.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use super::super::{Failure, Lifecycle, Reseed, StoreError, TimeHook};
use super::{SledStore, probe_disk};
use crate::protocol::{Seq, UserId};
use crate::sync::lock;

#[async_trait::async_trait]
impl Lifecycle for SledStore {
    fn describe(&self) -> String {
        format!("sled in {}", self.dir.display())
    }

    fn as_sled(&self) -> Option<&SledStore> {
        Some(self)
    }

    fn failure(&self) -> Option<Failure> {
        self.health.failure()
    }

    async fn wait_failed(&self) {
        self.health.wait_failed().await;
    }

    /// Reads then wait for a failed handle to be replaced instead of failing.
    fn recovery_runs(&self) {
        self.recovering.store(true, Ordering::SeqCst);
    }

    /// Recovers a failed store in two steps. First, at once, the failed database handle
    /// (which sled then fails reads on too) is replaced by one opened afresh from disk:
    /// every refused change that reached the disk all the same is taken back
    /// (`undo.rs`), the indexes and durable marks are rebuilt and `reseed` is called
    /// with every user's last `seq` while no write can run (the hub takes them and
    /// closes every channel, so each device resyncs from its cursor). Then, once the
    /// disk takes a write again, writes are accepted.
    fn recover(&self, reseed: Reseed) -> Result<bool, StoreError> {
        if self.health.failure().is_none() {
            return Ok(false);
        }
        let reserve = lock(&self.reserve).clone();
        if self.health.handle_broken() {
            // Room for the reopen (sled writes as it opens).
            reserve.release();
            self.reopen(reseed)?;
            self.health.handle_replaced();
            tracing::warn!(
                "store reopened for reads; writes stay refused until the disk takes them"
            );
        }
        if let Err(e) = probe_disk(&self.dir).and_then(|()| reserve.fill()) {
            tracing::debug!(error = %e, "the disk still takes no writes");
            return Ok(false);
        }
        self.health.clear();
        tracing::info!("the disk takes writes again; the store accepts them");
        Ok(true)
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.writable()?;
        crate::embedded::flush(&self.backend()?.db).await?;
        Ok(())
    }

    /// How long each successful flush takes (the first observer only).
    fn on_commit(&self, observe: TimeHook) {
        let _ = self.flush_hooks.observer.set(observe);
    }

    async fn size(&self) -> Result<u64, StoreError> {
        Ok(self.backend()?.db.size_on_disk()?)
    }

    async fn last_seqs(&self) -> Result<HashMap<UserId, Seq>, StoreError> {
        Ok(self.lock().last_seqs())
    }

    /// `user`'s last `seq` known to be on disk.
    fn durable_seq(&self, user: &UserId) -> Seq {
        lock(&self.durable).get(user).copied().unwrap_or(Seq::ZERO)
    }

    async fn token_key(&self, fresh: [u8; 32]) -> Result<Vec<u8>, StoreError> {
        let key = b"token_key";
        let backend = self.backend()?;
        let meta = backend.trees.meta.clone();
        if meta
            .compare_and_swap(key, None as Option<&[u8]>, Some(&fresh[..]))?
            .is_ok()
        {
            // A new key: on disk before any token is signed with it.
            backend.db.flush()?;
        }
        meta.get(key)?
            .map(|v| v.to_vec())
            .ok_or_else(|| StoreError::Corrupt("token key missing".to_owned()))
    }
}
