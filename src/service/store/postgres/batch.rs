//! Group commit on PostgreSQL: many writers, one transaction.
//!
//! A feed write (a post, a state change, a delete, a group delete, of any user) is
//! queued here and its writer waits. The lanes ([`LANES`], each a task with a pooled
//! connection) take what is queued, up to [`MAX_WRITES`] writes, and make it one
//! transaction of two round trips (one for a batch of plain posts, `posts`):
//!
//! 1. `BEGIN`; lock the head of every user in the batch (`feed_heads`, in user order,
//!    so two batches never deadlock), and read every notification the writes name;
//! 2. work out the batch in memory ([`plan`]: each user's writes take consecutive
//!    `seq`s, in queue order); then one statement writes every changed row, moves the
//!    heads and what each user keeps (`UNNEST` of arrays) and sends one `pg_notify`
//!    naming each user's new head; `COMMIT`.
//!
//! The batch holds its users' gates (`follow`) from before it commits until it is
//! published, so the node's own announcement of it never reads it back. Only then is
//! the batch published to this node's hub and every writer answered, so a
//! `201` still means committed (the service's sessions run with
//! `synchronous_commit = on`). A batch that fails fails each of its writers with the
//! same error, and nothing of it is published. A value PostgreSQL cannot hold (a NUL in
//! a text column) is refused before it is queued, so it fails its own writer only.
//!
//! The head locks order each user's writers across lanes and nodes: a user's `seq`
//! order is still commit order, and what a batch reads is what the batches before it
//! committed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Instant;

use deadpool_postgres::Object;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::ToSql;
use tracing::{Instrument, debug_span};

mod posts;
mod statements;
use posts::plain_post;
use statements::{LOCK_HEADS, READ, Rows, WRITE};

use super::super::{Committed, StoreError, Stored};
use super::plan::{self, Plan, Write};
use super::{CHANNEL, PgStore, col, follow, note_of, seq_of, seq_sql, watch};
use crate::protocol::{Timestamp, UserId};
use crate::service::stage;
use crate::service::store::health::Failure;

/// Transactions in flight at once, each on its own pooled connection, each user's
/// writes always in the same lane (so two lanes of a node never wait on each other's
/// head locks). One: the database's cost is per statement more than per row, and on 2
/// cores a second lane only splits the batches; it did no better within the noise
/// (`cargo bench --bench nodes`, 16 posters, alternating runs: one node 5,280 and
/// 8,636 posts/s with 1 lane, 7,803 and 5,763 with 2; two nodes 5,604 and 4,680
/// against 4,380 and 5,207).
pub const LANES: usize = 1;

/// Writes in one transaction at most.
const MAX_WRITES: usize = 256;

/// Writes queued at most; past it writers wait for room.
const QUEUE: usize = 4096;

/// Bytes of a batch's announcement at most (PostgreSQL refuses 8000 or more): a batch
/// closes when one more user would not fit.
const MAX_PAYLOAD: usize = 7_800;

/// What a writer is answered: the versions its write made, or why it failed.
pub(super) type Answer = Result<Vec<Stored>, StoreError>;

/// A write waiting for its batch.
struct Queued {
    write: Write,
    done: oneshot::Sender<Answer>,
}

/// Where writers queue their writes: one queue per lane, each user's writes always on
/// the same one.
pub(super) struct Queue {
    lanes: Vec<mpsc::Sender<Queued>>,
}

impl Queue {
    /// The queue of the lane that takes `user`'s writes.
    fn of(&self, user: &UserId) -> &mpsc::Sender<Queued> {
        if let [only] = self.lanes.as_slice() {
            return only;
        }
        let mut hasher = std::hash::DefaultHasher::new();
        user.hash(&mut hasher);
        let lane = usize::try_from(hasher.finish() % self.lanes.len() as u64).unwrap_or(0);
        &self.lanes[lane]
    }
}

/// One lane's end of its queue, and a write that did not fit its last batch.
pub(super) struct Intake {
    rx: mpsc::Receiver<Queued>,
    carry: Option<Queued>,
}

/// A new queue and its lanes' ends.
pub(super) fn queue() -> (Queue, Vec<Intake>) {
    let (lanes, intakes) = (0..LANES)
        .map(|_| {
            let (tx, rx) = mpsc::channel(QUEUE);
            (tx, Intake { rx, carry: None })
        })
        .unzip();
    (Queue { lanes }, intakes)
}

impl PgStore {
    /// Queues `write` for the next batch and waits until it is committed (and
    /// published): the versions it made.
    pub(super) async fn submit(&self, write: Write) -> Answer {
        storable(&write)?;
        let closed = || StoreError::Unavailable(Failure::other("the store is closed"));
        let (done, answer) = oneshot::channel();
        self.queue
            .of(&write.user)
            .send(Queued { write, done })
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Commits one batch, publishes it, and answers its writers. The batch's users'
    /// gates are held from before the commit until it is published, so the node's own
    /// announcement of it, which may come first, waits and then has nothing to read.
    async fn run_batch(&self, batch: Vec<Queued>) {
        let (writes, answers): (Vec<Write>, Vec<_>) =
            batch.into_iter().map(|q| (q.write, q.done)).unzip();
        let mut users: Vec<&UserId> = writes.iter().map(|w| &w.user).collect();
        users.sort_unstable();
        users.dedup();
        let _held = self.follow.hold(&users).await;
        let committed = self
            .commit_batch(&writes)
            .instrument(debug_span!(target: stage::TARGET, "flush"))
            .await;
        match committed {
            Ok(plan) => {
                let stored = self
                    .publish_batch(&writes, plan)
                    .instrument(debug_span!(target: stage::TARGET, "publish"))
                    .await;
                for (answer, stored) in answers.into_iter().zip(stored) {
                    let _ = answer.send(Ok(stored));
                }
            }
            Err(e) => {
                for answer in answers {
                    let _ = answer.send(Err(same(&e)));
                }
            }
        }
    }

    /// One transaction for `writes`; on failure the connection is left clean (or
    /// dropped) and nothing is committed.
    async fn commit_batch(&self, writes: &[Write]) -> Result<Plan, StoreError> {
        let client = self.client().await?;
        let result = self.transact(&client, writes).await;
        if result.is_err() && client.batch_execute("ROLLBACK").await.is_err() {
            // It cannot say whether a transaction is open: not back to the pool.
            let _ = Object::take(client);
        }
        result
    }

    async fn transact(&self, client: &Object, writes: &[Write]) -> Result<Plan, StoreError> {
        if writes.iter().all(plain_post) {
            return self.posts_in_one_trip(client, writes).await;
        }
        let wanted = plan::wanted(writes);
        let (lock, read) = tokio::try_join!(
            client.prepare_cached(LOCK_HEADS),
            client.prepare_cached(READ)
        )
        .map_err(|e| self.fault(e))?;
        let [id_users, ids] = &wanted.ids;
        let [app_users, app_hosts, apps] = &wanted.apps;
        let [group_users, group_hosts, groups] = &wanted.groups;
        let lock_params: [&(dyn ToSql + Sync); 1] = [&wanted.users];
        let read_params: [&(dyn ToSql + Sync); 8] = [
            id_users,
            ids,
            app_users,
            app_hosts,
            apps,
            group_users,
            group_hosts,
            groups,
        ];
        let reads = !(ids.is_empty() && apps.is_empty() && groups.is_empty());
        // One round trip: all are sent before any answer is awaited.
        let (begun, heads, found) = tokio::join!(
            client.batch_execute("BEGIN"),
            client.query(&lock, &lock_params),
            async {
                if reads {
                    client.query(&read, &read_params).await
                } else {
                    Ok(Vec::new())
                }
            },
        );
        begun.map_err(|e| self.fault(e))?;
        let heads = heads.map_err(|e| self.fault(e))?;
        let watchers = heads
            .iter()
            .map(|row| col::<Vec<String>>(row, 2))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let heard = watch::heard_elsewhere(watchers.iter().map(Vec::as_slice), &self.node);
        let heads = heads
            .iter()
            .map(|row| Ok((UserId::new(col::<String>(row, 0)?), seq_of(col(row, 1)?))))
            .collect::<Result<HashMap<_, _>, StoreError>>()?;
        let found = found
            .map_err(|e| self.fault(e))?
            .iter()
            .map(|row| {
                let record = note_of(row, 1)?;
                Ok((UserId::new(col::<String>(row, 0)?), record))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let plan = plan::plan(writes, found, heads);
        if plan.rows.is_empty() {
            // Nothing to change (every write found nothing live): no `seq` spent.
            client
                .batch_execute("ROLLBACK")
                .await
                .map_err(|e| self.fault(e))?;
            return Ok(plan);
        }
        self.write_and_commit(client, &plan, heard).await?;
        Ok(plan)
    }

    /// The plan's rows and heads, its announcement (when `heard`: another node watches
    /// one of its users), and the commit: one round trip.
    async fn write_and_commit(
        &self,
        client: &Object,
        plan: &Plan,
        heard: bool,
    ) -> Result<(), StoreError> {
        // Prepared (once per connection), so that it is sent whole on its first poll,
        // before the COMMIT.
        let write = client
            .prepare_cached(WRITE)
            .await
            .map_err(|e| self.fault(e))?;
        let rows = Rows::of(&plan.rows)?;
        let (head_users, head_seqs): (Vec<&str>, Vec<i64>) = plan
            .heads
            .iter()
            .map(|(user, seq)| (user.as_str(), seq_sql(*seq)))
            .unzip();
        let mut announcement = String::new();
        if heard {
            announcement = follow::batch_payload(&plan.heads, Timestamp::now());
            announcement += &follow::carried(plan, &rows.records, announcement.len());
        }
        let params: [&(dyn ToSql + Sync); 13] = [
            &rows.users,
            &rows.ids,
            &rows.seqs,
            &rows.hosts,
            &rows.apps,
            &rows.groups,
            &rows.expires,
            &rows.records,
            &head_users,
            &head_seqs,
            &CHANNEL,
            &announcement,
            &heard,
        ];
        let started = Instant::now();
        let (written, committed) = tokio::join!(
            client.execute(&write, &params),
            client.batch_execute("COMMIT")
        );
        // A failed statement aborts the transaction, and the COMMIT after it then
        // rolls back: any error means nothing was committed (or, for a lost link, that
        // the catch-up will publish whatever was).
        written.map_err(|e| self.fault(e))?;
        committed.map_err(|e| self.fault(e))?;
        self.committed(started);
        Ok(())
    }

    /// Publishes a committed batch, user by user in `seq` order, and returns what each
    /// writer made, as stored.
    async fn publish_batch(&self, writes: &[Write], plan: Plan) -> Vec<Vec<Stored>> {
        let mut by_user: BTreeMap<UserId, Vec<Committed>> = BTreeMap::new();
        let mut answers = Vec::with_capacity(plan.made.len());
        for (write, records) in writes.iter().zip(plan.made) {
            let write_user = &write.user;
            let mut stored = Vec::with_capacity(records.len());
            for record in records {
                let notification = record.to_notification();
                by_user
                    .entry(write_user.clone())
                    .or_default()
                    .push(Committed {
                        user: write_user.clone(),
                        seq: record.seq,
                        notification: notification.clone(),
                    });
                stored.push(Stored {
                    notification,
                    seq: record.seq,
                });
            }
            answers.push(stored);
        }
        for (user, changes) in by_user {
            if let Err(e) = self.publish_held(&user, changes).await {
                tracing::warn!(error = %e, "a committed change waits for the catch-up to be published");
            }
        }
        answers
    }
}

/// Starts the lanes; they end when the store is dropped.
pub(super) fn start(store: &Arc<PgStore>, intakes: Vec<Intake>) {
    for mut intake in intakes {
        let weak = Arc::downgrade(store);
        let stop = store.stop.clone();
        store.tasks.spawn(async move {
            loop {
                let batch = tokio::select! {
                    () = stop.cancelled() => return,
                    batch = next_batch(&mut intake) => batch,
                };
                let (Some(batch), Some(store)) = (batch, weak.upgrade()) else {
                    return;
                };
                store.run_batch(batch).await;
            }
        });
    }
}

/// The next batch: the first write to come, and every one queued behind it that fits.
async fn next_batch(intake: &mut Intake) -> Option<Vec<Queued>> {
    let first = match intake.carry.take() {
        Some(carried) => carried,
        None => intake.rx.recv().await?,
    };
    let mut users = Announced::default();
    users.admit(&first.write.user);
    let mut batch = vec![first];
    while batch.len() < MAX_WRITES {
        let Ok(next) = intake.rx.try_recv() else {
            break;
        };
        if !users.admit(&next.write.user) {
            intake.carry = Some(next);
            break;
        }
        batch.push(next);
    }
    Some(batch)
}

/// The users a batch's announcement will name, and its size.
#[derive(Default)]
struct Announced {
    users: HashSet<UserId>,
    bytes: usize,
}

impl Announced {
    /// Whether a write of `user` fits the announcement (and counts it if so).
    fn admit(&mut self, user: &UserId) -> bool {
        if self.users.contains(user) {
            return true;
        }
        let more = follow::entry_size(user);
        if !self.users.is_empty() && self.bytes + more > MAX_PAYLOAD {
            return false;
        }
        self.bytes += more;
        self.users.insert(user.clone());
        true
    }
}

/// Refuses a write whose text PostgreSQL cannot store (a NUL), before it can fail a
/// whole batch. (The HTTP edge refuses these first; this keeps the promise whoever
/// calls.)
fn storable(write: &Write) -> Result<(), StoreError> {
    let mut texts = vec![write.user.as_str()];
    match &write.op {
        plan::Op::Upsert(content) => {
            texts.push(&content.target_host_name);
            texts.extend(content.app_notification_id.as_deref());
            texts.extend(content.group_name.as_deref());
        }
        plan::Op::Change(id, _) => texts.push(id.as_str()),
        plan::Op::DeleteGroup { host, group } => texts.extend([host.as_str(), group.as_str()]),
    }
    if texts.iter().any(|t| t.contains('\0')) {
        return Err(StoreError::Invalid(
            "a value holds a NUL character, which the database cannot store".to_owned(),
        ));
    }
    Ok(())
}

/// `error` again, for the next writer of a failed batch (each gets the same).
fn same(error: &StoreError) -> StoreError {
    match error {
        StoreError::Unavailable(failure) => StoreError::Unavailable(failure.clone()),
        StoreError::Invalid(m) => StoreError::Invalid(m.clone()),
        StoreError::Corrupt(m) => StoreError::Corrupt(m.clone()),
        StoreError::Record(e) => StoreError::Corrupt(e.to_string()),
        other => StoreError::Database(other.to_string()),
    }
}
