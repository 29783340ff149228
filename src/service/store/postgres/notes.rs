//! Notifications and the feed in PostgreSQL.
//!
//! Every change is one transaction: it first takes the user's next `seq` from
//! `feed_heads` (`INSERT ... ON CONFLICT DO UPDATE`, whose row lock orders the user's
//! writers, so `seq` order is commit order), writes the notification's row, which
//! carries the `seq`, and announces itself with `pg_notify`. The caller is answered
//! after the commit; the change is then published ([`PgStore::advance`]).
//!
//! A change that finds nothing to change rolls back, so no `seq` is spent on it.

use std::time::Instant;

use deadpool_postgres::Transaction;

use super::super::records::{NotificationRecord, decode, encode};
use super::super::{Committed, FeedScan, StoreError, Stored, changed, is_live, posted};
use super::follow::payload;
use super::{CHANNEL, LOCK_PURGE, PgStore, col, seq_of, seq_sql};
use crate::protocol::validate::StatePatch;
use crate::protocol::{
    NotificationContent, NotificationId, Seq, Status, Timestamp, UserId, UserState,
};

const RECORD: &str = "SELECT record FROM notifications";

impl PgStore {
    pub(super) async fn upsert(
        &self,
        user: &UserId,
        content: NotificationContent,
        now: Timestamp,
    ) -> Result<Stored, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.fault(e))?;
        let seq = self.next_seq(&tx, user).await?;
        let old = match &content.app_notification_id {
            Some(app_id) => {
                let sql = format!("{RECORD} WHERE user_id = $1 AND host = $2 AND app_id = $3");
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
                    [&user.as_str(), &content.target_host_name, app_id];
                self.record_in(&tx, &sql, &params).await?
            }
            None => None,
        };
        let record = posted(old.as_ref(), seq, content, now);
        self.write(tx, user, &record).await?;
        // Publishing may read the database: not while holding a pooled connection.
        drop(client);
        Ok(self.stored(user, record).await)
    }

    /// Applies `edit` to a live notification's state, with a new `seq`.
    pub(super) async fn change(
        &self,
        user: &UserId,
        id: &NotificationId,
        now: Timestamp,
        edit: impl Fn(&mut UserState) + Send,
    ) -> Result<Option<Stored>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.fault(e))?;
        let seq = self.next_seq(&tx, user).await?;
        let sql = format!("{RECORD} WHERE user_id = $1 AND id = $2");
        let old = self
            .record_in(&tx, &sql, &[&user.as_str(), &id.as_str()])
            .await?;
        let Some(old) = old.filter(|r| is_live(r, now)) else {
            // Dropping the transaction rolls it back: the `seq` is not spent.
            return Ok(None);
        };
        let record = changed(&old, seq, now, edit);
        self.write(tx, user, &record).await?;
        drop(client);
        Ok(Some(self.stored(user, record).await))
    }

    pub(super) async fn update_state(
        &self,
        user: &UserId,
        id: &NotificationId,
        patch: StatePatch,
        now: Timestamp,
    ) -> Result<Option<Stored>, StoreError> {
        self.change(user, id, now, |state| patch.apply_to(state))
            .await
    }

    pub(super) async fn delete(
        &self,
        user: &UserId,
        id: &NotificationId,
        now: Timestamp,
    ) -> Result<Option<Stored>, StoreError> {
        self.change(user, id, now, |state| state.status = Status::Deleted)
            .await
    }

    pub(super) async fn delete_group(
        &self,
        user: &UserId,
        host: &str,
        group: &str,
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        let rows = self
            .rows(
                &format!("{RECORD} WHERE user_id = $1 AND host = $2 AND group_name = $3"),
                &[&user.as_str(), &host, &group],
            )
            .await?;
        let mut deleted = 0;
        for row in rows {
            let record: NotificationRecord = decode(col(&row, 0)?)?;
            if is_live(&record, now) && self.delete(user, &record.id, now).await?.is_some() {
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    pub(super) async fn get(
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
            Some(row) => {
                Ok(Some(decode::<NotificationRecord>(col(row, 0)?)?).filter(|r| is_live(r, now)))
            }
            None => Ok(None),
        }
    }

    /// The feed after `after`, up to `upto` and never past what this node published
    /// (so a device's backlog and its live changes meet without a gap or an overlap).
    pub(super) async fn feed_scan(
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
            let record: NotificationRecord = decode(col(&row, 0)?)?;
            scan.last_scanned = Some(record.seq);
            scan.records.push(record);
        }
        Ok(scan)
    }

    /// Removes up to `max` expired notifications, unless another node is purging now
    /// (then 0: it will have removed them). `feed_heads` is untouched, so feed
    /// positions never go back.
    pub(super) async fn purge_expired(
        &self,
        now: Timestamp,
        max: usize,
    ) -> Result<usize, StoreError> {
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
        let removed = tx
            .execute(
                "DELETE FROM notifications WHERE ctid IN (
                     SELECT ctid FROM notifications WHERE expires <= $1 LIMIT $2
                     FOR UPDATE SKIP LOCKED)",
                &[&now.as_millis(), &limit],
            )
            .await
            .map_err(|e| self.fault(e))?;
        tx.commit().await.map_err(|e| self.fault(e))?;
        Ok(usize::try_from(removed).unwrap_or(usize::MAX))
    }

    /// Takes `user`'s next `seq` (and the row lock that orders the user's writers).
    async fn next_seq(&self, tx: &Transaction<'_>, user: &UserId) -> Result<Seq, StoreError> {
        let statement = tx
            .prepare_cached(
                "INSERT INTO feed_heads (user_id, seq) VALUES ($1, 1)
                 ON CONFLICT (user_id) DO UPDATE SET seq = feed_heads.seq + 1 RETURNING seq",
            )
            .await
            .map_err(|e| self.fault(e))?;
        let row = tx
            .query_one(&statement, &[&user.as_str()])
            .await
            .map_err(|e| self.fault(e))?;
        Ok(seq_of(col(&row, 0)?))
    }

    async fn record_in(
        &self,
        tx: &Transaction<'_>,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Option<NotificationRecord>, StoreError> {
        let statement = tx.prepare_cached(sql).await.map_err(|e| self.fault(e))?;
        let row = tx
            .query_opt(&statement, params)
            .await
            .map_err(|e| self.fault(e))?;
        row.map(|row| decode(col(&row, 0)?)).transpose()
    }

    /// Writes a notification's new version, announces it and commits.
    async fn write(
        &self,
        tx: Transaction<'_>,
        user: &UserId,
        record: &NotificationRecord,
    ) -> Result<(), StoreError> {
        let statement = tx
            .prepare_cached(
                "INSERT INTO notifications
                     (user_id, id, seq, host, app_id, group_name, expires, record)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (user_id, id) DO UPDATE SET seq = EXCLUDED.seq,
                     host = EXCLUDED.host, app_id = EXCLUDED.app_id,
                     group_name = EXCLUDED.group_name, expires = EXCLUDED.expires,
                     record = EXCLUDED.record",
            )
            .await
            .map_err(|e| self.fault(e))?;
        let content = &record.content;
        tx.execute(
            &statement,
            &[
                &user.as_str(),
                &record.id.as_str(),
                &seq_sql(record.seq),
                &content.target_host_name,
                &content.app_notification_id,
                &content.group_name,
                &content.expiration_date_time.as_millis(),
                &encode(record)?,
            ],
        )
        .await
        .map_err(|e| self.fault(e))?;
        tx.execute(
            "SELECT pg_notify($1, $2)",
            &[&CHANNEL, &payload(user, record.seq, Timestamp::now())],
        )
        .await
        .map_err(|e| self.fault(e))?;
        let started = Instant::now();
        tx.commit().await.map_err(|e| self.fault(e))?;
        self.committed(started);
        Ok(())
    }

    /// Publishes a change this node committed and returns it as stored. A publish that
    /// cannot read the database (a gap to fill, a link lost after the commit) leaves
    /// the change to the catch-up that follows the link's recovery: it is committed.
    async fn stored(&self, user: &UserId, record: NotificationRecord) -> Stored {
        let notification = record.to_notification();
        let change = Committed {
            user: user.clone(),
            seq: record.seq,
            notification: notification.clone(),
        };
        if let Err(e) = self.advance(user, record.seq, Some(change)).await {
            tracing::warn!(error = %e, "a committed change waits for the catch-up to be published");
        }
        Stored {
            notification,
            seq: record.seq,
        }
    }
}
