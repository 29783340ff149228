//! The panel icon as one of the agent's parts on Linux: serves the StatusNotifierItem
//! on the session bus, registers it with the panel's watcher (again each time a
//! watcher appears: a panel started, or restarted, after the agent), redraws it when
//! what it shows changes, and carries out its clicks.
//!
//! Redraws follow the agent's events (a notification stored, read, removed), the
//! link's changes, do-not-disturb and paused apps set from anywhere, and the moment a
//! do-not-disturb ends or the quiet hours begin; a burst of changes is drawn once,
//! [`SETTLE`] after its first. Nothing wakes the loop while nothing changes.
//!
//! No session bus, or no panel that hosts status icons: the agent says so once in its
//! log and runs as before.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::protocol::Timestamp;

use super::super::AgentHandle;
use super::Bus;
use super::sni::{PanelIcon, WATCHER};
use super::state::{act, state};

/// How long after the first change of a burst the icon is redrawn (well within the
/// second in which a read elsewhere must lower the count).
pub const SETTLE: Duration = Duration::from_millis(100);

/// Serves the icon until `stop`; `quit` is what its "Quit" cancels.
pub async fn run(handle: AgentHandle, bus: Bus, quit: CancellationToken, stop: CancellationToken) {
    tokio::select! {
        () = stop.cancelled() => {}
        () = serve(&handle, &bus, &quit) => {}
    }
}

async fn serve(handle: &AgentHandle, bus: &Bus, quit: &CancellationToken) {
    let connection = match connect(bus).await {
        Ok(connection) => connection,
        Err(e) => {
            tracing::info!(error = %e, "no session bus: no icon in the panel");
            return;
        }
    };
    let (icon, mut clicks) =
        match PanelIcon::serve(&connection, &state(handle, Timestamp::now())).await {
            Ok(served) => served,
            Err(e) => {
                tracing::warn!(error = %e, "could not serve the panel icon on the session bus");
                return;
            }
        };
    let mut watchers = match watcher_changes(&connection).await {
        Ok(stream) => Some(stream),
        Err(e) => {
            tracing::warn!(error = %e, "cannot follow the panel's watcher; the icon registers once");
            None
        }
    };
    register(&icon, true).await;
    let mut events = handle.events();
    let mut redraw_at: Option<Instant> = None;
    loop {
        let due = dnd_turns(handle);
        tokio::select! {
            Some(action) = clicks.recv() => {
                act(handle, action, quit).await;
                redraw_at.get_or_insert_with(Instant::now);
            }
            event = events.recv() => {
                if matches!(event, Err(RecvError::Closed)) {
                    return;
                }
                redraw_at.get_or_insert_with(|| Instant::now() + SETTLE);
            }
            () = handle.link().changed() => {
                redraw_at.get_or_insert_with(|| Instant::now() + SETTLE);
            }
            () = handle.settings_changed() => {
                redraw_at.get_or_insert_with(Instant::now);
            }
            () = sleep_until(due) => {
                redraw_at.get_or_insert_with(Instant::now);
            }
            Some(appeared) = next_watcher(&mut watchers) => {
                if appeared {
                    register(&icon, false).await;
                }
            }
            () = sleep_until(redraw_at) => {
                redraw_at = None;
                if let Err(e) = icon.show(&state(handle, Timestamp::now())).await {
                    tracing::warn!(error = %e, "could not redraw the panel icon");
                }
            }
        }
    }
}

async fn connect(bus: &Bus) -> zbus::Result<zbus::Connection> {
    match bus {
        Bus::Session => zbus::Connection::session().await,
        Bus::Address(address) => {
            zbus::connection::Builder::address(address.as_str())
                .build()
                .await
        }
    }
}

/// Registers the icon with the panel's watcher; `first`: the agent is starting, so say
/// once in the log when there is none.
async fn register(icon: &PanelIcon, first: bool) {
    match icon.register().await {
        Ok(true) => tracing::info!(item = icon.name(), "the icon is in the panel"),
        Ok(false) if first => tracing::info!(
            "no panel hosts status icons (no {WATCHER} on the session bus); the icon appears when one starts"
        ),
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "the panel refused the icon"),
    }
}

type Watchers = zbus::fdo::NameOwnerChangedStream;

/// Each change of the watcher's owner on the bus.
async fn watcher_changes(connection: &zbus::Connection) -> zbus::Result<Watchers> {
    let proxy = zbus::fdo::DBusProxy::new(connection).await?;
    proxy
        .receive_name_owner_changed_with_args(&[(0, WATCHER)])
        .await
}

/// `Some(true)` when a watcher took the name, `Some(false)` when it went; never
/// returns without a stream.
async fn next_watcher(watchers: &mut Option<Watchers>) -> Option<bool> {
    let Some(stream) = watchers else {
        return std::future::pending().await;
    };
    let signal = stream.next().await?;
    Some(signal.args().is_ok_and(|args| args.new_owner().is_some()))
}

/// When do-not-disturb turns on or off by itself next (the icon shows it).
fn dnd_turns(handle: &AgentHandle) -> Option<Instant> {
    let now = Timestamp::now();
    let at = handle.dnd_changes_at(now).ok().flatten()?;
    let wait = u64::try_from(at.as_millis() - now.as_millis()).unwrap_or(0);
    // A second late: past the minute the quiet hours turn at, and past a rounded end.
    Some(Instant::now() + Duration::from_millis(wait) + Duration::from_secs(1))
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
