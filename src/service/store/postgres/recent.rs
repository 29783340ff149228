//! What this node read lately of the lookups made on every post and every delivered
//! change, so that a burst costs one query per key, not one per post:
//!
//! - apps by client id: an app is never changed or removed, so kept until the map is
//!   full (then all are dropped and read again);
//! - subscriptions by UNSID, and whether a device is subscribed to a host: kept for
//!   [`RECENT_FOR`]. This node's own subscribe, unsubscribe, revoke and user removal
//!   drop them at once, and so does another node's revoke (announced, `follow`);
//!   another node's unsubscribe shows within [`RECENT_FOR`]. A kept subscription that
//!   has expired is read again (another node may have renewed it).
//!
//! Only answers found are kept for UNSIDs: a stream of made-up UNSIDs costs a query
//! each, never memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::super::records::{AppRecord, SubscriptionRecord};
use crate::protocol::{ClientId, DeviceId, Timestamp, Unsid, UserId};
use crate::sync::lock;

/// How long a subscription's answer is used.
pub const RECENT_FOR: Duration = Duration::from_secs(1);
/// Answers kept at most, per kind (then all of that kind are dropped and asked again).
const RECENT_MAX: usize = 100_000;

/// One subscription check: the subscription's expiry (`None`: there is none), and
/// when that was read.
#[derive(Clone, Copy)]
pub(super) struct Answer {
    pub expires: Option<Timestamp>,
    read: Instant,
}

/// The node's recent answers.
#[derive(Default)]
pub(super) struct Recent {
    checks: Mutex<HashMap<(DeviceId, String), Answer>>,
    unsids: Mutex<HashMap<Unsid, (SubscriptionRecord, Instant)>>,
    apps: Mutex<HashMap<ClientId, AppRecord>>,
}

impl Recent {
    /// A fresh answer for `device` and `host`, if there is one.
    pub fn get(&self, device: &DeviceId, host: &str) -> Option<Answer> {
        let answers = lock(&self.checks);
        let answer = answers.get(&(device.clone(), host.to_owned()))?;
        (answer.read.elapsed() < RECENT_FOR).then_some(*answer)
    }

    pub fn put(&self, device: &DeviceId, host: &str, expires: Option<Timestamp>) {
        let answer = Answer {
            expires,
            read: Instant::now(),
        };
        bounded_insert(
            &mut lock(&self.checks),
            (device.clone(), host.to_owned()),
            answer,
        );
    }

    /// A fresh, unexpired subscription for `unsid`, if one was read lately.
    pub fn subscription(&self, unsid: &Unsid, now: Timestamp) -> Option<SubscriptionRecord> {
        let unsids = lock(&self.unsids);
        let (record, read) = unsids.get(unsid)?;
        (read.elapsed() < RECENT_FOR && record.expires > now).then(|| record.clone())
    }

    pub fn put_subscription(&self, record: &SubscriptionRecord) {
        bounded_insert(
            &mut lock(&self.unsids),
            record.unsid.clone(),
            (record.clone(), Instant::now()),
        );
    }

    /// The app with `client_id`, if read before.
    pub fn app(&self, client_id: &ClientId) -> Option<AppRecord> {
        lock(&self.apps).get(client_id).cloned()
    }

    pub fn put_app(&self, app: &AppRecord) {
        bounded_insert(&mut lock(&self.apps), app.client_id.clone(), app.clone());
    }

    /// Forgets what was read of `device`'s subscriptions.
    pub fn forget(&self, device: &DeviceId) {
        lock(&self.checks).retain(|(d, _), _| d != device);
        lock(&self.unsids).retain(|_, (record, _)| &record.device != device);
    }

    /// Forgets what was read of `user`'s subscriptions.
    pub fn forget_user(&self, user: &UserId) {
        let mut devices = Vec::new();
        lock(&self.unsids).retain(|_, (record, _)| {
            let theirs = &record.user == user;
            if theirs {
                devices.push(record.device.clone());
            }
            !theirs
        });
        for device in devices {
            self.forget(&device);
        }
    }
}

fn bounded_insert<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, key: K, value: V) {
    if map.len() >= RECENT_MAX && !map.contains_key(&key) {
        map.clear();
    }
    map.insert(key, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(expires: i64) -> SubscriptionRecord {
        SubscriptionRecord {
            unsid: Unsid::new("s"),
            user: UserId::new("u"),
            device: DeviceId::new("d"),
            host: "contoso.com".to_owned(),
            expires: Timestamp::from_millis(expires),
        }
    }

    #[test]
    fn a_kept_subscription_is_used_until_it_expires_or_its_device_is_forgotten() {
        let recent = Recent::default();
        recent.put_subscription(&subscription(100));
        let unsid = Unsid::new("s");
        assert!(
            recent
                .subscription(&unsid, Timestamp::from_millis(50))
                .is_some()
        );
        assert!(
            recent
                .subscription(&unsid, Timestamp::from_millis(100))
                .is_none(),
            "expired: read again, it may have been renewed"
        );
        recent.forget(&DeviceId::new("d"));
        assert!(
            recent
                .subscription(&unsid, Timestamp::from_millis(50))
                .is_none()
        );
        recent.put_subscription(&subscription(100));
        recent.forget_user(&UserId::new("u"));
        assert!(
            recent
                .subscription(&unsid, Timestamp::from_millis(50))
                .is_none()
        );
    }
}
