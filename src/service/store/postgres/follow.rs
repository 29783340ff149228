//! Publishing committed changes, this node's and every other node's, in `seq` order.
//!
//! The node keeps, per user, the last `seq` it published. [`PgStore::advance`] moves it
//! to a committed `seq`: when the change is the very next one and in hand (this node
//! just wrote it) it is published as is; otherwise what lies between is read from the
//! database first. One lock per user makes the advance of one user one at a time, so
//! nothing is published twice or out of order, and because a user's `seq`s commit in
//! order, once `N` is committed everything before it is readable: no gap.
//!
//! The listener holds its own connection with `LISTEN tidings_feed` (and
//! `tidings_revoked`: a device revoked on one node has its channels closed on all; those
//! revoked while the link was down are looked up when it is back). Each committed batch
//! sends one notification naming each of its users with the user's new head (and when
//! it was committed, for the notify-lag metric); the follower reads what it has not
//! published of all of them in one query.
//! After every (re)connection the node catches up every user from `feed_heads` before
//! handling notifications, so notifications lost with a dropped link cost a read,
//! never a change.
//!
//! Notifications wait for the listener in a bounded queue ([`NOTIFY_QUEUE`] by
//! default): a node that falls behind drops what does not fit, notes when it began to,
//! and, once it has handled what is queued, catches up every user from `feed_heads` and
//! looks up the devices revoked since, the same as after a lost link. Memory stays
//! bounded; no change is lost (`tidings_notify_overflows_total` counts these).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;

use super::super::{Committed, CountHook, Publish, RevokeHook, StoreError, TimeHook};
use super::{CHANNEL, PgStore, REVOKED, col, note_of, seq_of, seq_sql};
use crate::protocol::{DeviceId, Seq, Timestamp, UserId};
use crate::sync::lock;

/// Changes read per query while catching up.
const CATCH_UP_CHUNK: i64 = 1000;

/// Feed notifications queued for the listener at most, by default (about 100 bytes
/// each).
pub const NOTIFY_QUEUE: usize = 10_000;

/// Longest wait between two attempts to reconnect the listener.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What the node has published.
pub(super) struct Follow {
    publish: Publish,
    published: Mutex<HashMap<UserId, Seq>>,
    gates: Mutex<HashMap<UserId, Arc<tokio::sync::Mutex<()>>>>,
    lag_observer: std::sync::OnceLock<TimeHook>,
    revoke_observer: std::sync::OnceLock<RevokeHook>,
    /// When the listener last lost its link (revocations since then are looked up when
    /// it is back: their notifications were lost with it).
    lost_at: Mutex<Option<Timestamp>>,
    /// The bound of the listener's queue.
    queue: usize,
    /// Told each time notifications were dropped from a full queue.
    overflow_observer: std::sync::OnceLock<CountHook>,
}

impl Follow {
    pub fn new(publish: Publish, queue: usize) -> Self {
        Self {
            publish,
            published: Mutex::default(),
            gates: Mutex::default(),
            lag_observer: std::sync::OnceLock::new(),
            revoke_observer: std::sync::OnceLock::new(),
            lost_at: Mutex::new(None),
            queue: queue.max(1),
            overflow_observer: std::sync::OnceLock::new(),
        }
    }

    /// Tells `observe` each time the queue overflowed (and a full catch-up followed).
    pub fn on_overflow(&self, observe: CountHook) {
        let _ = self.overflow_observer.set(observe);
    }

    /// Starts from each user's committed head (all of it readable from the database).
    pub fn seed(&self, heads: HashMap<UserId, Seq>) {
        *lock(&self.published) = heads;
    }

    /// The last `seq` of `user` this node published.
    pub fn published(&self, user: &UserId) -> Seq {
        lock(&self.published)
            .get(user)
            .copied()
            .unwrap_or(Seq::ZERO)
    }

    /// Every user's last published `seq`.
    pub fn all(&self) -> HashMap<UserId, Seq> {
        lock(&self.published).clone()
    }

    /// Tells `observe` how long changes of other nodes took to reach this one.
    pub fn on_lag(&self, observe: TimeHook) {
        let _ = self.lag_observer.set(observe);
    }

    /// Tells `observe` of each device revoked on another node.
    pub fn on_revoke(&self, observe: RevokeHook) {
        let _ = self.revoke_observer.set(observe);
    }

    fn revoked(&self, device: &DeviceId) {
        if let Some(observe) = self.revoke_observer.get() {
            observe(device);
        }
    }

    fn gate(&self, user: &UserId) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.gates).entry(user.clone()).or_default().clone()
    }

    fn publish_upto(&self, user: &UserId, changes: Vec<Committed>, upto: Seq) {
        if !changes.is_empty() {
            (self.publish)(changes);
        }
        lock(&self.published).insert(user.clone(), upto);
    }
}

impl PgStore {
    /// Publishes `user`'s changes up to the committed `upto` that this node has not
    /// published yet.
    pub(super) async fn advance(&self, user: &UserId, upto: Seq) -> Result<(), StoreError> {
        let gate = self.follow.gate(user);
        let _one_at_a_time = gate.lock().await;
        self.advance_held(user, upto).await
    }

    /// [`Self::advance`], with `user`'s gate held.
    async fn advance_held(&self, user: &UserId, upto: Seq) -> Result<(), StoreError> {
        let mut from = self.follow.published(user);
        while from < upto {
            let (changes, reached) = self.changes(user, from, upto).await?;
            self.follow.publish_upto(user, changes, reached);
            from = reached;
        }
        Ok(())
    }

    /// Publishes `changes`, consecutive changes of `user` this node just committed,
    /// unless published already (the announcement came first); what lies between the
    /// last published and them (another node's) is read from the database first.
    pub(super) async fn publish_local(
        &self,
        user: &UserId,
        changes: Vec<Committed>,
    ) -> Result<(), StoreError> {
        let Some(upto) = changes.last().map(|c| c.seq) else {
            return Ok(());
        };
        let gate = self.follow.gate(user);
        let _one_at_a_time = gate.lock().await;
        let from = self.follow.published(user);
        let fresh: Vec<Committed> = changes.into_iter().filter(|c| c.seq > from).collect();
        match fresh.first() {
            None => Ok(()),
            Some(first) if first.seq == from.next() => {
                self.follow.publish_upto(user, fresh, upto);
                Ok(())
            }
            Some(_) => self.advance_held(user, upto).await,
        }
    }

    /// Advances each user to its announced head: with few changes to read, one query
    /// for all of them; else user by user, in chunks.
    async fn advance_many(&self, heads: HashMap<UserId, Seq>) -> Result<(), StoreError> {
        let mut behind: Vec<(UserId, Seq)> = heads
            .into_iter()
            .filter(|(user, upto)| *upto > self.follow.published(user))
            .collect();
        if behind.is_empty() {
            return Ok(());
        }
        // In user order, as every taker of several gates does: no deadlock.
        behind.sort_unstable();
        let mut held = Vec::with_capacity(behind.len());
        for (user, _) in &behind {
            held.push(self.follow.gate(user).lock_owned().await);
        }
        let ranges: Vec<(UserId, Seq, Seq)> = behind
            .into_iter()
            .map(|(user, upto)| {
                let from = self.follow.published(&user);
                (user, from, upto)
            })
            .filter(|(_, from, upto)| upto > from)
            .collect();
        let span: u64 = ranges.iter().map(|(_, from, upto)| upto.0 - from.0).sum();
        if span > CATCH_UP_CHUNK.unsigned_abs() {
            for (user, _, upto) in &ranges {
                self.advance_held(user, *upto).await?;
            }
            return Ok(());
        }
        let mut changes = self.changes_of_many(&ranges).await?;
        for (user, _, upto) in ranges {
            let mine = changes.remove(&user).unwrap_or_default();
            self.follow.publish_upto(&user, mine, upto);
        }
        Ok(())
    }

    /// The committed changes in each range (user, after, upto], by user in `seq`
    /// order: one query.
    async fn changes_of_many(
        &self,
        ranges: &[(UserId, Seq, Seq)],
    ) -> Result<HashMap<UserId, Vec<Committed>>, StoreError> {
        let users: Vec<&str> = ranges.iter().map(|(u, _, _)| u.as_str()).collect();
        let afters: Vec<i64> = ranges.iter().map(|(_, a, _)| seq_sql(*a)).collect();
        let uptos: Vec<i64> = ranges.iter().map(|(_, _, u)| seq_sql(*u)).collect();
        let rows = self
            .rows(
                // A LATERAL lookup per range (see `batch::READ`): index scans only.
                "SELECT n.user_id, n.seq, n.record FROM unnest($1::text[], $2::bigint[], $3::bigint[])
                     AS r(u, after, upto)
                 CROSS JOIN LATERAL (SELECT user_id, seq, record FROM notifications
                     WHERE user_id = r.u AND seq > r.after AND seq <= r.upto OFFSET 0) n
                 ORDER BY n.user_id, n.seq",
                &[&users, &afters, &uptos],
            )
            .await?;
        let mut changes: HashMap<UserId, Vec<Committed>> = HashMap::new();
        for row in rows {
            let user = UserId::new(col::<String>(&row, 0)?);
            let record = note_of(&row, 1)?;
            changes.entry(user.clone()).or_default().push(Committed {
                user,
                seq: record.seq,
                notification: record.to_notification(),
            });
        }
        Ok(changes)
    }

    /// The committed changes of `user` in (`after`, `upto`], at most
    /// [`CATCH_UP_CHUNK`], and how far they reach.
    async fn changes(
        &self,
        user: &UserId,
        after: Seq,
        upto: Seq,
    ) -> Result<(Vec<Committed>, Seq), StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT seq, record FROM notifications
                 WHERE user_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4",
                &[
                    &user.as_str(),
                    &seq_sql(after),
                    &seq_sql(upto),
                    &CATCH_UP_CHUNK,
                ],
            )
            .await
            .map_err(|e| self.fault(e))?;
        let full = rows.len() == usize::try_from(CATCH_UP_CHUNK).unwrap_or(usize::MAX);
        let mut changes = Vec::with_capacity(rows.len());
        for row in rows {
            let record = note_of(&row, 0)?;
            changes.push(Committed {
                user: user.clone(),
                seq: record.seq,
                notification: record.to_notification(),
            });
        }
        let reached = match changes.last() {
            Some(last) if full => last.seq,
            _ => upto,
        };
        Ok((changes, reached))
    }

    /// Every user's committed head.
    pub(super) async fn heads(&self) -> Result<HashMap<UserId, Seq>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT user_id, seq FROM feed_heads", &[])
            .await
            .map_err(|e| self.fault(e))?;
        rows.iter()
            .map(|row| Ok((UserId::new(col::<String>(row, 0)?), seq_of(col(row, 1)?))))
            .collect()
    }

    /// Publishes everything committed that this node has not published.
    pub(super) async fn catch_up_all(&self) -> Result<(), StoreError> {
        for (user, head) in self.heads().await? {
            if head > self.follow.published(&user) {
                self.advance(&user, head).await?;
            }
        }
        Ok(())
    }

    /// After the listener's link came back, or its queue overflowed: the devices
    /// revoked since `lost` (with a minute's margin for clocks), whose notifications
    /// went with it.
    async fn revoked_while_away(&self, lost: Option<Timestamp>) -> Result<(), StoreError> {
        let Some(lost) = lost else {
            return Ok(());
        };
        let since = lost.as_millis().saturating_sub(60_000);
        let rows = self
            .rows("SELECT id FROM devices WHERE revoked_at >= $1", &[&since])
            .await?;
        for row in rows {
            self.revoked_elsewhere(&DeviceId::new(col::<String>(&row, 0)?));
        }
        Ok(())
    }

    /// A device another node revoked: forget its subscriptions, close its channels.
    fn revoked_elsewhere(&self, device: &DeviceId) {
        self.recent.forget(device);
        self.follow.revoked(device);
    }

    /// Handles a batch of notifications: each user advanced to the highest `seq` named.
    async fn notified(&self, batch: Vec<tokio_postgres::Notification>) -> Result<(), StoreError> {
        let mut highest: HashMap<UserId, Seq> = HashMap::new();
        for note in batch {
            if note.channel() == REVOKED {
                self.revoked_elsewhere(&DeviceId::new(note.payload()));
                continue;
            }
            let Some((at, heads)) = parse(note.payload()) else {
                tracing::warn!(
                    payload = note.payload(),
                    "ignoring a malformed feed notification"
                );
                continue;
            };
            if let Some(observe) = self.follow.lag_observer.get() {
                let lag = Timestamp::now().as_millis().saturating_sub(at.as_millis());
                observe(Duration::from_millis(
                    u64::try_from(lag).unwrap_or_default(),
                ));
            }
            for (user, seq) in heads {
                let entry = highest.entry(user).or_insert(seq);
                *entry = (*entry).max(seq);
            }
        }
        self.advance_many(highest).await
    }
}

/// The payload of a batch's `pg_notify`: when it was committed (milliseconds, for the
/// notify-lag metric), then a line per user, "<new head> <user id>":
/// `"1733480000000\n42 3f0c...\n7 9ab1..."`. A user id is a UUID (no newline).
pub(super) fn batch_payload<'a>(
    heads: impl IntoIterator<Item = (&'a UserId, &'a Seq)>,
    at: Timestamp,
) -> String {
    use std::fmt::Write as _;
    let mut text = at.as_millis().to_string();
    for (user, seq) in heads {
        let _ = write!(text, "\n{} {}", seq.0, user.as_str());
    }
    text
}

/// The bytes one user adds to [`batch_payload`] at most.
pub(super) fn entry_size(user: &UserId) -> usize {
    // A newline, up to 20 digits, a space, the id.
    22 + user.as_str().len()
}

/// A feed notification's time and heads. Besides the batch form of [`batch_payload`],
/// the one-change form "<seq> <committed millis> <user id>" of earlier versions is
/// read too, so a node follows one that is not upgraded yet.
fn parse(payload: &str) -> Option<(Timestamp, Vec<(UserId, Seq)>)> {
    let Some((at, lines)) = payload.split_once('\n') else {
        let mut parts = payload.splitn(3, ' ');
        let seq = parts.next()?.parse().ok()?;
        let at = parts.next()?.parse().ok()?;
        let user = parts.next().filter(|u| !u.is_empty())?;
        return Some((
            Timestamp::from_millis(at),
            vec![(UserId::new(user), Seq(seq))],
        ));
    };
    let heads = lines
        .split('\n')
        .map(|line| {
            let (seq, user) = line.split_once(' ')?;
            let user = Some(user).filter(|u| !u.is_empty())?;
            Some((UserId::new(user), Seq(seq.parse().ok()?)))
        })
        .collect::<Option<Vec<_>>>()?;
    Some((Timestamp::from_millis(at.parse().ok()?), heads))
}

/// Starts the listener task; it ends when the store is dropped.
pub(super) fn start_listener(store: &Arc<PgStore>) {
    let weak = Arc::downgrade(store);
    let stop = store.stop.clone();
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(50);
        loop {
            let outcome = tokio::select! {
                () = stop.cancelled() => return,
                outcome = session(&weak) => outcome,
            };
            let Some(store) = weak.upgrade() else { return };
            match outcome {
                Ok(()) => return,
                Err(e) => {
                    // A failed session that had connected starts the backoff over.
                    if e.connected {
                        backoff = Duration::from_millis(50);
                    }
                    store.link_lost(&format!("the database link failed: {}", e.message));
                    lock(&store.follow.lost_at).get_or_insert_with(Timestamp::now);
                }
            }
            drop(store);
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    });
}

/// How a session that had (`connected`) or had not connected ended, from its message.
fn ended(connected: bool) -> impl Fn(String) -> Ended {
    move |message| Ended { message, connected }
}

/// Why a listening session ended.
struct Ended {
    message: String,
    /// Whether it had connected (and so caught up) before it ended.
    connected: bool,
}

/// The listener's queue: notifications (or the error that ended the link) and when
/// notifications were first dropped from it, full, since the follower last looked.
type Queue = mpsc::Receiver<Result<tokio_postgres::Notification, String>>;
type Dropped = Arc<Mutex<Option<Timestamp>>>;

/// One listening connection: `LISTEN`, catch up, then follow notifications until the
/// link drops (an error) or the store is gone (`Ok`).
async fn session(weak: &Weak<PgStore>) -> Result<(), Ended> {
    let (config, tls, queue) = match weak.upgrade() {
        Some(store) => (
            store.connection.clone(),
            store.tls.clone(),
            store.follow.queue,
        ),
        None => return Ok(()),
    };
    let (client, mut connection) = config
        .connect(tls)
        .await
        .map_err(|e| ended(false)(super::message(&e)))?;
    let (tx, mut rx) = mpsc::channel(queue);
    let dropped = Dropped::default();
    let noted = dropped.clone();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(note)) => match tx.try_send(Ok(note)) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        lock(&noted).get_or_insert_with(Timestamp::now);
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                },
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.send(Err(super::message(&e))).await;
                    return;
                }
            }
        }
        let _ = tx
            .send(Err("the database closed the connection".to_owned()))
            .await;
    });
    let result = follow(weak, &client, &mut rx, &dropped).await;
    driver.abort();
    result
}

async fn follow(
    weak: &Weak<PgStore>,
    client: &tokio_postgres::Client,
    rx: &mut Queue,
    dropped: &Dropped,
) -> Result<(), Ended> {
    client
        .batch_execute(&format!("LISTEN {CHANNEL}; LISTEN {REVOKED}"))
        .await
        .map_err(|e| ended(false)(super::message(&e)))?;
    {
        let Some(store) = weak.upgrade() else {
            return Ok(());
        };
        let lost = *lock(&store.follow.lost_at);
        store
            .catch_up_everything(lost)
            .await
            .map_err(|e| ended(false)(e.to_string()))?;
        *lock(&store.follow.lost_at) = None;
        store.link_back();
    }
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first.map_err(ended(true))?];
        while let Ok(next) = rx.try_recv() {
            batch.push(next.map_err(ended(true))?);
        }
        let Some(store) = weak.upgrade() else {
            return Ok(());
        };
        store
            .notified(batch)
            .await
            .map_err(|e| ended(true)(e.to_string()))?;
        let since = lock(dropped).take();
        if since.is_some() {
            tracing::warn!(
                queue = store.follow.queue,
                "this node fell behind the database's notifications and dropped some; catching up every user"
            );
            if let Some(observe) = store.follow.overflow_observer.get() {
                observe();
            }
            store
                .catch_up_everything(since)
                .await
                .map_err(|e| ended(true)(e.to_string()))?;
        }
    }
    Err(ended(true)("the listener stopped".to_owned()))
}

impl PgStore {
    /// Everything notifications would have told since `lost` (when some were lost):
    /// every user's committed changes not yet published, and the devices revoked.
    async fn catch_up_everything(&self, lost: Option<Timestamp>) -> Result<(), StoreError> {
        self.catch_up_all().await?;
        self.revoked_while_away(lost).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn payloads_round_trip_and_bad_ones_are_refused() {
        let (a, b) = (UserId::new("a"), UserId::new("b"));
        let heads = BTreeMap::from([(a.clone(), Seq(42)), (b.clone(), Seq(7))]);
        let text = batch_payload(&heads, Timestamp::from_millis(9));
        assert_eq!(text, "9\n42 a\n7 b");
        assert_eq!(
            parse(&text),
            Some((Timestamp::from_millis(9), vec![(a, Seq(42)), (b, Seq(7))]))
        );
        assert!(text.len() <= 1 + heads.keys().map(entry_size).sum::<usize>());
        assert_eq!(parse("9\nx a"), None);
        assert_eq!(parse("9\n1 "), None);
        assert_eq!(parse("x\n1 a"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn the_one_change_payloads_of_earlier_versions_are_read_too() {
        assert_eq!(
            parse("42 7 u 1"),
            Some((
                Timestamp::from_millis(7),
                vec![(UserId::new("u 1"), Seq(42))]
            ))
        );
        assert_eq!(parse("x 1 u"), None);
        assert_eq!(parse("1 2"), None);
        assert_eq!(parse("1 2 "), None);
    }
}
