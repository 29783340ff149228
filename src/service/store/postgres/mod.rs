//! The PostgreSQL store: several service nodes share one database, and any node serves
//! any device.
//!
//! - `schema`: versioned migrations, applied at start under an advisory lock.
//! - `lifecycle`, `accounts`, `devices`, `subscriptions`, `notes`: each of the store's
//!   traits (plain columns; `acks` writes acks in bulk, `recent` keeps lookups made
//!   lately, `sql` runs one statement).
//! - `notes`' writes go through `batch`, the group
//!   committer: concurrent writes of any users in one transaction, each user's `seq`
//!   taken from `feed_heads` under its row lock (so `seq` order is commit order), worked
//!   out in memory by `plan`, announced with one `pg_notify` per batch.
//! - `follow`: publishing. Every node `LISTEN`s; a committed change, its own or another
//!   node's, is published to the node's hub in `seq` order with no gap and no
//!   duplicate: a node reads what it has not published yet, so a lost notification (a
//!   dropped link) costs a read, never a change.
//!
//! A lost database link fails the store (`/healthz` 503, writes answered 503) until the
//! listener or the recovery task finds the database again and has caught up.

mod accounts;
mod acks;
mod batch;
mod devices;
mod follow;
mod lifecycle;
mod notes;
mod plan;
mod recent;
mod schema;
mod sql;
mod subscriptions;
mod watch;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use secrecy::{ExposeSecret, SecretString};
use tokio_postgres_rustls::MakeRustlsConnect;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::health::{Failure, Health};
use super::records::{NotificationRecord, decode};
use super::{Publish, StoreError, StoreTasks, TimeHook};
use crate::protocol::{Seq, Timestamp};

/// Advisory lock keys (one 64-bit space per database; these spell "tidings" plus a
/// number).
const LOCK_MIGRATE: i64 = 0x7469_6469_6e67_0001;
/// The advisory lock a node holds while it purges expired notifications.
pub const LOCK_PURGE: i64 = 0x7469_6469_6e67_0002;

/// The `NOTIFY` channel every committed feed change is announced on.
const CHANNEL: &str = "tidings_feed";
/// The `NOTIFY` channel a revoked device's id is announced on.
const REVOKED: &str = "tidings_revoked";

/// How long a statement may wait for a pooled connection, or a new connection take.
const POOL_WAIT: Duration = Duration::from_secs(5);

/// How to reach the database (`[service] store` and its companions).
#[derive(Clone, Debug)]
pub struct PgConfig {
    /// A libpq-style connection string: `postgres://user@host:port/db?sslmode=require`
    /// or `host=... dbname=...`.
    pub url: String,
    /// The password, when not in the URL (from `store_password_file` or
    /// `TIDINGS_STORE_PASSWORD`).
    pub password: Option<SecretString>,
    /// CAs to trust for TLS to the database, beside the platform's.
    pub ca_file: Option<PathBuf>,
    /// Connections this node keeps open at most.
    pub pool_size: usize,
    /// Feed notifications queued for this node at most; past it they are dropped and
    /// the node catches up every user from the database instead (see `follow`).
    pub notify_queue: usize,
    /// This node's id among the nodes, under which it marks the users it holds
    /// channels of (`watch`). It must differ from every other node's and stay the same
    /// across the node's restarts (it clears its own marks as it starts): `tidings
    /// service` makes it of the host's name and the listening port. Random by default.
    pub node: String,
}

impl PgConfig {
    /// A config for `url` with the default pool size.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            password: None,
            ca_file: None,
            pool_size: 16,
            notify_queue: follow::NOTIFY_QUEUE,
            node: format!("node-{}", uuid::Uuid::new_v4().simple()),
        }
    }

    /// The parsed connection settings, or why the URL is not one.
    pub fn connection(&self) -> Result<tokio_postgres::Config, StoreError> {
        let mut config = tokio_postgres::Config::from_str(&self.url).map_err(|e| {
            StoreError::Commit(format!(
                "store: {e}; expected a URL like postgres://tidings@db.example.org/tidings"
            ))
        })?;
        if let Some(password) = &self.password {
            config.password(password.expose_secret().as_bytes());
        }
        if config.get_application_name().is_none() {
            config.application_name("tidings");
        }
        config.connect_timeout(POOL_WAIT);
        // A `201` means committed: a database (or role) default of
        // `synchronous_commit = off` must not answer before the WAL is on disk. Every
        // statement is a lookup by key (`batch` keeps even its array joins so), so one
        // generic plan per statement serves: no planning at each execution.
        let ours = "-c synchronous_commit=on -c plan_cache_mode=force_generic_plan";
        let options = match config.get_options() {
            Some(given) => format!("{given} {ours}"),
            None => ours.to_owned(),
        };
        config.options(options);
        Ok(config)
    }
}

/// The PostgreSQL store. Shared behind an `Arc` (its listener holds a weak reference).
pub struct PgStore {
    pool: Pool,
    /// For the listener's own connection.
    connection: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    where_: String,
    health: Arc<Health>,
    follow: follow::Follow,
    /// This node's id ([`PgConfig::node`]).
    node: String,
    /// The users this node holds channels of (`watch`).
    watching: watch::Watching,
    /// Feed writes waiting for their batch.
    queue: batch::Queue,
    acks: acks::Acks,
    /// Lookups read lately (apps, subscriptions).
    recent: recent::Recent,
    commit_observer: OnceLock<TimeHook>,
    /// Where its tasks run (the listener, the batch lanes, the ack writer).
    tasks: TaskTracker,
    /// Stops them: the service's store token (see [`StoreTasks`]), or this store's drop.
    stop: CancellationToken,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl PgStore {
    /// Connects, applies the migrations, and starts listening for changes; `publish`
    /// is called with every committed change (of any node), per user in `seq` order.
    /// Its tasks run on `tasks` until it is cancelled or the store is dropped.
    pub async fn open(
        config: &PgConfig,
        publish: Publish,
        tasks: &StoreTasks,
    ) -> Result<Arc<Self>, StoreError> {
        let connection = config.connection()?;
        let tls = MakeRustlsConnect::new(
            crate::tls::client_config(config.ca_file.as_deref())
                .map_err(|e| StoreError::Commit(format!("TLS to the database: {e}")))?
                .as_ref()
                .clone(),
        );
        let where_ = describe(&connection);
        let manager = Manager::from_config(
            connection.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size.max(2))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .recycle_timeout(Some(POOL_WAIT))
            .build()
            .map_err(|e| StoreError::Commit(format!("setting up the database pool: {e}")))?;
        let mut client = pool.get().await.map_err(|e| {
            let said = pool_message(&e);
            let what_to_do = if said.contains("certificate") || said.contains("UnknownIssuer") {
                "trust the database's CA with store_ca_file in [service] (TIDINGS_STORE_CA_FILE; docs/nodes.md)"
            } else {
                "check [service] store and that PostgreSQL runs"
            };
            StoreError::Commit(format!(
                "cannot reach the database ({where_}): {said}; {what_to_do}"
            ))
        })?;
        let applied = schema::migrate(&mut client).await?;
        if !applied.is_empty() {
            tracing::info!(versions = ?applied, "database schema migrated");
        }
        drop(client);
        let (queue, intakes) = batch::queue();
        let store = Arc::new(Self {
            pool,
            connection,
            tls,
            where_,
            health: Arc::default(),
            follow: follow::Follow::new(publish, config.notify_queue),
            node: config.node.clone(),
            watching: watch::Watching::default(),
            queue,
            acks: acks::Acks::default(),
            recent: recent::Recent::default(),
            commit_observer: OnceLock::new(),
            tasks: tasks.tracker.clone(),
            stop: tasks.stop.child_token(),
        });
        store.forget_marks().await?;
        let heads = store.heads().await?;
        store.follow.seed(heads);
        follow::start_listener(&store);
        batch::start(&store, intakes);
        acks::start_ack_writer(&store);
        Ok(store)
    }

    /// A pooled connection; a pool that cannot give one fails the store.
    async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| {
            self.link_lost(&format!(
                "cannot reach the database ({}): {}",
                self.where_,
                pool_message(&e)
            ))
        })
    }

    /// A statement's error: a lost link fails the store (writes 503, `/healthz` 503
    /// until it recovers); anything else is the statement's own fault.
    fn fault(&self, error: tokio_postgres::Error) -> StoreError {
        if is_link_error(&error) {
            return self.link_lost(&format!("the database link failed: {}", message(&error)));
        }
        sql_error(error)
    }

    /// Marks the store failed by a lost link.
    fn link_lost(&self, message: &str) -> StoreError {
        let failure = Failure::other(message);
        self.health.fail(failure.clone());
        StoreError::Unavailable(failure)
    }

    /// Tells the commit observer how long a commit took.
    fn committed(&self, started: Instant) {
        if let Some(observe) = self.commit_observer.get() {
            observe(started.elapsed());
        }
    }

    /// Whether the database answers now.
    async fn ping(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .simple_query("SELECT 1")
            .await
            .map_err(|e| self.fault(e))?;
        Ok(())
    }

    /// After a lost link: once the database answers and this node has published every
    /// change it missed, the store takes writes again.
    async fn recover_link(&self) -> Result<bool, StoreError> {
        if self.health.failure().is_none() {
            return Ok(false);
        }
        self.ping().await?;
        self.catch_up_all().await?;
        self.link_back();
        Ok(true)
    }

    /// The database answers and this node has caught up: the store takes writes again.
    fn link_back(&self) {
        if self.health.failure().is_some() {
            self.health.clear();
            tracing::info!(database = %self.where_, "the database link is back; caught up");
        }
    }
}

/// Whether an error means the link to the database is gone (rather than a statement
/// the database refused).
fn is_link_error(error: &tokio_postgres::Error) -> bool {
    match error.as_db_error() {
        // 08: connection exception; 57P01-57P03: shutdown, crash, cannot connect now.
        Some(db) => {
            let code = db.code().code();
            code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
        }
        None => true,
    }
}

/// A statement's error as a [`StoreError`] (no side effects; see [`PgStore::fault`]).
#[allow(clippy::needless_pass_by_value)] // the shape `map_err` takes
fn sql_error(error: tokio_postgres::Error) -> StoreError {
    // 22021 / 22P05: a character the column's encoding cannot hold (a NUL in text).
    let code = error.as_db_error().map(|db| db.code().code());
    if matches!(code, Some("22021" | "22P05")) {
        return StoreError::Invalid(format!(
            "a value holds a character the database cannot store: {}",
            message(&error)
        ));
    }
    StoreError::Database(message(&error))
}

/// The database's own message when there is one (tokio-postgres's `Display` says
/// only "db error").
fn message(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

fn pool_message(error: &deadpool_postgres::PoolError) -> String {
    match error {
        deadpool_postgres::PoolError::Backend(e) => message(e),
        other => other.to_string(),
    }
}

/// "host:port/dbname" for logs and messages (never the password).
fn describe(config: &tokio_postgres::Config) -> String {
    let host = config.get_hosts().first().map_or_else(
        || "localhost".to_owned(),
        |h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        },
    );
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("{host}:{port}/{db}")
}

/// Column `index` of `row`; a type that does not match the schema is a corrupt store,
/// not a panic.
fn col<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a tokio_postgres::Row,
    index: usize,
) -> Result<T, StoreError> {
    row.try_get(index)
        .map_err(|e| StoreError::Corrupt(format!("database column {index}: {e}")))
}

/// A notification from columns `at` (its `seq`) and `at + 1` (its `record`). The
/// `seq` column is the one that counts: a batch of plain posts has the database assign
/// `seq`s, after the records were encoded (`batch`), so the one inside may be a
/// placeholder.
fn note_of(row: &tokio_postgres::Row, at: usize) -> Result<NotificationRecord, StoreError> {
    let mut record: NotificationRecord = decode(col(row, at + 1)?)?;
    record.seq = seq_of(col(row, at)?);
    Ok(record)
}

/// A `seq` as PostgreSQL's `bigint`.
fn seq_sql(seq: Seq) -> i64 {
    i64::try_from(seq.0).unwrap_or(i64::MAX)
}

/// A `bigint` column as a `seq`.
fn seq_of(value: i64) -> Seq {
    Seq(u64::try_from(value).unwrap_or_default())
}

/// A `bigint` column of milliseconds as a timestamp.
fn time_of(value: i64) -> Timestamp {
    Timestamp::from_millis(value)
}
