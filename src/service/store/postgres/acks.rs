//! The ack writer: acks and "last seen" are frequent and advisory, so they are gathered
//! in memory and written by one task, all pending devices in one statement; a burst of
//! acks costs a few statements, not one connection each.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::super::StoreError;
use super::{PgStore, seq_sql};
use crate::protocol::{DeviceId, Seq, Timestamp};
use crate::sync::lock;

/// Acks and contacts waiting to be written: device → (highest ack, latest contact).
#[derive(Default)]
pub(super) struct Acks {
    pending: Mutex<HashMap<DeviceId, (Seq, Timestamp)>>,
    wake: Notify,
}

impl Acks {
    pub(super) fn note(&self, device: &DeviceId, seq: Seq, now: Timestamp) {
        let mut pending = lock(&self.pending);
        let entry = pending.entry(device.clone()).or_insert((seq, now));
        entry.0 = entry.0.max(seq);
        entry.1 = entry.1.max(now);
        drop(pending);
        self.wake.notify_one();
    }
}

/// Starts the task that writes acks. It ends when the store stops (after writing what
/// is pending, so acks made before a clean shutdown are kept) or is dropped.
pub(super) fn start_ack_writer(store: &Arc<PgStore>) {
    let weak = Arc::downgrade(store);
    let stop = store.stop.clone();
    store.tasks.spawn(async move {
        loop {
            let Some(store) = weak.upgrade() else { return };
            let stopping = tokio::select! {
                () = stop.cancelled() => true,
                () = store.acks.wake.notified() => false,
            };
            let batch = std::mem::take(&mut *lock(&store.acks.pending));
            if let Err(e) = store.write_acks(batch).await {
                tracing::debug!(error = %e, "acks not recorded");
            }
            if stopping {
                return;
            }
        }
    });
}

impl PgStore {
    async fn write_acks(
        &self,
        batch: HashMap<DeviceId, (Seq, Timestamp)>,
    ) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut ids = Vec::with_capacity(batch.len());
        let mut acked = Vec::with_capacity(batch.len());
        let mut seen = Vec::with_capacity(batch.len());
        for (id, (seq, at)) in batch {
            ids.push(id.as_str().to_owned());
            acked.push(seq_sql(seq));
            seen.push(at.as_millis());
        }
        self.execute(
            "UPDATE devices d SET acked_seq = greatest(d.acked_seq, v.acked),
                 last_seen = greatest(coalesce(d.last_seen, 0), v.seen)
             FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS v(id, acked, seen)
             WHERE d.id = v.id",
            &[&ids, &acked, &seen],
        )
        .await?;
        Ok(())
    }
}
