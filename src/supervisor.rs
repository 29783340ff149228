//! Telling a service manager how the process is doing: systemd's notify protocol
//! (`Type=notify` units) on Linux, nothing elsewhere or when not started by systemd
//! (no `NOTIFY_SOCKET`). Usable by every layer, like `config`.
//!
//! - [`ready`]: startup is done (`READY=1`).
//! - [`status`]: one line for `systemctl status` (`STATUS=...`).
//! - [`Watchdog`]: `WATCHDOG=1` every half of `WatchdogSec=`, sent while the loop it
//!   guards is being run: a loop whose thread is stuck stops the pings, and systemd
//!   restarts the process.

use std::future::Future;
use std::time::Duration;

/// Startup is done: the process serves.
pub fn ready() {
    send("READY=1");
}

/// The process is stopping.
pub fn stopping() {
    send("STOPPING=1");
}

/// `text` as the unit's status line (one line: line breaks become spaces).
pub fn status(text: &str) {
    send(&format!("STATUS={}", text.replace(['\n', '\r'], " ")));
}

#[cfg(target_os = "linux")]
fn send(message: &str) {
    let state = sd_notify::NotifyState::Custom(message);
    if let Err(e) = sd_notify::notify(&[state]) {
        tracing::debug!(error = %e, message, "could not notify the service manager");
    }
}

#[cfg(not(target_os = "linux"))]
fn send(_message: &str) {}

/// The watchdog systemd asked for (`WatchdogSec=`, given as `WATCHDOG_USEC`).
#[derive(Debug, Clone, Copy)]
pub struct Watchdog {
    every: Duration,
}

impl Watchdog {
    /// The watchdog of this process, if systemd set one: pings go every half of its
    /// timeout.
    pub fn from_env() -> Option<Self> {
        #[cfg(target_os = "linux")]
        let timeout = sd_notify::watchdog_enabled();
        #[cfg(not(target_os = "linux"))]
        let timeout: Option<Duration> = None;
        timeout
            .filter(|t| !t.is_zero())
            .map(|timeout| Self { every: timeout / 2 })
    }

    /// Runs `work`, pinging the watchdog every interval while it runs: the pings come
    /// from the same task, so they stop if `work` blocks its thread.
    pub async fn guard<F: Future>(this: Option<Self>, work: F) -> F::Output {
        let Some(watchdog) = this else {
            return work.await;
        };
        tokio::pin!(work);
        let mut tick = tokio::time::interval(watchdog.every);
        loop {
            tokio::select! {
                output = &mut work => return output,
                _ = tick.tick() => send("WATCHDOG=1"),
            }
        }
    }
}
