//! The statements a batch runs, and its rows as the arrays they take. Every lookup is
//! by key, written so that no plan can turn it into a scan of a table.

use super::super::super::StoreError;
use super::super::super::records::{NotificationRecord, encode};
use super::super::seq_sql;
use crate::protocol::UserId;

/// Locks (creating when new) the head of each user, in the order given, and reads it
/// and the nodes watching the user (`watch`).
pub(super) const LOCK_HEADS: &str = "INSERT INTO feed_heads (user_id, seq)
     SELECT u, 0 FROM unnest($1::text[]) AS u
     ON CONFLICT (user_id) DO UPDATE SET seq = feed_heads.seq
     RETURNING user_id, seq, watchers";

/// Every notification the batch names: by id, by appNotificationId, by group. Each
/// lookup is a `LATERAL` subquery the planner cannot flatten (`LIMIT` / `OFFSET 0`), so
/// it stays an index lookup per key whatever the table's size (a join of the arrays
/// could be planned as a hash join over the whole table).
pub(super) const READ: &str = "SELECT n.user_id, n.seq, n.record FROM unnest($1::text[], $2::text[]) AS k(u, i)
         CROSS JOIN LATERAL (SELECT user_id, seq, record FROM notifications
             WHERE user_id = k.u AND id = k.i LIMIT 1) n
     UNION ALL SELECT n.user_id, n.seq, n.record FROM unnest($3::text[], $4::text[], $5::text[]) AS k(u, h, a)
         CROSS JOIN LATERAL (SELECT user_id, seq, record FROM notifications
             WHERE user_id = k.u AND host = k.h AND app_id = k.a
                 AND app_id IS NOT NULL LIMIT 1) n
     UNION ALL SELECT n.user_id, n.seq, n.record FROM unnest($6::text[], $7::text[], $8::text[]) AS k(u, h, g)
         CROSS JOIN LATERAL (SELECT user_id, seq, record FROM notifications
             WHERE user_id = k.u AND host = k.h AND group_name = k.g OFFSET 0) n";

/// Writes each changed notification's last version, moves each user's head and what
/// they keep (rows the batch locked; by key, as `LOCK_HEADS`; the versions replaced are
/// read by key from the statement's snapshot, which does not see its own writes) and
/// announces the batch when `$13` says another node watches one of its users: one
/// statement.
pub(super) const WRITE: &str = "WITH new AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[],
             $6::text[], $7::bigint[], $8::bytea[]) AS r(u, i, s, h, a, g, e, rec)),
     old AS (
         SELECT n.user_id AS u, octet_length(n.record) AS len FROM new
         CROSS JOIN LATERAL (SELECT user_id, record FROM notifications
             WHERE user_id = new.u AND id = new.i LIMIT 1) n),
     kept AS (
         SELECT u, sum(n) AS n, sum(len) AS len FROM (
             SELECT u, 1 AS n, octet_length(rec) AS len FROM new
             UNION ALL SELECT u, -1, -len FROM old) d
         GROUP BY u),
     written AS (
         INSERT INTO notifications (user_id, id, seq, host, app_id, group_name, expires, record)
         SELECT * FROM new
         ON CONFLICT (user_id, id) DO UPDATE SET seq = EXCLUDED.seq,
             host = EXCLUDED.host, app_id = EXCLUDED.app_id,
             group_name = EXCLUDED.group_name, expires = EXCLUDED.expires,
             record = EXCLUDED.record
         RETURNING 1),
     moved AS (
         INSERT INTO feed_heads (user_id, seq, kept, kept_bytes)
         SELECT h.u, h.s, coalesce(k.n, 0), coalesce(k.len, 0)
         FROM unnest($9::text[], $10::bigint[]) AS h(u, s) LEFT JOIN kept k ON k.u = h.u
         ON CONFLICT (user_id) DO UPDATE SET seq = EXCLUDED.seq,
             kept = feed_heads.kept + EXCLUDED.kept,
             kept_bytes = feed_heads.kept_bytes + EXCLUDED.kept_bytes
         RETURNING 1)
     SELECT pg_notify($11, $12) WHERE $13";

/// A batch of plain posts (no `appNotificationId`: nothing to read first) in one
/// statement: each user's head moved by the user's count of posts, and what they keep
/// by those posts and their bytes (locking it, in user order; a concurrent writer's
/// commit is waited for and built on), the rows written with `seq`s counted back from
/// the new head (`back`: 0 for the user's last post), the batch announced when a node
/// other than `$14` watches one of its users (`watch`; its changes carried in `$13`
/// when they fit), and the new heads returned. The records were encoded before their
/// `seq`s were known: the column is the one that counts (`note_of`).
pub(super) const POSTS: &str = "WITH heads AS (
         INSERT INTO feed_heads (user_id, seq, kept, kept_bytes)
         SELECT u, n, n, len FROM unnest($1::text[], $2::bigint[], $12::bigint[]) AS p(u, n, len)
         ON CONFLICT (user_id) DO UPDATE SET seq = feed_heads.seq + EXCLUDED.seq,
             kept = feed_heads.kept + EXCLUDED.kept,
             kept_bytes = feed_heads.kept_bytes + EXCLUDED.kept_bytes
         RETURNING user_id, seq, watchers),
     written AS (
         INSERT INTO notifications (user_id, id, seq, host, app_id, group_name, expires, record)
         SELECT r.u, r.i, h.seq - r.back, r.h, NULL, r.g, r.e, r.rec
         FROM unnest($3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[],
             $8::bigint[], $9::bytea[]) AS r(u, i, back, h, g, e, rec)
         JOIN heads h ON h.user_id = r.u
         RETURNING 1),
     announced AS (
         SELECT pg_notify($10, $11 || string_agg(E'\\n' || seq::text || ' ' || user_id, '') || $13)
         FROM heads HAVING bool_or(cardinality(array_remove(watchers, $14)) > 0))
     SELECT h.user_id, h.seq FROM heads h LEFT JOIN announced ON true";

/// The plan's rows as the columns `WRITE` and `POSTS` takes.
pub(super) struct Rows<'a> {
    pub users: Vec<&'a str>,
    pub ids: Vec<&'a str>,
    pub seqs: Vec<i64>,
    pub hosts: Vec<&'a str>,
    pub apps: Vec<Option<&'a str>>,
    pub groups: Vec<Option<&'a str>>,
    pub expires: Vec<i64>,
    pub records: Vec<Vec<u8>>,
}

impl<'a> Rows<'a> {
    pub fn of(rows: &'a [(UserId, NotificationRecord)]) -> Result<Self, StoreError> {
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
