//! Bounded work before sign-in: password checks run on a small pool of their own
//! threads behind a short queue, and failed attempts are limited per client address and
//! per (user name, address).
//!
//! Why: every password check is argon2 with 19 MiB of memory. Run on tokio's blocking
//! pool (up to 512 threads, each keeping its own glibc heap arena), 200 concurrent wrong
//! passwords took the service from 70 MiB to 9.1 GiB and kept it there. Here at most
//! `workers` checks run at once, on the same few threads, each reusing one buffer for
//! argon2's memory, and at most `queue` wait; beyond that the caller is answered `503`
//! at once ([`Busy`]).
//!
//! Failed attempts ([`Strikes`]): each key has a number of free failures within a
//! window; past them every further failure blocks the key for a delay that doubles, up
//! to a ceiling. Keys are the address (generous: many users may share one NAT) and the
//! (user name, address) pair (strict), so guessing one account is slowed hard while
//! someone elsewhere cannot lock its owner out. A success clears its pair and is never
//! counted. IPv6 addresses count by their /64, which one host usually controls whole.
//! A user name is counted by a 128-bit digest of it, never kept: a record costs the
//! same for a 65,000-character name as for `alice`. Records of failures older than the
//! window are pruned by age as failures come in (at most once a [`PRUNE_EVERY`]), and
//! at most `MAX_KEYS` are kept per kind.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// The limits on sign-in work, part of the service's settings.
#[derive(Clone, Debug)]
pub struct SignInLimits {
    /// Password checks running at once (default: one per core).
    pub workers: usize,
    /// Password checks waiting at most; more get `503`.
    pub queue: usize,
    /// Failures from one address before it is slowed.
    pub free_per_address: u32,
    /// Failures for one user name from one address before that pair is slowed.
    pub free_per_user: u32,
    /// The first delay once slowed; it doubles with each further failure.
    pub first_delay: Duration,
    /// The longest delay.
    pub max_delay: Duration,
    /// Failures older than this are forgotten.
    pub window: Duration,
}

impl Default for SignInLimits {
    fn default() -> Self {
        Self {
            workers: std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            queue: 8,
            free_per_address: 20,
            free_per_user: 5,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15 * 60),
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// Every password-check thread is busy and the queue is full: try again shortly.
#[derive(Debug, thiserror::Error)]
#[error("too many sign-ins at once; try again in a second")]
pub struct Busy;

/// What a password thread does: check a password against its stored PHC hash, or hash
/// a new one; each answers where it is told.
enum Job {
    Verify {
        password: String,
        hash: String,
        done: oneshot::Sender<bool>,
    },
    Hash {
        password: String,
        done: oneshot::Sender<Result<String, super::auth::AuthError>>,
    },
}

/// A fixed pool of threads that verify and hash passwords, fed through a bounded queue.
/// Each thread keeps argon2's working memory (19 MiB) for its life, so the service
/// holds that much per thread, however many passwords it handles.
pub struct PasswordPool {
    jobs: mpsc::SyncSender<Job>,
}

impl PasswordPool {
    /// Starts `workers` threads (at least one) behind a queue of `queue` jobs. The
    /// threads end when the pool is dropped.
    pub fn start(workers: usize, queue: usize) -> std::io::Result<Self> {
        let (jobs, receiver) = mpsc::sync_channel::<Job>(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..workers.max(1) {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("tidings-password-{n}"))
                .spawn(move || work(&receiver))?;
        }
        Ok(Self { jobs })
    }

    /// Whether `password` matches the PHC `hash`; [`Busy`] when the queue is full.
    pub async fn verify(&self, password: String, hash: String) -> Result<bool, Busy> {
        let (done, answer) = oneshot::channel();
        let job = Job::Verify {
            password,
            hash,
            done,
        };
        self.jobs.try_send(job).map_err(|_| Busy)?;
        answer.await.map_err(|_| Busy)
    }

    /// `password`'s argon2id PHC hash, made on a password thread; [`Busy`] when the
    /// queue is full.
    pub async fn hash(
        &self,
        password: String,
    ) -> Result<Result<String, super::auth::AuthError>, Busy> {
        let (done, answer) = oneshot::channel();
        self.jobs
            .try_send(Job::Hash { password, done })
            .map_err(|_| Busy)?;
        answer.await.map_err(|_| Busy)
    }
}

fn work(receiver: &Mutex<mpsc::Receiver<Job>>) {
    // argon2's working memory, allocated once and reused for every check and hash.
    let mut memory = Vec::new();
    loop {
        let job = {
            let guard = crate::sync::lock(receiver);
            guard.recv()
        };
        match job {
            Err(_) => return,
            Ok(Job::Verify {
                password,
                hash,
                done,
            }) => {
                let valid = super::auth::verify_password_in(&password, &hash, &mut memory);
                let _ = done.send(valid);
            }
            Ok(Job::Hash { password, done }) => {
                let _ = done.send(super::auth::hash_password_in(&password, &mut memory));
            }
        }
    }
}

/// One key's failures.
#[derive(Clone, Copy, Debug)]
struct Strike {
    count: u32,
    last: Instant,
    blocked_until: Instant,
}

/// Failure counts by key, with a doubling delay past the free ones. Bounded: at most
/// `MAX_KEYS` keys are tracked; stale ones are pruned by age.
#[derive(Debug)]
struct Ledger<K> {
    strikes: HashMap<K, Strike>,
    pruned: Option<Instant>,
}

/// Keys tracked per kind at most (about 8 MiB each: keys are fixed-size).
const MAX_KEYS: usize = 100_000;

/// How often, at most, stale records are pruned (as failures come in).
pub const PRUNE_EVERY: Duration = Duration::from_secs(60);

impl<K: Hash + Eq + Clone> Ledger<K> {
    fn new() -> Self {
        Self {
            strikes: HashMap::new(),
            pruned: None,
        }
    }

    /// Drops the records whose failures are older than the window and that block no
    /// longer.
    fn prune(&mut self, now: Instant, window: Duration) {
        self.strikes
            .retain(|_, s| now.duration_since(s.last) < window || s.blocked_until > now);
        self.pruned = Some(now);
    }

    /// How long `key` must still wait, if it is blocked.
    fn wait(&self, key: &K, now: Instant) -> Option<Duration> {
        let strike = self.strikes.get(key)?;
        (strike.blocked_until > now).then(|| strike.blocked_until - now)
    }

    fn fail(&mut self, key: &K, now: Instant, free: u32, limits: &SignInLimits) {
        if self
            .pruned
            .is_none_or(|at| now.duration_since(at) >= PRUNE_EVERY)
        {
            self.prune(now, limits.window);
        }
        if !self.strikes.contains_key(key) && self.strikes.len() >= MAX_KEYS {
            self.prune(now, limits.window);
            if self.strikes.len() >= MAX_KEYS {
                tracing::warn!("too many sign-in failure records; not tracking more");
                return;
            }
        }
        let strike = self.strikes.entry(key.clone()).or_insert(Strike {
            count: 0,
            last: now,
            blocked_until: now,
        });
        if now.duration_since(strike.last) >= limits.window {
            strike.count = 0;
        }
        strike.count += 1;
        strike.last = now;
        if strike.count > free {
            let doublings = (strike.count - free - 1).min(20);
            let delay = limits.first_delay.saturating_mul(1 << doublings);
            strike.blocked_until = now + delay.min(limits.max_delay);
        }
    }

    fn forget(&mut self, key: &K) {
        self.strikes.remove(key);
    }
}

/// A user name as counted: the first 128 bits of its SHA-256.
type NameKey = u128;

fn name_key(user: &str) -> NameKey {
    let digest = super::auth::sha256(user);
    let mut first = [0; 16];
    first.copy_from_slice(&digest[..16]);
    u128::from_le_bytes(first)
}

/// The two ledgers: by address, and by (user name, address).
type Ledgers = (Ledger<IpAddr>, Ledger<(NameKey, IpAddr)>);

/// Failed sign-ins by address and by (user name, address).
pub struct Strikes {
    limits: SignInLimits,
    inner: Mutex<Ledgers>,
}

/// The address a client is counted by: IPv4 as it is, IPv6 by its /64 (sign-in
/// failures, and open connections per address).
pub fn counted(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or_else(
            || {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            },
            IpAddr::V4,
        ),
    }
}

impl Strikes {
    /// An empty record under `limits`.
    pub fn new(limits: SignInLimits) -> Self {
        Self {
            limits,
            inner: Mutex::new((Ledger::new(), Ledger::new())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ledgers> {
        crate::sync::lock(&self.inner)
    }

    /// How long a sign-in of `user` from `addr` must wait, if it must.
    pub fn wait(&self, user: &str, addr: IpAddr, now: Instant) -> Option<Duration> {
        let addr = counted(addr);
        let ledgers = self.lock();
        let by_addr = ledgers.0.wait(&addr, now);
        let by_pair = ledgers.1.wait(&(name_key(user), addr), now);
        by_addr.max(by_pair)
    }

    /// Counts a failed sign-in.
    pub fn failed(&self, user: &str, addr: IpAddr, now: Instant) {
        let addr = counted(addr);
        let limits = &self.limits;
        let mut ledgers = self.lock();
        ledgers.0.fail(&addr, now, limits.free_per_address, limits);
        let pair = (name_key(user), addr);
        ledgers.1.fail(&pair, now, limits.free_per_user, limits);
    }

    /// A successful sign-in: its pair starts afresh (the address's count stays).
    pub fn succeeded(&self, user: &str, addr: IpAddr) {
        self.lock().1.forget(&(name_key(user), counted(addr)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> SignInLimits {
        SignInLimits {
            free_per_address: 4,
            free_per_user: 2,
            ..SignInLimits::default()
        }
    }

    const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const ELSEWHERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn failures_past_the_free_ones_block_with_a_doubling_delay() {
        let strikes = Strikes::new(limits());
        let t0 = Instant::now();
        for _ in 0..2 {
            strikes.failed("alice", HOME, t0);
        }
        assert_eq!(strikes.wait("alice", HOME, t0), None, "two are free");
        strikes.failed("alice", HOME, t0);
        assert_eq!(
            strikes.wait("alice", HOME, t0),
            Some(Duration::from_secs(1))
        );
        strikes.failed("alice", HOME, t0);
        assert_eq!(
            strikes.wait("alice", HOME, t0),
            Some(Duration::from_secs(2))
        );
        let later = t0 + Duration::from_secs(2);
        assert_eq!(
            strikes.wait("alice", HOME, later),
            None,
            "the delay runs out"
        );
    }

    #[test]
    fn someone_elsewhere_cannot_lock_the_owner_out() {
        let strikes = Strikes::new(limits());
        let t0 = Instant::now();
        for _ in 0..3 {
            strikes.failed("alice", ELSEWHERE, t0);
        }
        assert!(strikes.wait("alice", ELSEWHERE, t0).is_some());
        assert_eq!(strikes.wait("alice", HOME, t0), None);
    }

    #[test]
    fn one_address_guessing_many_names_is_slowed_too() {
        let strikes = Strikes::new(limits());
        let t0 = Instant::now();
        for name in ["a", "b", "c", "d", "e"] {
            strikes.failed(name, HOME, t0);
        }
        assert!(
            strikes.wait("f", HOME, t0).is_some(),
            "the address is slowed"
        );
        assert_eq!(strikes.wait("f", ELSEWHERE, t0), None);
    }

    #[test]
    fn success_clears_the_pair_and_old_failures_are_forgotten() {
        let strikes = Strikes::new(limits());
        let t0 = Instant::now();
        for _ in 0..2 {
            strikes.failed("alice", HOME, t0);
        }
        strikes.succeeded("alice", HOME);
        strikes.failed("alice", HOME, t0);
        assert_eq!(strikes.wait("alice", HOME, t0), None, "counting restarted");
        let much_later = t0 + limits().window;
        for _ in 0..2 {
            strikes.failed("alice", HOME, much_later);
        }
        assert_eq!(strikes.wait("alice", HOME, much_later), None);
    }

    #[test]
    fn records_are_pruned_by_age_and_keep_no_user_name() {
        let strikes = Strikes::new(limits());
        let t0 = Instant::now();
        let long = "x".repeat(65_000);
        for n in 0..50_u8 {
            let addr = IpAddr::V4(std::net::Ipv4Addr::new(10, 1, 0, n));
            strikes.failed(&format!("{long}{n}"), addr, t0);
        }
        assert_eq!(strikes.lock().1.strikes.len(), 50);
        assert!(
            std::mem::size_of::<(NameKey, IpAddr)>() <= 48,
            "a pair's key is fixed-size"
        );
        // Long after the window, the next failure prunes every stale record.
        let later = t0 + limits().window + PRUNE_EVERY;
        strikes.failed("alice", HOME, later);
        let ledgers = strikes.lock();
        assert_eq!((ledgers.0.strikes.len(), ledgers.1.strikes.len()), (1, 1));
    }

    #[test]
    fn ipv6_counts_by_its_slash_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(counted(a), counted(b));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(counted(mapped), HOME);
    }

    #[tokio::test]
    async fn the_pool_answers_and_refuses_beyond_its_queue() {
        let hash = crate::service::auth::hash_password("pw").unwrap();
        let pool = PasswordPool::start(1, 1).unwrap();
        assert!(pool.verify("pw".into(), hash.clone()).await.unwrap());
        assert!(!pool.verify("no".into(), hash.clone()).await.unwrap());
        let burst: Vec<_> = (0..8)
            .map(|_| pool.verify("no".into(), hash.clone()))
            .collect();
        let answers = futures_util::future::join_all(burst).await;
        assert!(
            answers.iter().any(Result::is_err),
            "one runs, one waits, the rest are refused"
        );
        assert!(answers.iter().any(Result::is_ok));
    }
}
