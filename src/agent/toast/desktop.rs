//! The desktop presenter on Linux: native toasts through notify-rust's pure-Rust zbus
//! backend (the freedesktop `org.freedesktop.Notifications` D-Bus API) on tokio.
//!
//! Each live toast has a task that showed it and waits for its response (started at
//! once: a response that comes before the wait starts is lost), holding the toast's
//! D-Bus connection (the server sends the close signal to the connection that showed
//! it). Responses become [`Feedback`]. Which toasts are out, the [`MAX_LIVE`](super::MAX_LIVE) cap
//! (the oldest is closed for a new one; it stays in history), replacing in place and
//! adoption are the shared `Roster`'s; each entry holds the server's id, the handle
//! and the waiting task. Every task runs on the agent's tracker ([`Attachment`]) and
//! ends when the agent stops. Without a notification server the agent goes on
//! (history, IPC, sync), says so once in its log and in `status`, and shows toasts
//! again as soon as a server answers.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use notify_rust::{Hint, NotificationHandle, NotificationResponse};

use crate::protocol::{Notification, NotificationId};

pub use super::fdo::set_call_timeout;
use super::fdo::{ShowError, bounded, build, capabilities, close_by_id, feedback_of, show};
use super::ledger::Ledger;
use super::roster::Roster;
use super::{Attachment, Presenter, lock};

/// Shows toasts on the session's notification server.
#[derive(Clone)]
pub struct Desktop {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    live: Mutex<Roster<Screen>>,
    /// Where the toasts on screen are written down (for the next agent).
    ledger: Ledger,
    /// The agent's feedback sink, task tracker and stop signal.
    attached: OnceLock<Attachment>,
    /// Whether the last attempt found no notification server.
    no_server: AtomicBool,
    /// Whether the server reads markup in bodies (its `body-markup` capability), once
    /// asked; asked again after the server went away.
    body_markup: Mutex<Option<bool>>,
    /// Tells a toast's newer showing from an older one.
    generation: AtomicU64,
}

/// Whether a toast just shown is still wanted.
enum Settled {
    /// Yes: wait for its response.
    Current,
    /// No; `close` unless a newer showing reuses the same server toast.
    Outdated {
        /// Close it on the server.
        close: bool,
    },
}

/// What the presenter holds of one toast on screen (or being shown).
#[derive(Default)]
struct Screen {
    /// The server's id, once shown (for an update in place).
    server_id: Option<u32>,
    handle: Option<Arc<NotificationHandle>>,
    waiter: Option<tokio::task::AbortHandle>,
}

impl Desktop {
    /// A presenter for the session bus of `$DBUS_SESSION_BUS_ADDRESS`, adopting the
    /// toasts that `ledger` says a previous agent left on screen.
    pub fn new(ledger: Ledger) -> Self {
        let adopted = ledger.load().into_iter().map(|(id, server_id)| {
            let screen = Screen {
                server_id: Some(server_id),
                ..Screen::default()
            };
            (id, screen)
        });
        Self {
            inner: Arc::new(Inner {
                live: Mutex::new(Roster::adopting(adopted)),
                ledger,
                generation: AtomicU64::new(1),
                ..Inner::default()
            }),
        }
    }

    /// Runs `task` on the agent's tracker. Before the agent attached the presenter
    /// there is none, and nothing can be shown (the agent attaches it first thing).
    fn spawn<F>(&self, task: F) -> Option<tokio::task::AbortHandle>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Some(attached) = self.inner.attached.get() else {
            tracing::error!("the desktop presenter was used before the agent started it");
            return None;
        };
        Some(attached.tasks.spawn(task).abort_handle())
    }

    /// Resolves when the agent stops.
    async fn stopped(&self) {
        match self.inner.attached.get() {
            Some(attached) => attached.stop.cancelled().await,
            None => std::future::pending().await,
        }
    }

    /// Stages the toasts on screen for the ledger while `live` is held (so lists are
    /// staged in the order of the changes), then writes it off the runtime.
    fn record(&self, live: MutexGuard<'_, Roster<Screen>>) {
        let shown = live
            .iter()
            .filter_map(|(id, screen)| screen.server_id.map(|server| (id.clone(), server)))
            .collect();
        self.inner.ledger.stage(shown);
        drop(live);
        if let Some(attached) = self.inner.attached.get() {
            let ledger = self.inner.ledger.clone();
            attached.tasks.spawn_blocking(move || ledger.write_staged());
        }
    }

    fn live(&self) -> MutexGuard<'_, Roster<Screen>> {
        lock(&self.inner.live)
    }

    /// Shows `notification`, replacing its toast in place when one is shown.
    fn present(&self, notification: &Notification) {
        let id = &notification.id;
        let generation = self.inner.generation.fetch_add(1, Ordering::Relaxed);
        let (replaces, evicted) = {
            let mut live = self.live();
            let evicted = live.show(id, generation);
            let replaces = live.get_mut(id).and_then(|screen| {
                // A showing still in flight is left to finish: it sees it is outdated
                // and closes its own toast (see `show_and_wait`).
                if screen.handle.is_some()
                    && let Some(waiter) = screen.waiter.take()
                {
                    waiter.abort();
                }
                screen.server_id
            });
            (replaces, evicted)
        };
        if let Some((_, old)) = evicted {
            self.spawn(close_toast(old));
        }
        let this = self.clone();
        let shown = notification.clone();
        let waiter =
            self.spawn(async move { this.show_and_wait(shown, replaces, generation).await });
        if let Some(screen) = self.live().current_mut(id, generation) {
            screen.waiter = waiter;
        }
    }

    async fn show_and_wait(
        &self,
        notification: Notification,
        replaces: Option<u32>,
        generation: u64,
    ) {
        let toast = build(&notification, replaces, self.body_markup().await);
        let id = notification.id;
        let shown = tokio::select! {
            shown = show(&toast) => shown,
            // The agent stops; a toast the server shows after all is not in the ledger.
            () = self.stopped() => return,
        };
        let handle = match shown {
            Ok(handle) => Arc::new(handle),
            Err(e) => {
                self.no_server(&e);
                self.forget(&id, generation);
                return;
            }
        };
        if self.inner.no_server.swap(false, Ordering::Relaxed) {
            tracing::info!("a notification server answers again; toasts are shown");
        }
        match self.settle(&id, generation, &handle) {
            Settled::Current => {}
            // Closed, evicted or replaced while it was being shown.
            Settled::Outdated { close: true } => {
                let _ = bounded(handle.close_async()).await;
                return;
            }
            // A newer showing replaced this very toast in place and owns it now.
            Settled::Outdated { close: false } => return,
        }
        let mut response = None;
        tokio::select! {
            () = handle.wait_for_action_async(|r: &NotificationResponse| response = Some(r.clone())) => {}
            // The toast stays on screen and in the ledger, for the next agent to adopt.
            () = self.stopped() => return,
        }
        if matches!(response, Some(NotificationResponse::Default)) {
            // dunst (and others) leave a clicked toast open: close it ourselves.
            let _ = bounded(handle.close_async()).await;
        }
        let feedback = response.as_ref().and_then(|r| feedback_of(r, &id));
        self.forget(&id, generation);
        if let (Some(feedback), Some(attached)) = (feedback, self.inner.attached.get()) {
            let _ = attached.feedback.send(feedback);
        }
    }

    /// Records the server's id of a toast just shown, unless it was closed, evicted or
    /// replaced while being shown.
    fn settle(
        &self,
        id: &NotificationId,
        generation: u64,
        handle: &Arc<NotificationHandle>,
    ) -> Settled {
        let mut live = self.live();
        if let Some(screen) = live.current_mut(id, generation) {
            screen.server_id = Some(handle.id());
            screen.handle = Some(handle.clone());
            self.record(live);
            return Settled::Current;
        }
        Settled::Outdated {
            close: live
                .get(id)
                .is_none_or(|screen| screen.server_id != Some(handle.id())),
        }
    }

    /// Drops the toast of `id` if it is still the showing of `generation`.
    fn forget(&self, id: &NotificationId, generation: u64) {
        let mut live = self.live();
        if live.finish(id, generation).is_some() {
            self.record(live);
        }
    }

    /// Whether the server reads markup in bodies. Unknown (the question failed): yes,
    /// as nearly every server does, so the body is escaped.
    async fn body_markup(&self) -> bool {
        if let Some(known) = *lock(&self.inner.body_markup) {
            return known;
        }
        match capabilities().await {
            Ok(capabilities) => {
                let markup = capabilities.iter().any(|c| c == "body-markup");
                *lock(&self.inner.body_markup) = Some(markup);
                markup
            }
            Err(e) => {
                tracing::debug!(error = %e, "could not ask the notification server's capabilities");
                true
            }
        }
    }

    fn no_server(&self, error: &ShowError) {
        *lock(&self.inner.body_markup) = None;
        if !self.inner.no_server.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                error = %error,
                "no notification server answers on the session bus; notifications are stored and synced but not shown (trying again with the next one)"
            );
        }
    }
}

/// Closes a toast that is no longer wanted and stops waiting for it.
async fn close_toast(toast: Screen) {
    match (toast.handle, toast.waiter, toast.server_id) {
        (Some(handle), waiter, _) => {
            if let Some(waiter) = waiter {
                waiter.abort();
            }
            let _ = bounded(handle.close_async()).await;
        }
        // Adopted from a previous agent: closed by its id.
        (None, None, Some(server_id)) => {
            if let Err(e) = close_by_id(server_id).await {
                tracing::debug!(server_id, error = %e, "could not close a toast of a previous agent");
            }
        }
        // Being shown: its task closes it once the server answers (it is gone from
        // the live set by then).
        (None, _, _) => {}
    }
}

impl Presenter for Desktop {
    fn show(&self, notification: &Notification) {
        self.present(notification);
    }

    fn update(&self, notification: &Notification) {
        self.present(notification);
    }

    fn close(&self, id: &NotificationId) {
        let mut live = self.live();
        // Not shown here (most closes, e.g. of purged notifications): nothing to do.
        let Some(toast) = live.close(id) else {
            return;
        };
        self.record(live);
        self.spawn(close_toast(toast));
    }

    fn summary(&self, count: usize) {
        let mut toast = notify_rust::Notification::new();
        toast
            .appname("tidings")
            .summary(&format!("{count} new notifications"))
            .body("Run `tidings history` to see them.")
            .hint(Hint::DesktopEntry("tidings".to_owned()));
        let this = self.clone();
        self.spawn(async move {
            if let Err(e) = show(&toast).await {
                this.no_server(&e);
            }
        });
    }

    fn is_shown(&self, id: &NotificationId) -> bool {
        self.live().contains(id)
    }

    fn attach(&self, attachment: Attachment) {
        let _ = self.inner.attached.set(attachment);
    }

    fn adopted(&self) -> Vec<NotificationId> {
        self.live().adopted()
    }

    fn describe(&self) -> String {
        if self.inner.no_server.load(Ordering::Relaxed) {
            "desktop (no notification server on the session bus: not shown)".to_owned()
        } else {
            "desktop (freedesktop notifications over D-Bus)".to_owned()
        }
    }
}
