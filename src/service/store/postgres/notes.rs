//! [`PgStore`] as [`Notes`]: notifications and the feed in PostgreSQL.
//!
//! Writes (posts, state changes, deletes, group deletes) go through the group committer
//! (`batch`): many writers, one transaction, each user's `seq` taken from `feed_heads`
//! under its row lock, so `seq` order is commit order. A change that finds nothing to
//! change spends no `seq`. Reads (one notification, a feed page) and the purge of
//! expired notifications are plain statements here.

use super::super::records::NotificationRecord;
use super::super::{FeedScan, Notes, StoreError, Stored, Usage, is_live};
use super::plan::{Op, Write};
use super::{LOCK_PURGE, PgStore, col, note_of, seq_sql};
use crate::protocol::validate::StatePatch;
use crate::protocol::{
    NotificationContent, NotificationId, Seq, Status, Timestamp, UserId, UserState,
};

const RECORD: &str = "SELECT seq, record FROM notifications";

#[async_trait::async_trait]
impl Notes for PgStore {
    async fn usage(&self, user: &UserId) -> Result<Usage, StoreError> {
        let rows = self
            .rows(
                "SELECT kept, kept_bytes FROM feed_heads WHERE user_id = $1",
                &[&user.as_str()],
            )
            .await?;
        let (count, bytes): (i64, i64) = match rows.first() {
            Some(row) => (col(row, 0)?, col(row, 1)?),
            None => (0, 0),
        };
        Ok(Usage {
            notifications: u64::try_from(count).unwrap_or_default(),
            bytes: u64::try_from(bytes).unwrap_or_default(),
        })
    }

    async fn upsert(
        &self,
        user: &UserId,
        content: NotificationContent,
        now: Timestamp,
    ) -> Result<Stored, StoreError> {
        let made = self.write_feed(user, Op::Upsert(content), now).await?;
        made.into_iter()
            .next()
            .ok_or_else(|| StoreError::Corrupt("a post made no change".to_owned()))
    }

    async fn update_state(
        &self,
        user: &UserId,
        id: &NotificationId,
        patch: StatePatch,
        now: Timestamp,
    ) -> Result<Option<Stored>, StoreError> {
        let edit = Box::new(move |state: &mut UserState| patch.apply_to(state));
        let made = self
            .write_feed(user, Op::Change(id.clone(), edit), now)
            .await?;
        Ok(made.into_iter().next())
    }

    async fn delete(
        &self,
        user: &UserId,
        id: &NotificationId,
        now: Timestamp,
    ) -> Result<Option<Stored>, StoreError> {
        let edit = Box::new(|state: &mut UserState| state.status = Status::Deleted);
        let made = self
            .write_feed(user, Op::Change(id.clone(), edit), now)
            .await?;
        Ok(made.into_iter().next())
    }

    async fn delete_group(
        &self,
        user: &UserId,
        host: &str,
        group: &str,
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        let op = Op::DeleteGroup {
            host: host.to_owned(),
            group: group.to_owned(),
        };
        Ok(self.write_feed(user, op, now).await?.len())
    }

    async fn get(
        &self,
        user: &UserId,
        id: &NotificationId,
        now: Timestamp,
    ) -> Result<Option<NotificationRecord>, StoreError> {
        let rows = self
            .rows(
                &format!("{RECORD} WHERE user_id = $1 AND id = $2"),
                &[&user.as_str(), &id.as_str()],
            )
            .await?;
        match rows.first() {
            Some(row) => Ok(Some(note_of(row, 0)?).filter(|r| is_live(r, now))),
            None => Ok(None),
        }
    }

    /// The feed after `after`, up to `upto` and never past what this node published
    /// (so a device's backlog and its live changes meet without a gap or an overlap).
    async fn feed_scan(
        &self,
        user: &UserId,
        after: Seq,
        upto: Option<Seq>,
        max: usize,
    ) -> Result<FeedScan, StoreError> {
        let published = self.follow.published(user);
        let upto = upto.map_or(published, |upto| upto.min(published));
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let rows = self
            .rows(
                &format!(
                    "{RECORD} WHERE user_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4"
                ),
                &[&user.as_str(), &seq_sql(after), &seq_sql(upto), &limit],
            )
            .await?;
        let mut scan = FeedScan::default();
        for row in rows {
            let record = note_of(&row, 0)?;
            scan.last_scanned = Some(record.seq);
            scan.records.push(record);
        }
        Ok(scan)
    }

    /// Removes up to `max` expired notifications, unless another node is purging now
    /// (then 0: it will have removed them). Each user's `seq` is untouched, so feed
    /// positions never go back; what they keep goes down by what was removed. Their
    /// heads are locked first, in user order, as a batch locks them before it touches
    /// a row: a purge and a batch never wait on each other in a cycle.
    async fn purge_expired(&self, now: Timestamp, max: usize) -> Result<usize, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.fault(e))?;
        let ours: bool = col(
            &tx.query_one("SELECT pg_try_advisory_xact_lock($1)", &[&LOCK_PURGE])
                .await
                .map_err(|e| self.fault(e))?,
            0,
        )?;
        if !ours {
            return Ok(0);
        }
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let now = now.as_millis();
        let users: Vec<String> = tx
            .query(
                "SELECT user_id FROM feed_heads WHERE user_id IN (
                     SELECT user_id FROM notifications WHERE expires <= $1 LIMIT $2)
                 ORDER BY user_id FOR UPDATE",
                &[&now, &limit],
            )
            .await
            .map_err(|e| self.fault(e))?
            .iter()
            .map(|row| col(row, 0))
            .collect::<Result<_, _>>()?;
        let removed: i64 = col(
            &tx.query_one(
                "WITH gone AS (
                     DELETE FROM notifications WHERE ctid IN (
                         SELECT ctid FROM notifications
                         WHERE expires <= $1 AND user_id = ANY($3) LIMIT $2
                         FOR UPDATE SKIP LOCKED)
                     RETURNING user_id, octet_length(record) AS len),
                 per_user AS (
                     SELECT user_id, count(*) AS n, sum(len) AS len FROM gone GROUP BY user_id),
                 lowered AS (
                     UPDATE feed_heads h SET kept = h.kept - p.n, kept_bytes = h.kept_bytes - p.len
                     FROM per_user p WHERE h.user_id = p.user_id
                     RETURNING 1)
                 SELECT coalesce(sum(n), 0)::bigint FROM per_user",
                &[&now, &limit, &users],
            )
            .await
            .map_err(|e| self.fault(e))?,
            0,
        )?;
        tx.commit().await.map_err(|e| self.fault(e))?;
        Ok(usize::try_from(removed).unwrap_or(usize::MAX))
    }
}

impl PgStore {
    /// One write, committed with whatever else is queued ([`super::batch`]).
    async fn write_feed(
        &self,
        user: &UserId,
        op: Op,
        now: Timestamp,
    ) -> Result<Vec<Stored>, StoreError> {
        self.submit(Write {
            user: user.clone(),
            op,
            now,
        })
        .await
    }
}
