//! What local callers (IPC, the panel icon, tests) do through an [`AgentHandle`]: read
//! the cache, subscribe, change state (here at once, everywhere through the outbox),
//! send notes, set do-not-disturb and pause an app's toasts.

use tokio::sync::broadcast;

use crate::protocol::local::{Dnd, Event};
use crate::protocol::{NotificationId, Timestamp};

use super::link::Link;
use super::store::{AgentStore, AgentStoreError, LocalChange};
use super::{AgentError, AgentHandle};
use crate::protocol::rest::Subscription;
use crate::protocol::sealed::PublicKeys;

/// The local time of day, in minutes since midnight.
fn local_minute() -> u16 {
    let local = jiff::Zoned::now();
    u16::try_from(i32::from(local.hour()) * 60 + i32::from(local.minute())).unwrap_or(0)
}

fn minutes(n: u16) -> std::time::Duration {
    std::time::Duration::from_secs(u64::from(n) * 60)
}

/// How long `send` waits for its note to come back over the channel.
const SEND_SETTLES: std::time::Duration = std::time::Duration::from_secs(5);

impl AgentHandle {
    /// The local cache.
    pub fn store(&self) -> &AgentStore {
        &self.store
    }

    /// Do-not-disturb as it stands: turned on (`tidings dnd`), or inside the quiet
    /// hours (then until they end).
    pub fn dnd(&self, now: Timestamp) -> Result<Dnd, AgentStoreError> {
        let set = self.store.dnd(now)?;
        if set.on {
            return Ok(set);
        }
        let Some(quiet) = self.quiet_hours else {
            return Ok(set);
        };
        let minute = local_minute();
        if !quiet.contains(minute) {
            return Ok(set);
        }
        Ok(Dnd {
            on: true,
            until: Some(now.plus(minutes(quiet.minutes_left(minute)))),
        })
    }

    /// When do-not-disturb next turns on or off by itself: the end of the one in force,
    /// else the next start of the quiet hours; `None` when nothing is due.
    pub fn dnd_changes_at(&self, now: Timestamp) -> Result<Option<Timestamp>, AgentStoreError> {
        let dnd = self.dnd(now)?;
        if dnd.on {
            return Ok(dnd.until);
        }
        Ok(self
            .quiet_hours
            .map(|quiet| now.plus(minutes(quiet.minutes_to_start(local_minute())))))
    }

    /// Turns do-not-disturb on (until `until`, or until turned off) or off; durable on
    /// return.
    pub async fn set_dnd(&self, on: bool, until: Option<Timestamp>) -> Result<(), AgentStoreError> {
        self.store.set_dnd(on, until).await?;
        tracing::info!(on, ?until, "do not disturb changed");
        self.looks.notify_one();
        Ok(())
    }

    /// Pauses or resumes the toasts of the app `host` on this device; durable on
    /// return.
    pub async fn set_paused(&self, host: &str, paused: bool) -> Result<(), AgentStoreError> {
        self.store.set_paused(host, paused).await?;
        tracing::info!(app = host, paused, "toasts of an app paused or resumed");
        self.looks.notify_one();
        Ok(())
    }

    /// Returns once do-not-disturb or a paused app has changed since the last return.
    /// For one waiter: the panel icon.
    pub async fn settings_changed(&self) {
        self.looks.notified().await;
    }

    /// Subscribes this device to an app host and keeps the subscription (renewed
    /// before it expires) and its keys. Returns the UNSID and the public keys, for the
    /// app's backend.
    pub async fn subscribe(&self, host: &str) -> Result<(Subscription, PublicKeys), AgentError> {
        let host = crate::protocol::validate::validate_host_name("targetHostName", host)
            .map_err(|e| AgentError::Refused(e.to_string()))?;
        let sub = self.api.subscribe(&host).await?;
        // A subscription this device did not have (not a renewal): the app's
        // notifications its channel passed over come with a replay of the feed.
        let fresh = !self
            .store
            .subscriptions()?
            .iter()
            .any(|held| held.unsid == sub.unsid);
        if fresh {
            self.store.want_resync().await?;
        }
        self.store.save_subscription(&sub).await?;
        if fresh {
            self.resync.notify_one();
        }
        let keys = self.store.ensure_keys(&sub.unsid).await?;
        Ok((sub, keys.public()))
    }

    /// Renews every subscription that expires before `due`; returns how many.
    pub async fn renew_due(&self, due: Timestamp) -> Result<usize, AgentError> {
        let mut renewed = 0;
        for sub in self.store.subscriptions()? {
            if sub.expiration_date_time < due {
                let fresh = self.api.subscribe(&sub.target_host_name).await?;
                self.store.save_subscription(&fresh).await?;
                // A subscription made before this device kept keys gets them now.
                self.store.ensure_keys(&fresh.unsid).await?;
                renewed += 1;
            }
        }
        Ok(renewed)
    }

    /// Changes notifications here at once and queues the change for every other device
    /// (through the service). Returns how many were changed.
    pub async fn change(
        &self,
        ids: &[NotificationId],
        change: LocalChange,
    ) -> Result<usize, AgentError> {
        let applied = self.store.change_locally(ids, change).await?;
        self.present(&applied, false);
        self.outbox.notify_one();
        Ok(applied.len())
    }

    /// The link to the service and when it last synced.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// The signed-in user and this device's id.
    pub fn identity(&self) -> (&str, &str) {
        (&self.identity.0, &self.identity.1)
    }

    /// The service's base URL.
    pub fn service_url(&self) -> String {
        self.api.endpoint().base()
    }

    /// The toast backend, for `status`.
    pub fn toasts(&self) -> String {
        self.presenter.describe()
    }

    /// Every change stored from now on (for `watch`).
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Sends a note to all of this user's devices through the service; returns it as
    /// created, once it is in this device's history too (so `tidings show` right after
    /// `tidings send` finds it), or after `SEND_SETTLES` (5 s) if the channel is slow.
    pub async fn send(
        &self,
        body: serde_json::Value,
    ) -> Result<crate::protocol::Notification, AgentError> {
        let mut events = self.events.subscribe();
        let created = self.api.send_note(body).await?;
        let arrived = async {
            loop {
                if self.store.get(&created.id).ok().flatten().is_some() {
                    return;
                }
                match events.recv().await {
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        };
        let _ = tokio::time::timeout(SEND_SETTLES, arrived).await;
        Ok(created)
    }
}
