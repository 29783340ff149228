//! The PostgreSQL schema and its migrations, applied when a node starts.
//!
//! Versioned: `tidings_schema` holds every version applied. All of it runs in one
//! transaction under an advisory lock, so two nodes starting at once apply each
//! migration exactly once (the second waits, then finds nothing to do), and a failed
//! migration leaves the database as it was. A database of a newer schema than this build
//! knows is refused, so an old node never writes to a newer layout.
//!
//! Accounts are plain columns (readable with `psql`); a notification keeps its full
//! state in `record` (the versioned postcard encoding the sled store uses too), beside
//! the columns the queries need. `feed_heads` holds each user's last `seq` and what they
//! keep (`kept` notifications of `kept_bytes` record bytes): every statement that adds
//! or removes a user's rows moves these in the same transaction, under the head's row
//! lock, and the `watchers` (the ids of the nodes holding a channel of the user) are
//! read there to decide whether to announce the batch.

use tokio_postgres::Client;

use super::super::StoreError;
use super::{LOCK_MIGRATE, sql_error};

/// Each migration, in order; version N is `MIGRATIONS[N - 1]`. Never edit one that has
/// shipped: add another.
const MIGRATIONS: &[&str] = &[
    // 1: everything the service keeps.
    r"
    CREATE TABLE meta (key text PRIMARY KEY, value bytea NOT NULL);
    CREATE TABLE users (
        id text PRIMARY KEY,
        name text NOT NULL UNIQUE,
        password_hash text NOT NULL,
        created bigint NOT NULL
    );
    CREATE TABLE apps (
        client_id text PRIMARY KEY,
        host text NOT NULL,
        secret_hash bytea NOT NULL,
        created bigint NOT NULL
    );
    CREATE TABLE devices (
        id text PRIMARY KEY,
        user_id text NOT NULL,
        name text NOT NULL,
        platform text NOT NULL,
        refresh_hash bytea NOT NULL,
        revoked boolean NOT NULL DEFAULT false,
        revoked_at bigint,
        acked_seq bigint NOT NULL DEFAULT 0,
        last_seen bigint,
        created bigint NOT NULL,
        refresh_issued bigint,
        retired_hashes bytea[] NOT NULL DEFAULT '{}'
    );
    CREATE INDEX devices_by_user ON devices (user_id);
    CREATE INDEX devices_by_revocation ON devices (revoked_at) WHERE revoked_at IS NOT NULL;
    CREATE TABLE subscriptions (
        unsid text PRIMARY KEY,
        user_id text NOT NULL,
        device_id text NOT NULL,
        host text NOT NULL,
        expires bigint NOT NULL,
        UNIQUE (device_id, host)
    );
    CREATE TABLE feed_heads (user_id text PRIMARY KEY, seq bigint NOT NULL);
    CREATE TABLE notifications (
        user_id text NOT NULL,
        id text NOT NULL,
        seq bigint NOT NULL,
        host text NOT NULL,
        app_id text,
        group_name text,
        expires bigint NOT NULL,
        record bytea NOT NULL,
        PRIMARY KEY (user_id, id),
        UNIQUE (user_id, seq)
    );
    CREATE INDEX notifications_by_app_id ON notifications (user_id, host, app_id)
        WHERE app_id IS NOT NULL;
    CREATE INDEX notifications_by_expiry ON notifications (expires);
    ",
    // 2: each user's usage kept beside their head (the quota reads it, not a count of
    // their rows), counted once from the rows there are.
    r"
    ALTER TABLE feed_heads ADD COLUMN kept bigint NOT NULL DEFAULT 0,
        ADD COLUMN kept_bytes bigint NOT NULL DEFAULT 0;
    UPDATE feed_heads h SET kept = c.kept, kept_bytes = c.kept_bytes
        FROM (SELECT user_id, count(*) AS kept, sum(octet_length(record)) AS kept_bytes
              FROM notifications GROUP BY user_id) c
        WHERE c.user_id = h.user_id;
    ",
    // 3: the nodes that hold a channel of each user (their ids), marked under the
    // head's row lock: a batch announces itself only when another node watches one of
    // its users (`watch.rs`).
    r"
    ALTER TABLE feed_heads ADD COLUMN watchers text[] NOT NULL DEFAULT '{}';
    ",
];

/// The schema version this build writes.
#[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)] // a handful
pub const CURRENT: i32 = MIGRATIONS.len() as i32;

/// Brings the database to [`CURRENT`]; returns the versions applied now.
pub async fn migrate(client: &mut Client) -> Result<Vec<i32>, StoreError> {
    let tx = client.transaction().await.map_err(sql_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_MIGRATE])
        .await
        .map_err(sql_error)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS tidings_schema (
            version integer PRIMARY KEY,
            applied timestamptz NOT NULL DEFAULT now()
        )",
    )
    .await
    .map_err(sql_error)?;
    let found: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM tidings_schema", &[])
        .await
        .map_err(sql_error)?
        .get(0);
    if found > CURRENT {
        return Err(StoreError::Commit(format!(
            "the database's schema is version {found}, newer than this tidings knows ({CURRENT}); upgrade this node to the version the others run"
        )));
    }
    let mut applied = Vec::new();
    let done = usize::try_from(found).unwrap_or_default();
    for (version, sql) in (1..).zip(MIGRATIONS).skip(done) {
        tx.batch_execute(sql).await.map_err(sql_error)?;
        tx.execute(
            "INSERT INTO tidings_schema (version) VALUES ($1)",
            &[&version],
        )
        .await
        .map_err(sql_error)?;
        applied.push(version);
    }
    tx.commit().await.map_err(sql_error)?;
    Ok(applied)
}
