//! Group commit on PostgreSQL: many writers, one transaction.
//!
//! A feed write (a post, a state change, a delete, a group delete, of any user) is
//! queued here and its writer waits. A few lanes ([`LANES`], each a task with a pooled
//! connection) take what is queued, up to [`MAX_WRITES`] writes, and make it one
//! transaction of two round trips:
//!
//! 1. `BEGIN`; lock the head of every user in the batch (`feed_heads`, in user order,
//!    so two batches never deadlock), and read every notification the writes name;
//! 2. work out the batch in memory ([`plan`]: each user's writes take consecutive
//!    `seq`s, in queue order); then one statement writes every changed row, moves the
//!    heads (`UNNEST` of arrays) and sends one `pg_notify` naming each user's new head;
//!    `COMMIT`.
//!
//! Only then is the batch published to this node's hub and every writer answered, so a
//! `201` still means committed (the service's sessions run with
//! `synchronous_commit = on`). A batch that fails fails each of its writers with the
//! same error, and nothing of it is published. A value PostgreSQL cannot hold (a NUL in
//! a text column) is refused before it is queued, so it fails its own writer only.
//!
//! The head locks order each user's writers across lanes and nodes: a user's `seq`
//! order is still commit order, and what a batch reads is what the batches before it
//! committed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use deadpool_postgres::Object;
use tokio::sync::{Mutex as AsyncMutex, mpsc, oneshot};
use tokio_postgres::types::ToSql;

use super::super::records::{NotificationRecord, encode};
use super::super::{Committed, StoreError, Stored};
use super::plan::{self, Plan, Write};
use super::{CHANNEL, PgStore, col, follow, note_of, seq_of, seq_sql};
use crate::protocol::{Seq, Timestamp, UserId};
use crate::service::store::health::Failure;

/// Transactions in flight at once, each on its own pooled connection. One: a second
/// lane takes what arrives while the first commits, so both commit smaller batches, and
/// the database's cost is per statement more than per row (`cargo bench --bench nodes`,
/// one node, 16 posters: 1 lane 5,908 posts/s, 2 lanes 5,501, 4 lanes 4,505).
pub const LANES: usize = 1;

/// Writes in one transaction at most.
const MAX_WRITES: usize = 256;

/// Writes queued at most; past it writers wait for room.
const QUEUE: usize = 4096;

/// Bytes of a batch's announcement at most (PostgreSQL refuses 8000 or more): a batch
/// closes when one more user would not fit.
const MAX_PAYLOAD: usize = 7_800;

/// Locks (creating when new) the head of each user, in the order given, and reads it.
const LOCK_HEADS: &str = "INSERT INTO feed_heads (user_id, seq)
     SELECT u, 0 FROM unnest($1::text[]) AS u
     ON CONFLICT (user_id) DO UPDATE SET seq = feed_heads.seq
     RETURNING user_id, seq";

/// Every notification the batch names: by id, by appNotificationId, by group. Each
/// lookup is a `LATERAL` subquery the planner cannot flatten (`LIMIT` / `OFFSET 0`), so
/// it stays an index lookup per key whatever the table's size (a join of the arrays
/// could be planned as a hash join over the whole table).
const READ: &str = "SELECT n.user_id, n.seq, n.record FROM unnest($1::text[], $2::text[]) AS k(u, i)
         CROSS JOIN LATERAL (SELECT user_id, seq, record FROM notifications
             WHERE user_id = k.u AND id = k.i LIMIT 1) n
     UNION ALL SELECT n.user_id, n.seq, n.record FROM unnest($3::text[], $4::text[], $5::text[]) AS k(u, h, a)
         CROSS JOIN LATERAL (SELECT user_id, seq, record FROM notifications
             WHERE user_id = k.u AND host = k.h AND app_id = k.a
                 AND app_id IS NOT NULL LIMIT 1) n
     UNION ALL SELECT n.user_id, n.seq, n.record FROM unnest($6::text[], $7::text[], $8::text[]) AS k(u, h, g)
         CROSS JOIN LATERAL (SELECT user_id, seq, record FROM notifications
             WHERE user_id = k.u AND host = k.h AND group_name = k.g OFFSET 0) n";

/// Writes each changed notification's last version, moves each user's head (rows the
/// batch locked; by key, as `LOCK_HEADS`) and announces the batch: one statement.
const WRITE: &str = "WITH written AS (
         INSERT INTO notifications (user_id, id, seq, host, app_id, group_name, expires, record)
         SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[],
             $6::text[], $7::bigint[], $8::bytea[])
         ON CONFLICT (user_id, id) DO UPDATE SET seq = EXCLUDED.seq,
             host = EXCLUDED.host, app_id = EXCLUDED.app_id,
             group_name = EXCLUDED.group_name, expires = EXCLUDED.expires,
             record = EXCLUDED.record
         RETURNING 1),
     moved AS (
         INSERT INTO feed_heads (user_id, seq) SELECT * FROM unnest($9::text[], $10::bigint[])
         ON CONFLICT (user_id) DO UPDATE SET seq = EXCLUDED.seq
         RETURNING 1)
     SELECT pg_notify($11, $12)";

/// A batch of plain posts (no `appNotificationId`: nothing to read first) in one
/// statement: each user's head moved by the user's count of posts (locking it, in user
/// order; a concurrent writer's commit is waited for and built on), the rows written
/// with `seq`s counted back from the new head (`back`: 0 for the user's last post), the
/// batch announced, and the new heads returned. The records were encoded before their
/// `seq`s were known: the column is the one that counts (`note_of`).
const POSTS: &str = "WITH heads AS (
         INSERT INTO feed_heads (user_id, seq) SELECT * FROM unnest($1::text[], $2::bigint[])
         ON CONFLICT (user_id) DO UPDATE SET seq = feed_heads.seq + EXCLUDED.seq
         RETURNING user_id, seq),
     written AS (
         INSERT INTO notifications (user_id, id, seq, host, app_id, group_name, expires, record)
         SELECT r.u, r.i, h.seq - r.back, r.h, NULL, r.g, r.e, r.rec
         FROM unnest($3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[],
             $8::bigint[], $9::bytea[]) AS r(u, i, back, h, g, e, rec)
         JOIN heads h ON h.user_id = r.u
         RETURNING 1),
     announced AS (
         SELECT pg_notify($10, $11 || string_agg(E'\\n' || seq::text || ' ' || user_id, ''))
         FROM heads)
     SELECT h.user_id, h.seq FROM heads h, announced";

/// What a writer is answered: the versions its write made, or why it failed.
pub(super) type Answer = Result<Vec<Stored>, StoreError>;

/// A write waiting for its batch.
struct Queued {
    write: Write,
    done: oneshot::Sender<Answer>,
}

/// Where writers queue their writes.
pub(super) struct Queue {
    tx: mpsc::Sender<Queued>,
}

/// The lanes' end of the queue, and a write that did not fit the last batch.
pub(super) struct Intake {
    rx: mpsc::Receiver<Queued>,
    carry: Option<Queued>,
}

/// A new queue and its lanes' end.
pub(super) fn queue() -> (Queue, Intake) {
    let (tx, rx) = mpsc::channel(QUEUE);
    (Queue { tx }, Intake { rx, carry: None })
}

impl PgStore {
    /// Queues `write` for the next batch and waits until it is committed (and
    /// published): the versions it made.
    pub(super) async fn submit(&self, write: Write) -> Answer {
        storable(&write)?;
        let closed = || StoreError::Unavailable(Failure::other("the store is closed"));
        let (done, answer) = oneshot::channel();
        self.queue
            .tx
            .send(Queued { write, done })
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Commits one batch, publishes it, and answers its writers.
    async fn run_batch(&self, batch: Vec<Queued>) {
        let (writes, answers): (Vec<Write>, Vec<_>) =
            batch.into_iter().map(|q| (q.write, q.done)).unzip();
        match self.commit_batch(&writes).await {
            Ok(plan) => {
                let stored = self.publish_batch(&writes, plan).await;
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
        let heads = heads
            .map_err(|e| self.fault(e))?
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
        self.write_and_commit(client, &plan).await?;
        Ok(plan)
    }

    /// A batch of plain posts: `BEGIN`, [`POSTS`] and `COMMIT` in one round trip.
    async fn posts_in_one_trip(
        &self,
        client: &Object,
        writes: &[Write],
    ) -> Result<Plan, StoreError> {
        let posts = client
            .prepare_cached(POSTS)
            .await
            .map_err(|e| self.fault(e))?;
        // Worked out from heads of zero: each user's posts numbered from 1, so a user's
        // head in the plan is their count of posts.
        let mut plan = plan::plan(writes, Vec::new(), HashMap::new());
        let count = |user: &UserId| plan.heads.get(user).map_or(0, |head| head.0);
        let rows = Rows::of(&plan.rows)?;
        let back: Vec<i64> = plan
            .rows
            .iter()
            .map(|(user, record)| seq_sql(Seq(count(user) - record.seq.0)))
            .collect();
        let (users, counts): (Vec<&str>, Vec<i64>) = plan
            .heads
            .iter()
            .map(|(user, head)| (user.as_str(), seq_sql(*head)))
            .unzip();
        let at = Timestamp::now().as_millis().to_string();
        let params: [&(dyn ToSql + Sync); 11] = [
            &users,
            &counts,
            &rows.users,
            &rows.ids,
            &back,
            &rows.hosts,
            &rows.groups,
            &rows.expires,
            &rows.records,
            &CHANNEL,
            &at,
        ];
        let started = Instant::now();
        let (begun, moved, committed) = tokio::join!(
            client.batch_execute("BEGIN"),
            client.query(&posts, &params),
            client.batch_execute("COMMIT"),
        );
        begun.map_err(|e| self.fault(e))?;
        let moved = moved.map_err(|e| self.fault(e))?;
        committed.map_err(|e| self.fault(e))?;
        self.committed(started);
        let mut offsets = HashMap::with_capacity(moved.len());
        for row in &moved {
            let user = UserId::new(col::<String>(row, 0)?);
            let offset = seq_of(col(row, 1)?).0.saturating_sub(count(&user));
            offsets.insert(user, offset);
        }
        shift(&mut plan, writes, &offsets)?;
        Ok(plan)
    }

    /// The plan's rows and heads, its announcement, and the commit: one round trip.
    async fn write_and_commit(&self, client: &Object, plan: &Plan) -> Result<(), StoreError> {
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
        let announcement = follow::batch_payload(&plan.heads, Timestamp::now());
        let params: [&(dyn ToSql + Sync); 12] = [
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
            if let Err(e) = self.publish_local(&user, changes).await {
                tracing::warn!(error = %e, "a committed change waits for the catch-up to be published");
            }
        }
        answers
    }
}

/// Starts the lanes; they end when the store is dropped.
pub(super) fn start(store: &Arc<PgStore>, intake: Intake) {
    let intake = Arc::new(AsyncMutex::new(intake));
    for _ in 0..LANES {
        let weak = Arc::downgrade(store);
        let intake = intake.clone();
        let stop = store.stop.clone();
        tokio::spawn(async move {
            loop {
                let batch = tokio::select! {
                    () = stop.cancelled() => return,
                    batch = next_batch(&intake) => batch,
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
async fn next_batch(intake: &AsyncMutex<Intake>) -> Option<Vec<Queued>> {
    let mut intake = intake.lock().await;
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

/// The plan's rows as the columns `WRITE_ROWS` takes.
struct Rows<'a> {
    users: Vec<&'a str>,
    ids: Vec<&'a str>,
    seqs: Vec<i64>,
    hosts: Vec<&'a str>,
    apps: Vec<Option<&'a str>>,
    groups: Vec<Option<&'a str>>,
    expires: Vec<i64>,
    records: Vec<Vec<u8>>,
}

impl<'a> Rows<'a> {
    fn of(rows: &'a [(UserId, NotificationRecord)]) -> Result<Self, StoreError> {
        let mut columns = Rows {
            users: Vec::with_capacity(rows.len()),
            ids: Vec::with_capacity(rows.len()),
            seqs: Vec::with_capacity(rows.len()),
            hosts: Vec::with_capacity(rows.len()),
            apps: Vec::with_capacity(rows.len()),
            groups: Vec::with_capacity(rows.len()),
            expires: Vec::with_capacity(rows.len()),
            records: Vec::with_capacity(rows.len()),
        };
        for (user, record) in rows {
            let content = &record.content;
            columns.users.push(user.as_str());
            columns.ids.push(record.id.as_str());
            columns.seqs.push(seq_sql(record.seq));
            columns.hosts.push(&content.target_host_name);
            columns.apps.push(content.app_notification_id.as_deref());
            columns.groups.push(content.group_name.as_deref());
            columns
                .expires
                .push(content.expiration_date_time.as_millis());
            columns.records.push(encode(record)?);
        }
        Ok(columns)
    }
}

/// Whether `write` is a post with no `appNotificationId`: it reads nothing first.
fn plain_post(write: &Write) -> bool {
    matches!(&write.op, plan::Op::Upsert(content) if content.app_notification_id.is_none())
}

/// Moves a plan worked out from heads of zero to the heads the database had: each
/// user's `seq`s up by the user's `offset`.
fn shift(
    plan: &mut Plan,
    writes: &[Write],
    offsets: &HashMap<UserId, u64>,
) -> Result<(), StoreError> {
    let offset = |user: &UserId| {
        offsets.get(user).copied().ok_or_else(|| {
            StoreError::Corrupt(format!("the database moved no feed head for user {user}"))
        })
    };
    for (write, made) in writes.iter().zip(&mut plan.made) {
        let by = offset(&write.user)?;
        for record in made {
            record.seq = Seq(record.seq.0 + by);
        }
    }
    for (user, record) in &mut plan.rows {
        record.seq = Seq(record.seq.0 + offset(user)?);
    }
    for (user, head) in &mut plan.heads {
        *head = Seq(head.0 + offset(user)?);
    }
    Ok(())
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
        other => StoreError::Postgres(other.to_string()),
    }
}
