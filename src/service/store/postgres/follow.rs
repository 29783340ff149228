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
//! it was committed, for the notify-lag metric) and, when they fit, carrying its changes
//! (`announce`); the follower publishes carried changes that cover all it has not
//! published, and reads the rest of all the users named in one query.
//! After every (re)connection the node catches up every user from `feed_heads` before
//! handling notifications, so notifications lost with a dropped link cost a read,
//! never a change.
//!
//! Notifications wait for the listener in a bounded queue ([`NOTIFY_QUEUE`] by
//! default): a node that falls behind drops what does not fit, notes when it began to,
//! and, once it has handled what is queued, catches up every user from `feed_heads` and
//! looks up the devices revoked since, the same as after a lost link. Memory stays
//! bounded; no change is lost (`tidings_notify_overflows_total` counts these).

mod announce;
mod listen;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

use super::super::{Committed, CountHook, PassHook, Publish, RevokeHook, StoreError, TimeHook};
use super::{PgStore, col, note_of, seq_of, seq_sql};
use crate::protocol::{DeviceId, Seq, Timestamp, UserId};
use crate::sync::lock;
use announce::{Span, cover};
pub(super) use announce::{batch_payload, carried, entry_size, heads_size};
pub(super) use listen::start_listener;

/// Changes read per query while catching up.
const CATCH_UP_CHUNK: i64 = 1000;

/// Feed notifications queued for the listener at most, by default (about 100 bytes
/// each).
pub const NOTIFY_QUEUE: usize = 10_000;

/// What the node has published.
pub(super) struct Follow {
    publish: Publish,
    published: Mutex<HashMap<UserId, Seq>>,
    gates: Mutex<HashMap<UserId, Arc<tokio::sync::Mutex<()>>>>,
    lag_observer: std::sync::OnceLock<TimeHook>,
    revoke_observer: std::sync::OnceLock<RevokeHook>,
    /// Says whether a user's changes may go unread (no channel here watches them).
    unwatched: std::sync::OnceLock<PassHook>,
    /// When the listener last lost its link (revocations since then are looked up when
    /// it is back: their notifications were lost with it).
    lost_at: Mutex<Option<Timestamp>>,
    /// The bound of the listener's queue.
    queue: usize,
    /// Told each time notifications were dropped from a full queue.
    overflow_observer: std::sync::OnceLock<CountHook>,
    /// Told each time announced changes were read back from the database.
    read_observer: std::sync::OnceLock<CountHook>,
}

impl Follow {
    pub fn new(publish: Publish, queue: usize) -> Self {
        Self {
            publish,
            published: Mutex::default(),
            gates: Mutex::default(),
            lag_observer: std::sync::OnceLock::new(),
            revoke_observer: std::sync::OnceLock::new(),
            unwatched: std::sync::OnceLock::new(),
            lost_at: Mutex::new(None),
            queue: queue.max(1),
            overflow_observer: std::sync::OnceLock::new(),
            read_observer: std::sync::OnceLock::new(),
        }
    }

    /// Tells `observe` each time the queue overflowed (and a full catch-up followed).
    pub fn on_overflow(&self, observe: CountHook) {
        let _ = self.overflow_observer.set(observe);
    }

    /// Tells `observe` each time announced changes were read back from the database.
    pub fn on_read(&self, observe: CountHook) {
        let _ = self.read_observer.set(observe);
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

    /// Lets `pass` spare reads of users no channel here watches.
    pub fn on_unwatched(&self, pass: PassHook) {
        let _ = self.unwatched.set(pass);
    }

    /// Counts `user`'s changes up to `upto` published without reading them, if no
    /// channel here watches `user`: true then. Called with `user`'s gate held.
    fn pass_over(&self, user: &UserId, upto: Seq) -> bool {
        let passed = self.unwatched.get().is_some_and(|pass| pass(user, upto));
        if passed {
            let mut published = lock(&self.published);
            let at = published.entry(user.clone()).or_insert(upto);
            *at = (*at).max(upto);
        }
        passed
    }

    fn revoked(&self, device: &DeviceId) {
        if let Some(observe) = self.revoke_observer.get() {
            observe(device);
        }
    }

    pub(super) fn gate(&self, user: &UserId) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.gates).entry(user.clone()).or_default().clone()
    }

    /// Holds the gates of `users`, which come in user order: every taker of several
    /// gates takes them in that order, so none waits on another in a cycle.
    pub(super) async fn hold(&self, users: &[&UserId]) -> Vec<OwnedMutexGuard<()>> {
        let mut held = Vec::with_capacity(users.len());
        for user in users {
            held.push(self.gate(user).lock_owned().await);
        }
        held
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
    pub(super) async fn advance_held(&self, user: &UserId, upto: Seq) -> Result<(), StoreError> {
        let mut from = self.follow.published(user);
        if from < upto && self.follow.pass_over(user, upto) {
            return Ok(());
        }
        while from < upto {
            let (changes, reached) = self.changes(user, from, upto).await?;
            self.follow.publish_upto(user, changes, reached);
            from = reached;
        }
        Ok(())
    }

    /// Publishes `changes`, consecutive changes of `user` this node just committed,
    /// with `user`'s gate held (`Follow::hold`); what lies between the last published
    /// and them (another node's) is read from the database first. The batch took the
    /// gate before it committed, so the announcement of its own commit waits for this
    /// and then finds nothing left to read.
    pub(super) async fn publish_held(
        &self,
        user: &UserId,
        changes: Vec<Committed>,
    ) -> Result<(), StoreError> {
        let Some(upto) = changes.last().map(|c| c.seq) else {
            return Ok(());
        };
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

    /// Advances each user to its announced head: with the changes the announcements
    /// carried when they cover what is missing, else read from the database (few: one
    /// query for all of them; else user by user, in chunks).
    async fn advance_many(
        &self,
        heads: HashMap<UserId, Seq>,
        mut carried: HashMap<UserId, Vec<Span<'_>>>,
    ) -> Result<(), StoreError> {
        let mut behind: Vec<(UserId, Seq)> = heads
            .into_iter()
            .filter(|(user, upto)| *upto > self.follow.published(user))
            .collect();
        if behind.is_empty() {
            return Ok(());
        }
        behind.sort_unstable();
        let users: Vec<&UserId> = behind.iter().map(|(user, _)| user).collect();
        let _held = self.follow.hold(&users).await;
        let ranges: Vec<(UserId, Seq, Seq)> = behind
            .into_iter()
            .map(|(user, upto)| {
                let from = self.follow.published(&user);
                (user, from, upto)
            })
            // Nothing left: this node's own batch, published while its announcement
            // waited; nothing to read: no channel here watches the user.
            .filter(|(user, from, upto)| upto > from && !self.follow.pass_over(user, *upto))
            .filter_map(|(user, from, upto)| {
                let spans = carried.remove(&user).unwrap_or_default();
                let Some(records) = cover(spans, from, upto) else {
                    return Some((user, from, upto));
                };
                let changes = records.iter().map(|r| Committed::of(&user, r)).collect();
                self.follow.publish_upto(&user, changes, upto);
                None
            })
            .collect();
        if ranges.is_empty() {
            return Ok(());
        }
        if let Some(observe) = self.follow.read_observer.get() {
            observe();
        }
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
            let change = Committed::of(&user, &note_of(&row, 1)?);
            changes.entry(user).or_default().push(change);
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
            changes.push(Committed::of(user, &note_of(&row, 0)?));
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
}
