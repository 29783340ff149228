//! The faults a soak does to its devices, their links and the node's disk: revoking a
//! device and signing it in again, a read on a device (through its agent's IPC), a
//! read, dismiss or delete with the CLI or in a web session, the sled node's disk
//! filled for a while, links through a node's proxy stalled or slowed for a while.

use std::sync::Mutex;
use std::time::Duration;

use serde_json::json;

use super::super::check;
use super::super::deploy::Device;
use super::super::load::Ledger;
use super::super::proxy::Link;
use super::super::watch::Watcher;
use super::super::web::Action;
use super::{Faulting, SIGN_IN_TRIES, STUCK};

impl Faulting {
    /// Revokes device `device` through a node that is up, once its agent has sent every
    /// change it took (a change the user made on a device being revoked may be lost,
    /// and the ledger would count it), then signs it in again after `down`; false when
    /// that could not be started (the agent was down, busy, or no node was up).
    pub(super) async fn revoke(&mut self, device: usize, down: Duration) -> Result<bool, String> {
        let mut held = self.devices[device].lock().await;
        if !held.process.is_running() {
            return Ok(false);
        }
        let status = held.call("status", json!({})).await.unwrap_or_default();
        let (Some(id), Some(0)) = (
            status["deviceId"].as_str(),
            status["pendingUpdates"].as_u64(),
        ) else {
            return Ok(false);
        };
        let Some(node) = self.nodes.iter().find(|node| node.process.is_running()) else {
            return Ok(false);
        };
        if node.admin(&["device", "revoke", id], None).await.is_err() {
            return Ok(false);
        }
        held.process.kill().await;
        held.revoked = true;
        drop(held);
        let (devices, stuck, target) = (
            self.devices.clone(),
            self.stuck.clone(),
            self.target.clone(),
        );
        self.restarts.spawn(async move {
            tokio::time::sleep(down).await;
            let mut held = devices[device].lock().await;
            // A node killed or the database restarted meanwhile may refuse the first
            // tries (`tidings login` passes over a node that is down, not over both).
            let mut tries = 0;
            let signed_in = loop {
                tries += 1;
                match held.sign_in().await {
                    Ok(()) => break Ok(()),
                    Err(e) if tries >= SIGN_IN_TRIES => break Err(e),
                    Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                }
            };
            match signed_in {
                Ok(()) => {
                    held.revoked = false;
                    target.unsids.lock().unwrap()[device]
                        .1
                        .clone_from(&held.unsid);
                }
                Err(e) => stuck.lock().unwrap().add(STUCK, || e),
            }
        });
        Ok(true)
    }

    /// Fills the node's disk, and frees it after `lasting`; false without a disk of
    /// its own.
    pub(super) fn fill_disk(&mut self, lasting: Duration) -> Result<bool, String> {
        let Some(disk) = self.disk.clone() else {
            return Ok(false);
        };
        disk.fill()?;
        self.restarts.spawn(async move {
            tokio::time::sleep(lasting).await;
            disk.free();
        });
        Ok(true)
    }

    /// Makes the links through node `node`'s proxy behave as `link`, for `lasting`.
    pub(super) fn link_for(&mut self, node: usize, link: Link, lasting: Duration) {
        let proxy = self.proxies[node].clone();
        proxy.set(link);
        self.restarts.spawn(async move {
            tokio::time::sleep(lasting).await;
            proxy.set(Link::Open);
        });
    }
}

/// Does `action` to one of the `s` notifications a device holds with the CLI
/// (`tidings read|dismiss|delete ID`, which asks its agent); false when it could not
/// (the agent was down, or held none).
pub(super) async fn act(
    device: &tokio::sync::Mutex<Device>,
    user: &str,
    (action, pick): (Action, u64),
    ledger: &Mutex<Ledger>,
) -> Result<bool, String> {
    let device = device.lock().await;
    let Some((app_id, id)) = pick_plain(&device, pick).await else {
        return Ok(false);
    };
    if device.cli(&[action.command(), &id]).await.is_err() {
        return Ok(false);
    }
    ledger.lock().unwrap().acted(user, &app_id, action, true);
    Ok(true)
}

/// Does `action` to a notification in the runner's web session `watcher`, through the
/// device API; false when it held none. An action without an answer (the node was
/// killed) may or may not have happened; one answered with an error did not.
pub(super) async fn web_act(
    watcher: &Watcher,
    (action, pick): (Action, u64),
    ledger: &Mutex<Ledger>,
) -> Result<bool, String> {
    let Some((app_id, status)) = watcher.act(pick, action).await else {
        return Ok(false);
    };
    match status {
        Some(status) if status.is_success() => {
            ledger
                .lock()
                .unwrap()
                .acted(&watcher.user, &app_id, action, true);
        }
        Some(_) => return Ok(false),
        None => ledger
            .lock()
            .unwrap()
            .acted(&watcher.user, &app_id, action, false),
    }
    Ok(true)
}

/// One of the `s` notifications a running device holds, picked by `pick`:
/// (`appNotificationId`, id).
async fn pick_plain(device: &Device, pick: u64) -> Option<(String, String)> {
    if !device.process.is_running() {
        return None;
    }
    check::pick_plain(&device.history().await.ok()?, pick)
}

/// Marks one of the `s` notifications device holds read, through its agent.
pub(super) async fn read(
    device: &tokio::sync::Mutex<Device>,
    user: &str,
    pick: u64,
    ledger: &Mutex<Ledger>,
) -> Result<bool, String> {
    let device = device.lock().await;
    let Some((app_id, id)) = pick_plain(&device, pick).await else {
        return Ok(false);
    };
    if device.call("markRead", json!({"ids": [id]})).await.is_err() {
        return Ok(false);
    }
    ledger
        .lock()
        .unwrap()
        .acted(user, &app_id, Action::Read, true);
    Ok(true)
}
