//! What one sender may store: a post rate per sender (an app, or a user posting notes to
//! their own devices) and a quota per user (notifications kept, and their bytes).
//!
//! Why: without them one signed-in user could store notes as fast as the disk takes
//! them, each near the 64 KiB body limit, and every device and feed reader of that user
//! pays for them again. A sender past its rate is answered `429` with `Retry-After`; a
//! post that would take its user past the quota is answered `507` (Graph's answer for a
//! quota) and nothing is stored. Both are settings (`docs/limits.md`).
//!
//! The rate is a token bucket per sender: `post_burst` posts at once, refilled at
//! `post_rate` a second. The quota reads the user's usage from the store at most once
//! a [`USAGE_FRESH`] and counts the posts admitted since on top of it, so a burst cannot
//! slip past it between two reads; a post that replaces one in place is counted as new
//! until the next read (the quota errs on the safe side for a second).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::protocol::{ClientId, UserId};

use super::store::{Store, StoreError, Usage};

/// How long a user's usage read from the store is trusted (with the posts admitted
/// since added to it).
pub const USAGE_FRESH: Duration = Duration::from_secs(1);

/// Senders and users tracked at most; idle ones are forgotten first.
const MAX_TRACKED: usize = 100_000;

/// The limits, part of the service's settings.
#[derive(Clone, Debug)]
pub struct PostLimits {
    /// Posts a second one sender may keep up.
    pub rate: f64,
    /// Posts one sender may make at once, after a pause.
    pub burst: f64,
    /// Notifications one user keeps at most (deleted ones count until they expire).
    pub max_notifications: u64,
    /// Bytes of notifications one user keeps at most.
    pub max_bytes: u64,
}

impl Default for PostLimits {
    fn default() -> Self {
        Self {
            rate: 200.0,
            burst: 2_000.0,
            max_notifications: 10_000,
            max_bytes: 100 << 20,
        }
    }
}

impl PostLimits {
    /// No rate and no quota: for benchmarks that measure the service's own pace, and
    /// deployments whose every sender is trusted.
    pub fn unlimited() -> Self {
        Self {
            rate: 1e12,
            burst: 1e12,
            max_notifications: u64::MAX,
            max_bytes: u64::MAX,
        }
    }
}

/// Who posts: an app, or a user to their own devices.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Sender {
    /// An app backend (client credentials).
    App(ClientId),
    /// A user's note to their own devices.
    User(UserId),
}

/// Why a post is not admitted.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The sender posts faster than its rate: try again after the wait.
    #[error("posting too fast: at most {rate} notifications a second (bursts of {burst}); try again in {} ms", wait.as_millis())]
    Rate {
        /// Until a post is admitted again.
        wait: Duration,
        /// The rate in force.
        rate: f64,
        /// The burst in force.
        burst: f64,
    },
    /// The post would take the user past a quota.
    #[error(
        "the user's quota is full: {0}; delete notifications or let them expire, or raise the quota (docs/limits.md)"
    )]
    Quota(String),
    /// The store could not say what the user keeps.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A sender's tokens.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A user's usage as last read, with what was admitted since.
#[derive(Clone, Copy, Debug)]
struct Counted {
    usage: Usage,
    read: Instant,
}

/// The post rates and quotas in force.
pub struct Admission {
    limits: PostLimits,
    buckets: Mutex<HashMap<Sender, Bucket>>,
    usage: Mutex<HashMap<UserId, Counted>>,
}

impl Admission {
    /// Nothing counted yet, under `limits`.
    pub fn new(limits: PostLimits) -> Self {
        Self {
            limits,
            buckets: Mutex::default(),
            usage: Mutex::default(),
        }
    }

    /// Takes one post from `sender`'s bucket, or says how long to wait.
    pub fn rate(&self, sender: &Sender, now: Instant) -> Result<(), Refused> {
        let PostLimits { rate, burst, .. } = self.limits;
        let mut buckets = crate::sync::lock(&self.buckets);
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(sender) {
            // A full bucket is as good as none: forget those.
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let bucket = buckets.entry(sender.clone()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let refilled = now.duration_since(bucket.at).as_secs_f64() * rate;
        bucket.tokens = (bucket.tokens + refilled).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = Duration::from_secs_f64((1.0 - bucket.tokens) / rate.max(f64::MIN_POSITIVE));
        Err(Refused::Rate { wait, rate, burst })
    }

    /// Admits a post of `size` bytes for `user` under the quota (and counts it), or
    /// refuses it.
    pub async fn quota(
        &self,
        store: &dyn Store,
        user: &UserId,
        size: usize,
        now: Instant,
    ) -> Result<(), Refused> {
        let known = crate::sync::lock(&self.usage)
            .get(user)
            .filter(|c| now.duration_since(c.read) < USAGE_FRESH)
            .copied();
        let mut counted = match known {
            Some(counted) => counted,
            None => Counted {
                usage: store.usage(user).await?,
                read: now,
            },
        };
        let size = size as u64;
        let PostLimits {
            max_notifications,
            max_bytes,
            ..
        } = self.limits;
        let usage = counted.usage;
        if usage.notifications >= max_notifications {
            return Err(Refused::Quota(format!(
                "{} notifications kept, at most {max_notifications}",
                usage.notifications
            )));
        }
        if usage.bytes + size > max_bytes {
            return Err(Refused::Quota(format!(
                "{} bytes kept and {size} more, at most {max_bytes}",
                usage.bytes
            )));
        }
        counted.usage.notifications += 1;
        counted.usage.bytes += size;
        let mut all = crate::sync::lock(&self.usage);
        if all.len() >= MAX_TRACKED && !all.contains_key(user) {
            all.retain(|_, c| now.duration_since(c.read) < USAGE_FRESH);
        }
        all.insert(user.clone(), counted);
        Ok(())
    }

    /// Admits a post of `size` bytes from `sender` for `user`: its rate, then the
    /// user's quota.
    pub async fn admit(
        &self,
        store: &dyn Store,
        sender: &Sender,
        user: &UserId,
        size: usize,
    ) -> Result<(), Refused> {
        let now = Instant::now();
        self.rate(sender, now)?;
        self.quota(store, user, size, now).await
    }

    /// Forgets what was counted for `user` (their notifications were removed).
    pub fn forget(&self, user: &UserId) {
        crate::sync::lock(&self.usage).remove(user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> PostLimits {
        PostLimits {
            rate: 10.0,
            burst: 3.0,
            ..PostLimits::default()
        }
    }

    #[test]
    fn a_sender_gets_its_burst_then_its_rate() {
        let admission = Admission::new(limits());
        let app = Sender::App(ClientId::new("a"));
        let t0 = Instant::now();
        for _ in 0..3 {
            admission.rate(&app, t0).unwrap();
        }
        let Err(Refused::Rate { wait, .. }) = admission.rate(&app, t0) else {
            panic!("the fourth at once is refused");
        };
        assert_eq!(wait, Duration::from_millis(100));
        admission
            .rate(&app, t0 + wait + Duration::from_micros(1))
            .unwrap();
        let other = Sender::User(UserId::new("u"));
        admission.rate(&other, t0).unwrap();
    }
}
