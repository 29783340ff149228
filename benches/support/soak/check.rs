//! What a soak checks and reports: each device against the ledger (nothing lost,
//! nothing that was never posted, every read everywhere, a user's devices agreeing),
//! and the processes' resources over time.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use tidings::protocol::Timestamp;

use super::load::Ledger;

/// One device's notifications by `appNotificationId`: (id, state, as [`state_of`]
/// gives it).
pub type Held = HashMap<String, (String, String)>;

/// One of the plain (`s`) notifications in `held`, picked by `pick` (the same pick
/// picks the same one from the same holdings): (`appNotificationId`, id).
pub fn pick_plain(held: &Held, pick: u64) -> Option<(String, String)> {
    let mut plain: Vec<_> = held
        .iter()
        .filter(|(app_id, _)| app_id.starts_with('s'))
        .collect();
    if plain.is_empty() {
        return None;
    }
    plain.sort();
    let (app_id, (id, _)) = plain[(pick % plain.len() as u64) as usize];
    Some((app_id.clone(), id.clone()))
}

/// A notification's state as the checks compare it: `readState/userActionState`.
pub fn state_of(n: &serde_json::Value) -> String {
    let text = |key: &str| n[key].as_str().unwrap_or_default();
    format!("{}/{}", text("readState"), text("userActionState"))
}

/// Whether a state (as [`state_of`] gives it) is read.
fn is_read(state: &str) -> bool {
    state.starts_with("read/")
}

/// Whether a state (as [`state_of`] gives it) is dismissed.
fn is_dismissed(state: &str) -> bool {
    state.ends_with("/dismissed")
}

/// What went wrong, by kind, with the first instance of each.
#[derive(Default)]
pub struct Violations {
    pub by_kind: Vec<(&'static str, u64, String)>,
}

impl Violations {
    pub fn add(&mut self, kind: &'static str, detail: impl FnOnce() -> String) {
        match self.by_kind.iter_mut().find(|(k, _, _)| *k == kind) {
            Some((_, count, _)) => *count += 1,
            None => self.by_kind.push((kind, 1, detail())),
        }
    }

    /// Takes in what `other` found too.
    pub fn merge(&mut self, other: Violations) {
        for (kind, count, first) in other.by_kind {
            match self.by_kind.iter_mut().find(|(k, _, _)| *k == kind) {
                Some((_, n, _)) => *n += count,
                None => self.by_kind.push((kind, count, first)),
            }
        }
    }

    pub fn total(&self) -> u64 {
        self.by_kind.iter().map(|(_, n, _)| n).sum()
    }
}

/// How far ahead of its expiry a notification is left out of the comparison: it may be
/// gone from one device and not yet from another.
const EXPIRY_SLACK: Duration = Duration::from_secs(2);

/// Compares what each device holds (`held[i]` is device `i`, of user `users[i]`) with
/// the ledger. Notifications that have expired (or are about to) are left out: they may
/// be purged on one device before another; [`expired_held`] checks they go.
pub fn compare(ledger: &Ledger, users: &[String], held: &[Held]) -> Violations {
    let mut found = Violations::default();
    let empty = HashSet::new();
    let soon = Timestamp::now().plus(EXPIRY_SLACK);
    let live = |holds: &Held| -> Held {
        let kept = holds
            .iter()
            .filter(|(app_id, _)| !ledger.expired_by(app_id, soon));
        kept.map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    let held: Vec<Held> = held.iter().map(live).collect();
    for (device, (user, holds)) in users.iter().zip(&held).enumerate() {
        let posted: HashSet<&String> = ledger
            .posted
            .get(user)
            .unwrap_or(&empty)
            .iter()
            .filter(|app_id| !ledger.expired_by(app_id, soon))
            .collect();
        let unanswered = ledger.unanswered.get(user).unwrap_or(&empty);
        let gone = ledger.gone.get(user).unwrap_or(&empty);
        for app_id in gone.iter().filter(|a| holds.contains_key(*a)) {
            found.add(
                "deleted (by a device, or with its group), still on a device",
                || format!("{app_id} of {user} on device {device}"),
            );
        }
        for app_id in posted.iter().filter(|a| !holds.contains_key(a.as_str())) {
            found.add("lost: answered 201, missing on a device", || {
                format!("{app_id} of {user} on device {device}")
            });
        }
        for app_id in holds
            .keys()
            .filter(|a| !posted.contains(a) && !unanswered.contains(*a) && !gone.contains(*a))
        {
            found.add("phantom: on a device, never posted", || {
                format!("{app_id} of {user} on device {device}")
            });
        }
        let read = ledger.read.get(user).unwrap_or(&empty);
        for app_id in read {
            if holds.get(app_id).is_some_and(|(_, state)| !is_read(state)) {
                found.add("a read did not reach every device", || {
                    format!("{app_id} of {user} on device {device}")
                });
            }
        }
        let dismissed = ledger.dismissed.get(user).unwrap_or(&empty);
        for app_id in dismissed {
            if holds
                .get(app_id)
                .is_some_and(|(_, state)| !is_dismissed(state))
            {
                found.add("a dismiss did not reach every device", || {
                    format!("{app_id} of {user} on device {device}")
                });
            }
        }
    }
    disagreements(users, &held, &mut found);
    found
}

/// The notifications past their expiry that a device still holds: (device, app id).
pub fn expired_held(ledger: &Ledger, held: &[Held]) -> Vec<(usize, String)> {
    let now = Timestamp::now();
    held.iter()
        .enumerate()
        .flat_map(|(device, holds)| {
            holds
                .keys()
                .filter(|app_id| ledger.expired_by(app_id, now))
                .map(move |app_id| (device, app_id.clone()))
        })
        .collect()
}

/// The devices of one user must hold the same notifications in the same state.
fn disagreements(users: &[String], held: &[Held], found: &mut Violations) {
    for (a, (user_a, held_a)) in users.iter().zip(held).enumerate() {
        for (b, (user_b, held_b)) in users.iter().zip(held).enumerate().skip(a + 1) {
            if user_a != user_b || held_a == held_b {
                continue;
            }
            let differ = held_a
                .iter()
                .find(|(k, v)| held_b.get(*k) != Some(v))
                .map(|(k, _)| k.clone())
                .or_else(|| held_b.keys().find(|k| !held_a.contains_key(*k)).cloned());
            found.add("two devices of a user disagree", || {
                format!("devices {a} and {b} of {user_a} on {differ:?}")
            });
        }
    }
}

/// One reading of a process: resident memory, open descriptors, threads.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reading {
    pub rss_kib: u64,
    pub fds: u64,
    pub threads: u64,
}

/// Reads `pid` from /proc; `None` when it is gone.
pub fn read_process(pid: u32) -> Option<Reading> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some(Reading {
        rss_kib: field("VmRSS:"),
        fds,
        threads: field("Threads:"),
    })
}

/// Bytes under `dir`.
pub fn size_of(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => size_of(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

/// A figure of a sample, by name.
type Figure<'a> = (&'static str, &'a dyn Fn(&Sample) -> u64);

/// A sample of the whole deployment at one moment.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub at: Duration,
    pub service: Reading,
    pub store_bytes: u64,
    /// The notifications the service keeps then, by the ledger (answered `201` or
    /// unanswered, not deleted).
    pub kept: u64,
    /// The largest agent.
    pub agent: Reading,
}

/// Growth at or above this, in percent, over the last half of a run is not flat.
pub const FLAT_BELOW: f64 = 10.0;

/// The figures' growth over the last half of the samples, in percent, per figure: from
/// the largest in the third quarter to the largest in the fourth. (Peaks, as the node
/// and the agents are killed and started again throughout: a process just started is
/// small, and what a leak shows is peaks that climb.) The store is judged by what it
/// grew since the start per notification it keeps, as it grows with what it keeps by
/// design.
pub fn growth(samples: &[Sample]) -> Vec<(&'static str, f64)> {
    let Some(start) = samples.first().map(|s| s.store_bytes) else {
        return Vec::new();
    };
    let (third, fourth) = (
        &samples[samples.len() / 2..samples.len() * 3 / 4],
        &samples[samples.len() * 3 / 4..],
    );
    if third.is_empty() || fourth.is_empty() {
        return Vec::new();
    }
    let per_kept = |s: &Sample| s.store_bytes.saturating_sub(start) / s.kept.max(1);
    let figures: [Figure; 6] = [
        ("service RSS", &|s| s.service.rss_kib),
        ("service fds", &|s| s.service.fds),
        ("service threads", &|s| s.service.threads),
        ("store growth per kept notification", &per_kept),
        ("largest agent RSS", &|s| s.agent.rss_kib),
        ("largest agent fds", &|s| s.agent.fds),
    ];
    figures
        .into_iter()
        .map(|(name, figure)| {
            let base = third.iter().map(figure).max().unwrap_or(0).max(1) as f64;
            let top = fourth.iter().map(figure).max().unwrap_or(0) as f64;
            (name, (top - base) / base * 100.0)
        })
        .collect()
}
