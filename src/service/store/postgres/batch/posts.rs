//! A batch of plain posts (no `appNotificationId`, so nothing to read first): one
//! round trip, [`POSTS`] alone: one statement is its own transaction (its implicit
//! transaction commits before the server reports ready, and the answer is awaited until
//! then), so no `BEGIN` and `COMMIT` around it, two messages fewer for the server to
//! parse and answer per batch. The batch is worked out from heads of
//! zero, then moved to the heads the database had.

use std::collections::HashMap;
use std::time::Instant;

use deadpool_postgres::Object;
use tokio_postgres::types::ToSql;

use super::super::super::StoreError;
use super::super::{CHANNEL, PgStore, col, follow, seq_of, seq_sql};
use super::plan::{self, Plan, Write};
use super::statements::{POSTS, Rows};
use crate::protocol::{Seq, Timestamp, UserId};

impl PgStore {
    /// A batch of plain posts: [`POSTS`], committed as it ends, in one round trip.
    pub(super) async fn posts_in_one_trip(
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
        let mut bytes: HashMap<&str, i64> = HashMap::with_capacity(plan.heads.len());
        for (user, record) in rows.users.iter().zip(&rows.records) {
            *bytes.entry(user).or_default() += i64::try_from(record.len()).unwrap_or(i64::MAX);
        }
        let (users, counts): (Vec<&str>, Vec<i64>) = plan
            .heads
            .iter()
            .map(|(user, head)| (user.as_str(), seq_sql(*head)))
            .unzip();
        let sizes: Vec<i64> = users
            .iter()
            .map(|user| bytes.get(user).copied().unwrap_or_default())
            .collect();
        let at = Timestamp::now().as_millis().to_string();
        let carried = follow::carried(&plan, &rows.records, follow::heads_size(&plan));
        let params: [&(dyn ToSql + Sync); 14] = [
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
            &sizes,
            &carried,
            &self.node,
        ];
        let started = Instant::now();
        // Committed before the server says it is ready for the next statement, which
        // the answer waits for (tokio-postgres ends a query at `ReadyForQuery`).
        let moved = client
            .query(&posts, &params)
            .await
            .map_err(|e| self.fault(e))?;
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
}

/// Whether `write` is a post with no `appNotificationId`: it reads nothing first.
pub(super) fn plain_post(write: &Write) -> bool {
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
    for (user, head) in plan.heads.iter_mut().chain(&mut plan.before) {
        *head = Seq(head.0 + offset(user)?);
    }
    Ok(())
}
