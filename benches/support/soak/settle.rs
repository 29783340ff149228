//! The end of a soak: once the faults stop, the devices are left to converge and are
//! compared with the ledger, then left to purge what expired.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tidings::protocol::Timestamp;

use super::check::{self, Held, Violations};
use super::load::Ledger;
use super::run::Devices;
use super::watch::Watcher;

/// How long the devices may take to converge once the faults stop.
pub const CONVERGE_WITHIN: Duration = Duration::from_secs(120);

/// How long after the last expiry the agents may take to purge what expired (their
/// retention runs every minute).
pub const PURGE_WITHIN: Duration = Duration::from_secs(75);

/// Compares the devices (the agents, then the runner's own) with the ledger until
/// nothing is wrong, or for [`CONVERGE_WITHIN`]; what was found last, how many
/// notifications the agents hold, and whether they converged.
pub async fn converge(
    devices: &Devices,
    watchers: &[Watcher],
    users: &[String],
    ledger: &Mutex<Ledger>,
) -> (Violations, usize, bool) {
    let mut users = users.to_vec();
    users.extend(watchers.iter().map(|w| w.user.clone()));
    let deadline = Instant::now() + CONVERGE_WITHIN;
    loop {
        // A device whose agent is down holds nothing here (its not starting again is a
        // violation of its own); then there is nothing to wait for.
        let (mut held, all_up) = holdings(devices).await;
        let count = held.iter().map(std::collections::HashMap::len).sum();
        held.extend(watchers.iter().map(|w| w.seen.lock().unwrap().held.clone()));
        let found = check::compare(&ledger.lock().unwrap(), &users, &held);
        if found.total() == 0 || !all_up || Instant::now() > deadline {
            let converged = found.total() == 0;
            return (found, count, converged);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What each agent holds now (nothing, for one that is down), and whether all are up.
async fn holdings(devices: &Devices) -> (Vec<Held>, bool) {
    let mut held = Vec::with_capacity(devices.len());
    let mut all_up = true;
    for device in devices.iter() {
        let device = device.lock().await;
        all_up &= device.process.is_running();
        held.push(device.history().await.unwrap_or_default());
    }
    (held, all_up)
}

/// Waits for the last expiry, then until no agent holds what expired (for
/// [`PURGE_WITHIN`] at most): what is still held then, and how long it took.
pub async fn purged(devices: &Devices, ledger: &Mutex<Ledger>) -> (Violations, Option<Duration>) {
    let last = ledger.lock().unwrap().expires.values().max().copied();
    let Some(last) = last else {
        return (Violations::default(), None);
    };
    tokio::time::sleep(last.since(Timestamp::now())).await;
    let started = Instant::now();
    loop {
        let (held, _) = holdings(devices).await;
        let left = check::expired_held(&ledger.lock().unwrap(), &held);
        if left.is_empty() {
            return (Violations::default(), Some(started.elapsed()));
        }
        if started.elapsed() > PURGE_WITHIN {
            let mut found = Violations::default();
            for (device, app_id) in left {
                found.add("expired, still on a device", || {
                    format!("{app_id} on device {device}")
                });
            }
            return (found, None);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
