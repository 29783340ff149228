//! The panel icon's loop, whatever the panel: redraws the icon when what it shows
//! changes and carries out its clicks, until the agent stops.
//!
//! Redraws follow the agent's events (a notification stored, read, removed), the
//! link's changes, do-not-disturb and paused apps set from anywhere, and the moment a
//! do-not-disturb ends or the quiet hours begin; a burst of changes is drawn once,
//! [`SETTLE`] after its first. Nothing wakes the loop while nothing changes. A
//! [`Panel`] is what draws: the StatusNotifierItem on Linux (`live.rs`), the
//! notification-area icon on Windows (`win.rs`).

use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::protocol::Timestamp;

use super::super::AgentHandle;
use super::menu::{Action, State};
use super::state::{act, state};

/// How long after the first change of a burst the icon is redrawn (well within the
/// second in which a read elsewhere must lower the count).
pub const SETTLE: Duration = Duration::from_millis(100);

/// Where the icon is drawn.
pub(super) trait Panel {
    /// Draws `state` (a failure is logged, and the next change draws again).
    async fn show(&mut self, state: &State);
    /// Resolves when the panel needs tending ([`Self::tend`]): on Linux, a panel's
    /// watcher appeared. Never, where nothing of the kind happens.
    async fn needs_tending(&mut self);
    /// Tends the panel (on Linux: registers the icon with the new watcher).
    async fn tend(&mut self);
}

/// What woke the loop.
enum Wake {
    Click(Action),
    /// Redraw now, or after [`SETTLE`].
    Redraw {
        settle: bool,
    },
    Draw,
    Tend,
    Stop,
}

/// Runs `panel` until the agent's events end; `quit` is what its "Quit" cancels.
pub(super) async fn drive(
    handle: &AgentHandle,
    panel: &mut impl Panel,
    clicks: &mut mpsc::Receiver<Action>,
    quit: &CancellationToken,
) {
    let mut events = handle.events();
    let mut redraw_at: Option<Instant> = None;
    loop {
        let due = dnd_turns(handle);
        let wake = tokio::select! {
            Some(action) = clicks.recv() => Wake::Click(action),
            event = events.recv() => match event {
                Err(RecvError::Closed) => Wake::Stop,
                _ => Wake::Redraw { settle: true },
            },
            () = handle.link().changed() => Wake::Redraw { settle: true },
            () = handle.settings_changed() => Wake::Redraw { settle: false },
            () = sleep_until(due) => Wake::Redraw { settle: false },
            () = panel.needs_tending() => Wake::Tend,
            () = sleep_until(redraw_at) => Wake::Draw,
        };
        match wake {
            Wake::Click(action) => {
                act(handle, action, quit).await;
                redraw_at.get_or_insert_with(Instant::now);
            }
            Wake::Redraw { settle } => {
                let at = Instant::now() + if settle { SETTLE } else { Duration::ZERO };
                redraw_at.get_or_insert(at);
            }
            Wake::Draw => {
                redraw_at = None;
                panel.show(&state(handle, Timestamp::now())).await;
            }
            Wake::Tend => panel.tend().await,
            Wake::Stop => return,
        }
    }
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
