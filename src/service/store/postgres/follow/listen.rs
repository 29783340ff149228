//! The listener: one connection of its own with `LISTEN tidings_feed` (and
//! `tidings_revoked`), reconnected with a backoff when it drops. After every
//! (re)connection it catches every user up from `feed_heads` before it handles
//! announcements, and announcements wait in a bounded queue (see the parent module).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;

use super::super::super::StoreError;
use super::super::{CHANNEL, PgStore, REVOKED};
use super::announce::{Span, parse, spans, without_changes};
use crate::protocol::{DeviceId, Seq, Timestamp, UserId};
use crate::sync::lock;

/// Longest wait between two attempts to reconnect the listener.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Announcements queued past which the changes they carry are dropped (the heads are
/// kept, and the changes read back): a node this far behind reads them more cheaply in
/// a few queries, and a full queue stays small.
const CARRY_WHILE: usize = 64;

/// Starts the listener task; it ends when the store is dropped.
pub(in super::super) fn start_listener(store: &Arc<PgStore>) {
    let weak = Arc::downgrade(store);
    let stop = store.stop.clone();
    store.tasks.spawn(async move {
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
type Queue = mpsc::Receiver<Result<Heard, String>>;
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
        .map_err(|e| ended(false)(super::super::message(&e)))?;
    let (tx, mut rx) = mpsc::channel(queue);
    let dropped = Dropped::default();
    let noted = dropped.clone();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(note)) => match tx.try_send(Ok(heard(&note, &tx))) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        lock(&noted).get_or_insert_with(Timestamp::now);
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                },
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.send(Err(super::super::message(&e))).await;
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

/// `note` as queued behind what `queue` holds.
fn heard<T>(note: &tokio_postgres::Notification, queue: &mpsc::Sender<T>) -> Heard {
    let mut payload = note.payload().to_owned();
    if queue.max_capacity() - queue.capacity() > CARRY_WHILE {
        without_changes(&mut payload);
    }
    Heard {
        revoked: note.channel() == REVOKED,
        payload,
    }
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
        .map_err(|e| ended(false)(super::super::message(&e)))?;
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

    /// Handles a batch of notifications: each user advanced to the highest `seq` named.
    async fn notified(&self, batch: Vec<Heard>) -> Result<(), StoreError> {
        let mut highest: HashMap<UserId, Seq> = HashMap::new();
        let mut carried: HashMap<UserId, Vec<Span<'_>>> = HashMap::new();
        for heard in &batch {
            if heard.revoked {
                self.revoked_elsewhere(&DeviceId::new(heard.payload.as_str()));
                continue;
            }
            let Some(read) = parse(&heard.payload) else {
                tracing::warn!(
                    payload = heard.payload,
                    "ignoring a malformed feed notification"
                );
                continue;
            };
            if let Some(observe) = self.follow.lag_observer.get() {
                let lag = Timestamp::now()
                    .as_millis()
                    .saturating_sub(read.at.as_millis());
                observe(Duration::from_millis(
                    u64::try_from(lag).unwrap_or_default(),
                ));
            }
            // Only what this node has not published is worth reading (its own
            // batches' announcements come back to it too); the changes are decoded
            // only if published (`cover`).
            let ahead = |(user, seq): &(UserId, Seq)| *seq > self.follow.published(user);
            if !read.carried.is_empty() && read.heads.iter().any(ahead) {
                for (user, span) in spans(read.carried, &read.heads).unwrap_or_default() {
                    carried.entry(user).or_default().push(span);
                }
            }
            for (user, seq) in read.heads {
                let entry = highest.entry(user).or_insert(seq);
                *entry = (*entry).max(seq);
            }
        }
        self.advance_many(highest, carried).await
    }
}

/// A notification as the listener queued it: a revoked device's id, or a feed
/// announcement.
pub(super) struct Heard {
    pub revoked: bool,
    pub payload: String,
}
