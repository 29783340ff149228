//! The hub: fan-out of durable feed changes to the open channels of each user.
//!
//! The group committer calls [`Hub::publish`] after every flush, in `seq` order. The hub
//! records each user's durable `seq` and offers the change (one [`Live`], its frame
//! serialised once for all of them) to every registered channel of that user with
//! `try_send` on a bounded queue: a channel whose queue is full is
//! disconnected (its device resyncs from its cursor), so a slow device never makes the
//! service buffer without bound.
//!
//! Registration and publishing share one lock, so a channel learns the durable `seq`
//! at the instant it registered: every change up to it is in the store for the backlog,
//! every later one arrives on its queue. A node that shares its store with others
//! passes over the changes of users it has no channel for ([`Hub::pass_over`]) under
//! that same lock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::{Notify, mpsc};

use axum::extract::ws::Utf8Bytes;

use crate::protocol::frames::change_json;
use crate::protocol::{DeviceId, Seq, UserId};

use super::store::Committed;

/// Why the hub closed a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// Its send queue overflowed.
    TooSlow,
    /// Its device was revoked.
    Revoked,
    /// Its device opened more channels than it may hold; this was the oldest.
    Replaced,
    /// The store was reopened after a failure: the device must resync from its cursor.
    Resync,
}

/// Lets the hub close one channel and say why. One allocation per channel: a
/// `CancellationToken` and a shared reason took two, and three times the bytes (an idle
/// channel's memory is mostly such small parts; see docs/performance.md).
#[derive(Clone, Debug, Default)]
pub struct Kill {
    state: Arc<KillState>,
}

/// What a [`Kill`] shares: the first reason given, and the wake-up of its waiters.
#[derive(Debug, Default)]
struct KillState {
    reason: OnceLock<CloseReason>,
    woken: Notify,
}

impl Kill {
    fn kill(&self, reason: CloseReason) {
        let _ = self.state.reason.set(reason);
        self.state.woken.notify_waiters();
    }

    /// Why the hub closed the channel, if it did (its queue is closed then too).
    pub fn reason(&self) -> Option<CloseReason> {
        self.state.reason.get().copied()
    }

    /// Resolves once the channel must close.
    pub async fn killed(&self) -> CloseReason {
        loop {
            // Registered before the reason is looked at, so a kill in between wakes it.
            let woken = self.state.woken.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if let Some(reason) = self.reason() {
                return reason;
            }
            woken.await;
        }
    }
}

/// A durable change as the hub offers it: one shared by every channel of its user,
/// its `change` frame serialised once, by the first channel that sends it.
pub struct Live {
    /// The change.
    pub change: Committed,
    frame: OnceLock<Utf8Bytes>,
    /// When the hub offered it (the `hop` stage ends when a channel takes it).
    pub published: std::time::Instant,
}

impl Live {
    fn new(change: Committed) -> Self {
        Self {
            change,
            frame: OnceLock::new(),
            published: std::time::Instant::now(),
        }
    }

    /// The change's frame, as JSON text.
    pub fn frame(&self) -> Result<Utf8Bytes, serde_json::Error> {
        if let Some(frame) = self.frame.get() {
            return Ok(frame.clone());
        }
        let text = Utf8Bytes::from(change_json(self.change.seq, &self.change.notification)?);
        Ok(self.frame.get_or_init(|| text).clone())
    }
}

struct Slot {
    id: u64,
    device: DeviceId,
    tx: mpsc::Sender<Arc<Live>>,
    kill: Kill,
}

#[derive(Default)]
struct Inner {
    durable: HashMap<UserId, Seq>,
    channels: HashMap<UserId, Vec<Slot>>,
    next_id: u64,
}

/// The fan-out hub. Shared behind an `Arc`.
pub struct Hub {
    inner: Mutex<Inner>,
    queue_capacity: usize,
    per_device: usize,
}

/// A channel's place in the hub; unregisters when dropped.
pub struct Registration {
    /// Live changes of the user, after `durable`.
    pub rx: mpsc::Receiver<Arc<Live>>,
    /// The user's durable `seq` when the channel registered.
    pub durable: Seq,
    /// Fires when the hub closes this channel.
    pub kill: Kill,
    hub: Arc<Hub>,
    user: UserId,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut inner = self.hub.lock();
        if let Some(slots) = inner.channels.get_mut(&self.user) {
            slots.retain(|s| s.id != self.id);
            if slots.is_empty() {
                inner.channels.remove(&self.user);
            }
        }
    }
}

impl Hub {
    /// A hub that gives each channel a queue of `queue_capacity` changes and lets a
    /// device hold `per_device` channels at once.
    pub fn new(queue_capacity: usize, per_device: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            queue_capacity: queue_capacity.max(1),
            per_device: per_device.max(1),
        }
    }

    /// Channels open now, of every device.
    pub fn channel_count(&self) -> usize {
        self.lock().channels.values().map(Vec::len).sum()
    }

    /// Devices with at least one open channel.
    pub fn device_count(&self) -> usize {
        let inner = self.lock();
        let devices: std::collections::HashSet<&DeviceId> = inner
            .channels
            .values()
            .flatten()
            .map(|slot| &slot.device)
            .collect();
        devices.len()
    }

    /// Takes each user's durable `seq` from the store at start-up (everything a store
    /// opens with is on disk), keeping the higher of it and what is already published:
    /// with PostgreSQL, another node's change may be published here between the
    /// store's snapshot and this call, and its user's head must not move back (a device
    /// connecting then would get a backlog ending before that change, and the next one
    /// live, and skip it for good).
    pub fn seed(&self, durable: HashMap<UserId, Seq>) {
        let mut inner = self.lock();
        for (user, seq) in durable {
            let head = inner.durable.entry(user).or_insert(seq);
            *head = (*head).max(seq);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        crate::sync::lock(&self.inner)
    }

    /// Registers a channel of `device` for `user`'s changes. If the device already holds
    /// as many channels as it may, its oldest are closed ([`CloseReason::Replaced`]).
    pub fn register(self: &Arc<Self>, user: &UserId, device: &DeviceId) -> Registration {
        let (tx, rx) = mpsc::channel(self.queue_capacity);
        let kill = Kill::default();
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        let durable = inner.durable.get(user).copied().unwrap_or(Seq::ZERO);
        let slots = inner.channels.entry(user.clone()).or_default();
        let held = slots.iter().filter(|s| &s.device == device).count();
        let mut excess = (held + 1).saturating_sub(self.per_device);
        slots.retain(|slot| {
            if excess > 0 && &slot.device == device {
                tracing::info!(%device, "a newer channel of the device replaces its oldest");
                slot.kill.kill(CloseReason::Replaced);
                excess -= 1;
                return false;
            }
            true
        });
        slots.push(Slot {
            id,
            device: device.clone(),
            tx,
            kill: kill.clone(),
        });
        Registration {
            rx,
            durable,
            kill,
            hub: self.clone(),
            user: user.clone(),
            id,
        }
    }

    /// Offers durable changes, in `seq` order, to the channels of their users.
    pub fn publish(&self, changes: Vec<Committed>) {
        let mut inner = self.lock();
        for change in changes {
            // The user's id is cloned only for a user new to the map.
            if let Some(durable) = inner.durable.get_mut(&change.user) {
                *durable = change.seq;
            } else {
                inner.durable.insert(change.user.clone(), change.seq);
            }
            let Some(slots) = inner.channels.get_mut(&change.user) else {
                continue;
            };
            let change = Arc::new(Live::new(change));
            slots.retain(|slot| match slot.tx.try_send(change.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!(device = %slot.device, "device is not reading its channel; disconnected, it will resync");
                    slot.kill.kill(CloseReason::TooSlow);
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
        }
    }

    /// Counts `user`'s feed durable up to `upto` without offering the changes, when no
    /// channel of theirs is open: true then. Under the lock registration takes, so a
    /// channel registered after learns `upto` and reads the changes from the store, and
    /// one registered before makes this false and the changes are published.
    pub fn pass_over(&self, user: &UserId, upto: Seq) -> bool {
        let mut inner = self.lock();
        if inner
            .channels
            .get(user)
            .is_some_and(|slots| !slots.is_empty())
        {
            return false;
        }
        let durable = inner.durable.entry(user.clone()).or_insert(upto);
        *durable = (*durable).max(upto);
        true
    }

    /// After the store was reopened: takes each user's durable `seq` from what is on
    /// disk and closes every channel, so each device resyncs from its cursor against the
    /// reopened store.
    pub fn resync(&self, durable: HashMap<UserId, Seq>) {
        let mut inner = self.lock();
        inner.durable = durable;
        for slot in inner.channels.values().flatten() {
            slot.kill.kill(CloseReason::Resync);
        }
        inner.channels.clear();
    }

    /// Closes every channel of a revoked device.
    pub fn revoke(&self, device: &DeviceId) {
        let inner = self.lock();
        for slot in inner.channels.values().flatten() {
            if &slot.device == device {
                slot.kill.kill(CloseReason::Revoked);
            }
        }
    }

    /// Whether `device` has an open channel.
    pub fn is_connected(&self, device: &DeviceId) -> bool {
        self.lock()
            .channels
            .values()
            .flatten()
            .any(|slot| &slot.device == device)
    }
}

#[cfg(test)]
mod tests;
