//! The desktop presenter on Linux: native toasts through notify-rust's pure-Rust zbus
//! backend (the freedesktop `org.freedesktop.Notifications` D-Bus API) on tokio.
//!
//! Each live toast has a task that showed it and waits for its response (started at
//! once: a response that comes before the wait starts is lost), holding the toast's
//! D-Bus connection (the server sends the close signal to the connection that showed
//! it). Responses become [`Feedback`]. At most [`MAX_LIVE`] toasts stay on screen; the
//! oldest is closed for a new one (it stays in history). Without a notification server
//! the agent goes on (history, IPC, sync), says so once in its log and in `status`, and
//! shows toasts again as soon as a server answers.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use notify_rust::{CloseReason, Hint, NotificationHandle, NotificationResponse, Timeout, Urgency};

use crate::protocol::{Notification, NotificationId, Priority};

use super::ledger::Ledger;
use super::text::escape_markup;
use super::{Feedback, FeedbackSink, MAX_LIVE, Presenter, lock};
use crate::protocol::display::printable;

/// The action key of "Mark as read".
const MARK_READ: &str = "read";
/// How long a call to the notification server may take by default (libdbus's
/// default): a server that hangs costs a connection for this long, not for ever.
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(25);

/// The call timeout in force: [`CALL_TIMEOUT`] unless [`set_call_timeout`] said otherwise.
static CALL_TIMEOUT_SET: OnceLock<std::time::Duration> = OnceLock::new();

/// Sets how long a call to the notification server may take, once, before the first
/// toast (`TIDINGS_TOAST_CALL_TIMEOUT`, for a slow desktop or a test of a hung server).
pub fn set_call_timeout(timeout: std::time::Duration) {
    let _ = CALL_TIMEOUT_SET.set(timeout);
}

fn call_timeout() -> std::time::Duration {
    CALL_TIMEOUT_SET.get().copied().unwrap_or(CALL_TIMEOUT)
}

/// A call to the notification server that got no answer in time.
#[derive(Debug, thiserror::Error)]
#[error("the notification server did not answer within {:?}", call_timeout())]
struct NoAnswer;

/// Why a toast was not shown.
#[derive(Debug, thiserror::Error)]
enum ShowError {
    #[error(transparent)]
    Server(#[from] notify_rust::error::Error),
    #[error(transparent)]
    NoAnswer(#[from] NoAnswer),
}

/// Shows `toast`, giving up after the call timeout.
async fn show(toast: &notify_rust::Notification) -> Result<NotificationHandle, ShowError> {
    Ok(bounded(toast.show_async()).await??)
}

/// Runs a call to the notification server, giving up after the call timeout.
async fn bounded<F: std::future::Future>(call: F) -> Result<F::Output, NoAnswer> {
    tokio::time::timeout(call_timeout(), call)
        .await
        .map_err(|_| NoAnswer)
}

/// Shows toasts on the session's notification server.
#[derive(Clone)]
pub struct Desktop {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    live: Mutex<Live>,
    /// Where the toasts on screen are written down (for the next agent).
    ledger: Ledger,
    feedback: OnceLock<FeedbackSink>,
    /// Whether the last attempt found no notification server.
    no_server: AtomicBool,
    /// Whether the server reads markup in bodies (its `body-markup` capability), once
    /// asked; asked again after the server went away.
    body_markup: Mutex<Option<bool>>,
    /// Tells a toast's newer showing from an older one.
    generation: AtomicU64,
}

#[derive(Default)]
struct Live {
    toasts: HashMap<NotificationId, Toast>,
    /// Oldest first, for the cap.
    order: VecDeque<NotificationId>,
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

/// One toast on screen (or being shown).
struct Toast {
    generation: u64,
    /// The server's id, once shown (for an update in place).
    server_id: Option<u32>,
    handle: Option<Arc<NotificationHandle>>,
    waiter: Option<tokio::task::AbortHandle>,
}

impl Desktop {
    /// A presenter for the session bus of `$DBUS_SESSION_BUS_ADDRESS`, adopting the
    /// toasts that `ledger` says a previous agent left on screen.
    pub fn new(ledger: Ledger) -> Self {
        let mut live = Live::default();
        for (id, server_id) in ledger.load() {
            live.order.push_back(id.clone());
            live.toasts.insert(
                id,
                Toast {
                    generation: 0,
                    server_id: Some(server_id),
                    handle: None,
                    waiter: None,
                },
            );
        }
        Self {
            inner: Arc::new(Inner {
                live: Mutex::new(live),
                ledger,
                generation: AtomicU64::new(1),
                ..Inner::default()
            }),
        }
    }

    /// Writes the toasts on screen to the ledger, from a snapshot taken under the
    /// lock (the file is written after it is released).
    fn record(&self, live: std::sync::MutexGuard<'_, Live>) {
        let shown = live
            .toasts
            .iter()
            .filter_map(|(id, toast)| toast.server_id.map(|server| (id.clone(), server)))
            .collect();
        drop(live);
        self.inner.ledger.save(&shown);
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        lock(&self.inner.live)
    }

    /// Shows `notification`, replacing its toast in place when one is shown.
    fn present(&self, notification: &Notification) {
        let generation = self.inner.generation.fetch_add(1, Ordering::Relaxed);
        let (replaces, evicted) = {
            let mut live = self.live();
            let replaces = live.toasts.get(&notification.id).and_then(|t| t.server_id);
            if let Some(old) = live.toasts.get_mut(&notification.id) {
                // A showing still in flight is left to finish: it sees it is outdated
                // and closes its own toast (see `show_and_wait`).
                if old.handle.is_some()
                    && let Some(waiter) = old.waiter.take()
                {
                    waiter.abort();
                }
                old.generation = generation;
            } else {
                live.toasts.insert(
                    notification.id.clone(),
                    Toast {
                        generation,
                        server_id: None,
                        handle: None,
                        waiter: None,
                    },
                );
                live.order.push_back(notification.id.clone());
            }
            let evicted = if live.order.len() > MAX_LIVE {
                live.order
                    .pop_front()
                    .and_then(|id| live.toasts.remove(&id))
            } else {
                None
            };
            (replaces, evicted)
        };
        if let Some(old) = evicted {
            tokio::spawn(close_toast(old));
        }
        let this = self.clone();
        let shown = notification.clone();
        let task =
            tokio::spawn(async move { this.show_and_wait(shown, replaces, generation).await });
        if let Some(entry) = self.live().toasts.get_mut(&notification.id)
            && entry.generation == generation
        {
            entry.waiter = Some(task.abort_handle());
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
        let handle = match show(&toast).await {
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
        handle
            .wait_for_action_async(|r: &NotificationResponse| response = Some(r.clone()))
            .await;
        if matches!(response, Some(NotificationResponse::Default)) {
            // dunst (and others) leave a clicked toast open: close it ourselves.
            let _ = bounded(handle.close_async()).await;
        }
        let feedback = response.as_ref().and_then(|r| feedback_of(r, &id));
        self.forget(&id, generation);
        if let (Some(feedback), Some(sink)) = (feedback, self.inner.feedback.get()) {
            let _ = sink.send(feedback);
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
        match live.toasts.get_mut(id) {
            Some(entry) if entry.generation == generation => {
                entry.server_id = Some(handle.id());
                entry.handle = Some(handle.clone());
                self.record(live);
                Settled::Current
            }
            Some(entry) => Settled::Outdated {
                close: entry.server_id != Some(handle.id()),
            },
            None => Settled::Outdated { close: true },
        }
    }

    /// Drops the toast of `id` if it is still the showing of `generation`.
    fn forget(&self, id: &NotificationId, generation: u64) {
        let mut live = self.live();
        if live
            .toasts
            .get(id)
            .is_some_and(|t| t.generation == generation)
        {
            live.toasts.remove(id);
            live.order.retain(|other| other != id);
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

/// What the server's answer about a toast means for its notification: a click is
/// activated + read, "Mark as read" is read, the user closing it is a dismiss. A toast
/// that expired, or was closed by a call (ours, or another program's), changes nothing.
fn feedback_of(response: &NotificationResponse, id: &NotificationId) -> Option<Feedback> {
    match response {
        NotificationResponse::Default => Some(Feedback::Activated(id.clone())),
        NotificationResponse::Action(key) if key == MARK_READ => {
            Some(Feedback::MarkRead(id.clone()))
        }
        NotificationResponse::Closed(CloseReason::Dismissed) => {
            Some(Feedback::Dismissed(id.clone()))
        }
        _ => None,
    }
}

/// Closes a toast that is no longer wanted and stops waiting for it.
async fn close_toast(toast: Toast) {
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

/// `CloseNotification(id)` on the session bus.
async fn close_by_id(server_id: u32) -> zbus::Result<()> {
    call("CloseNotification", &(server_id,)).await?;
    Ok(())
}

/// `GetCapabilities()` of the session's notification server.
async fn capabilities() -> zbus::Result<Vec<String>> {
    call("GetCapabilities", &()).await?.body().deserialize()
}

/// Calls `method` of the notification server on the session bus.
async fn call<B>(method: &str, body: &B) -> zbus::Result<zbus::message::Message>
where
    B: serde::Serialize + zbus::zvariant::DynamicType,
{
    bounded(async {
        let bus = zbus::Connection::session().await?;
        bus.call_method(
            Some("org.freedesktop.Notifications"),
            "/org/freedesktop/Notifications",
            Some("org.freedesktop.Notifications"),
            method,
            body,
        )
        .await
    })
    .await
    .map_err(|e| zbus::Error::Failure(e.to_string()))?
}

/// The notify-rust toast for `notification`, replacing the server's toast `replaces`;
/// the body is escaped for a server that reads `markup` (it is plain text to us).
fn build(
    notification: &Notification,
    replaces: Option<u32>,
    markup: bool,
) -> notify_rust::Notification {
    let content = &notification.content;
    let visual = content.payload.visual_content.as_ref();
    let mut toast = notify_rust::Notification::new();
    toast
        .appname("tidings")
        .summary(&printable(visual.map_or("", |v| v.title.as_str())))
        .body(&{
            let body = visual.and_then(|v| v.body.as_deref()).unwrap_or("");
            if markup {
                escape_markup(body)
            } else {
                printable(body).into_owned()
            }
        })
        .hint(Hint::DesktopEntry("tidings".to_owned()))
        // GNOME 46+ ties a toast to its sender by this hint (see docs/toasts.md).
        .hint(Hint::CustomInt(
            "sender-pid".to_owned(),
            i32::try_from(std::process::id()).unwrap_or(0),
        ))
        .urgency(match content.priority {
            Priority::High => Urgency::Critical,
            Priority::Low => Urgency::Low,
            Priority::None => Urgency::Normal,
        })
        .timeout(match content.display_time_to_live {
            Some(seconds) => Timeout::Milliseconds(seconds.saturating_mul(1000)),
            None => Timeout::Default,
        })
        .action("default", "Open")
        .action(MARK_READ, "Mark as read");
    if let Some(id) = replaces {
        toast.id(id);
    }
    toast
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
        let Some(toast) = live.toasts.remove(id) else {
            return;
        };
        live.order.retain(|other| other != id);
        self.record(live);
        tokio::spawn(close_toast(toast));
    }

    fn summary(&self, count: usize) {
        let mut toast = notify_rust::Notification::new();
        toast
            .appname("tidings")
            .summary(&format!("{count} new notifications"))
            .body("Run `tidings history` to see them.")
            .hint(Hint::DesktopEntry("tidings".to_owned()));
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = show(&toast).await {
                this.no_server(&e);
            }
        });
    }

    fn is_shown(&self, id: &NotificationId) -> bool {
        self.live().toasts.contains_key(id)
    }

    fn attach(&self, feedback: FeedbackSink) {
        let _ = self.inner.feedback.set(feedback);
    }

    fn adopted(&self) -> Vec<NotificationId> {
        let live = self.live();
        live.toasts
            .iter()
            .filter(|(_, toast)| toast.handle.is_none() && toast.waiter.is_none())
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn describe(&self) -> String {
        if self.inner.no_server.load(Ordering::Relaxed) {
            "desktop (no notification server on the session bus: not shown)".to_owned()
        } else {
            "desktop (freedesktop notifications over D-Bus)".to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every answer a server can give, and what it means for the notification.
    #[test]
    fn only_the_user_closing_a_toast_dismisses_it() {
        let id = NotificationId::new("n");
        let closed = |reason: u32| NotificationResponse::Closed(reason.into());
        let cases = [
            (
                "click",
                NotificationResponse::Default,
                Some(Feedback::Activated(id.clone())),
            ),
            (
                "Mark as read",
                NotificationResponse::Action(MARK_READ.to_owned()),
                Some(Feedback::MarkRead(id.clone())),
            ),
            (
                "another action",
                NotificationResponse::Action("snooze".to_owned()),
                None,
            ),
            ("expired", closed(1), None),
            (
                "dismissed by the user",
                closed(2),
                Some(Feedback::Dismissed(id.clone())),
            ),
            ("closed by a CloseNotification call", closed(3), None),
            ("undefined reason", closed(4), None),
        ];
        for (what, response, expected) in cases {
            assert_eq!(feedback_of(&response, &id), expected, "{what}");
        }
    }
}
