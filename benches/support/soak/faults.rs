//! The faults a soak does to its devices, their links and the node's disk: revoking a
//! device and signing it in again, a read on a device, the sled node's disk filled for a
//! while, links through a node's proxy stalled or slowed for a while.

use std::sync::Mutex;
use std::time::Duration;

use serde_json::json;

use super::super::deploy::Device;
use super::super::load::Ledger;
use super::super::proxy::Link;
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

/// Marks one of the `s` notifications device holds read, through its agent.
pub(super) async fn read(
    device: &tokio::sync::Mutex<Device>,
    user: &str,
    pick: u64,
    ledger: &Mutex<Ledger>,
) -> Result<bool, String> {
    let device = device.lock().await;
    if !device.process.is_running() {
        return Ok(false);
    }
    let Ok(held) = device.history().await else {
        return Ok(false);
    };
    let mut plain: Vec<_> = held
        .iter()
        .filter(|(app_id, _)| app_id.starts_with('s'))
        .collect();
    if plain.is_empty() {
        return Ok(false);
    }
    plain.sort();
    let (app_id, (id, _)) = plain[(pick % plain.len() as u64) as usize];
    if device.call("markRead", json!({"ids": [id]})).await.is_err() {
        return Ok(false);
    }
    ledger
        .lock()
        .unwrap()
        .read
        .entry(user.to_owned())
        .or_default()
        .insert(app_id.clone());
    Ok(true)
}
