//! Toasts: the rules ([`plan`]), the presenter seam the agent calls ([`Presenter`]),
//! and what a user does with a toast coming back ([`Feedback`]).
//!
//! Presenters: [`Headless`] logs (`--no-toasts`, and machines without a desktop); the
//! desktop presenters show native toasts: `desktop` on Linux (freedesktop notifications
//! through notify-rust), `winrt` on Windows (WinRT toasts under tidings' app id). The agent's
//! loop plans each stored change, calls the presenter, and turns feedback into local
//! changes that go through the outbox to every device.

#[cfg(target_os = "linux")]
pub mod desktop;
#[cfg(target_os = "linux")]
mod fdo;
#[cfg(target_os = "linux")]
pub mod ledger;
mod plan;
#[cfg(any(target_os = "linux", windows, test))]
mod roster;
#[cfg(any(target_os = "linux", windows, test))]
mod text;
#[cfg(windows)]
mod wincalls;
#[cfg(windows)]
pub mod winrt;
#[cfg(any(windows, test))]
mod winxml;

pub use plan::{BACKLOG_SHOWN, Context, ToastOp, plan, plan_backlog};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::protocol::{Notification, NotificationId};

/// Toasts a desktop presenter keeps on screen (and, on Windows, in the notification
/// centre) at most; the oldest is closed for a new one and stays in history.
pub const MAX_LIVE: usize = 20;

/// Locks `mutex`, also after a panic elsewhere poisoned it (the presenters' state stays
/// consistent at every await-free step, so it is safe to go on).
#[cfg(any(target_os = "linux", windows))]
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    crate::sync::lock(mutex)
}

/// One app's toast settings on this device (config `[apps."HOST"]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppPrefs {
    /// Show its toasts (default: yes).
    pub toasts: bool,
    /// Closing its toast dismisses it on every device (default: yes).
    pub dismiss_sync: bool,
}

impl Default for AppPrefs {
    fn default() -> Self {
        Self {
            toasts: true,
            dismiss_sync: true,
        }
    }
}

/// What the user did with a toast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feedback {
    /// Closed by the user ("dismissed by the user").
    Dismissed(NotificationId),
    /// Clicked (the default action): activated and read.
    Activated(NotificationId),
    /// The "Mark as read" action.
    MarkRead(NotificationId),
}

/// Where a presenter sends [`Feedback`]; the agent reads the other end.
pub type FeedbackSink = mpsc::UnboundedSender<Feedback>;

/// What the agent hands a presenter when it starts.
#[derive(Clone, Debug)]
pub struct Attachment {
    /// Where what users do with toasts goes.
    pub feedback: FeedbackSink,
    /// Where the presenter spawns its tasks: the agent waits for them (within a bound)
    /// when it stops.
    pub tasks: TaskTracker,
    /// Cancelled when the agent stops: tasks waiting for a toast's answer end then
    /// (the toast stays on screen, for the next agent to adopt).
    pub stop: CancellationToken,
}

/// Shows and closes toasts. Calls must not block: a presenter that talks to the
/// desktop does so on its own tasks.
pub trait Presenter: Send + Sync + 'static {
    /// Shows a new toast for `notification`.
    fn show(&self, notification: &Notification);
    /// Replaces the content of the toast shown for `notification` in place.
    fn update(&self, notification: &Notification) {
        self.show(notification);
    }
    /// Closes the toast of `id`, if one is shown.
    fn close(&self, id: &NotificationId);
    /// Shows one toast for `count` new notifications (a backlog).
    fn summary(&self, count: usize) {
        tracing::info!(count, "{count} new notifications");
    }
    /// Whether a toast for `id` is on screen.
    fn is_shown(&self, _id: &NotificationId) -> bool {
        false
    }
    /// Gives the presenter the sink for what users do with toasts and the agent's task
    /// tracker (called once, when the agent starts, before anything is shown).
    fn attach(&self, _attachment: Attachment) {}
    /// Toasts a previous agent left on screen, now this presenter's (`is_shown` is true
    /// for them): the agent closes or re-shows each once it starts.
    fn adopted(&self) -> Vec<NotificationId> {
        Vec::new()
    }
    /// The backend and its state, for `status`.
    fn describe(&self) -> String {
        "custom".to_owned()
    }
}

/// A presenter that only logs: for headless machines and `--no-toasts`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Headless;

impl Presenter for Headless {
    fn show(&self, notification: &Notification) {
        let title = notification
            .content
            .payload
            .visual_content
            .as_ref()
            .map_or("", |v| v.title.as_str());
        tracing::info!(id = %notification.id, app = %notification.content.target_host_name, title, "toast (headless)");
    }

    fn close(&self, id: &NotificationId) {
        tracing::info!(%id, "close toast (headless)");
    }

    fn describe(&self) -> String {
        "headless (toasts are logged, not shown)".to_owned()
    }
}
