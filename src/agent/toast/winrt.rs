//! The desktop presenter on Windows: WinRT toasts (`Windows.UI.Notifications`) under
//! tidings' own app id, [`APP_ID`].
//!
//! notify-rust's Windows backend can show a toast and hear its response, but it sets no
//! tag or group and cannot hide or replace a toast, and "handled elsewhere, gone here"
//! is the point of tidings. So this presenter talks to WinRT through the `windows`
//! crate (the one notify-rust's backend is built on) directly:
//! - every toast is tagged with its notification id in the group [`GROUP`]; showing the
//!   same tag again replaces it in place, and a close removes it from the screen and
//!   from the notification centre (`RemoveGroupedTagWithId`);
//! - a click is `activated` + `read`, the "Mark as read" button `read`, a close by the
//!   user (`UserCanceled`) `dismissed`; a toast that times out stays in the
//!   notification centre and is still closed when the notification is handled
//!   elsewhere;
//! - a restarted agent finds the toasts a previous one left in the notification centre
//!   (`GetHistoryWithId`) and adopts them, as the Linux presenter does with its ledger.
//!
//! WinRT calls run on one worker thread, in order, so no call blocks a runtime thread
//! and a close never overtakes the show it closes. The app id is registered for the
//! user (`HKCU\Software\Classes\AppUserModelId\Tidings.Agent`, display name and icon)
//! so that Windows names the toasts "tidings", with its icon, without an installer.
//! Where WinRT has no toasts (Wine, Server Core) the agent goes on without them and
//! says so in its log and in `status`, as on a Linux box without a notification server.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak, mpsc};

use windows::Foundation::TypedEventHandler;
use windows::UI::Notifications::{
    ToastDismissalReason, ToastDismissedEventArgs, ToastFailedEventArgs, ToastNotification,
    ToastNotificationManager, ToastNotifier,
};
use windows::core::{HSTRING, IInspectable, Ref};

use crate::protocol::{Notification, NotificationId, Timestamp};

use super::roster::Roster;
use super::wincalls::{
    activation_argument, error_text, history, register_app_id, setting_problem, toast, winrt_date,
};
use super::winxml::{self, MARK_READ};
use super::{Attachment, Feedback, FeedbackSink, Presenter, lock};

/// tidings' AppUserModelID: Windows files its toasts under it.
pub const APP_ID: &str = "Tidings.Agent";
/// The group of every notification's toast (the tag is the notification id).
pub(super) const GROUP: &str = "tidings";
/// The group and tag of the backlog summary toast.
const SUMMARY: &str = "summary";

/// Shows toasts through WinRT.
#[derive(Clone)]
pub struct WinRt {
    inner: Arc<Inner>,
}

struct Inner {
    /// To the worker thread that makes every WinRT call.
    commands: mpsc::Sender<Command>,
    shown: Mutex<Roster>,
    feedback: OnceLock<FeedbackSink>,
    /// Why toasts are not shown, when they are not (for `status`).
    unavailable: Mutex<Option<String>>,
    /// Tells a toast's newer showing from an older one.
    generation: AtomicU64,
}

/// One showing of a notification's toast.
struct Showing {
    id: NotificationId,
    generation: u64,
    xml: String,
    expires: Timestamp,
    /// Re-shown to take over a toast a previous agent left in the notification centre:
    /// no popup again.
    quiet: bool,
}

/// What the worker thread does, in order.
enum Command {
    Show(Showing),
    Close(NotificationId),
    Summary(String),
    /// The user handled the toast (or Windows dropped it): let go of it.
    Forget {
        id: NotificationId,
        generation: u64,
    },
}

impl WinRt {
    /// Registers the app id for this user, adopts the toasts a previous agent left in
    /// the notification centre and starts the worker thread.
    pub fn new() -> std::io::Result<Self> {
        if let Err(e) = register_app_id() {
            tracing::warn!(error = %e, "could not register the toast app id {APP_ID}; Windows may show the toasts without tidings' name");
        }
        let shown = Roster::adopting(history().unwrap_or_default().into_iter().map(|id| (id, ())));
        let (commands, queue) = mpsc::channel();
        let inner = Arc::new(Inner {
            commands,
            shown: Mutex::new(shown),
            feedback: OnceLock::new(),
            unavailable: Mutex::new(None),
            generation: AtomicU64::new(1),
        });
        let worker = Worker {
            inner: Arc::downgrade(&inner),
            notifier: None,
            toasts: HashMap::new(),
        };
        std::thread::Builder::new()
            .name("tidings-toasts".to_owned())
            .spawn(move || worker.run(&queue))?;
        Ok(Self { inner })
    }

    fn shown(&self) -> std::sync::MutexGuard<'_, Roster> {
        self.inner.shown()
    }

    fn send(&self, command: Command) {
        // The worker ends only with the presenter.
        let _ = self.inner.commands.send(command);
    }

    /// Shows `notification`, replacing its toast in place when one is shown.
    fn present(&self, notification: &Notification) {
        let generation = self.inner.generation.fetch_add(1, Ordering::Relaxed);
        let (quiet, evicted) = {
            let mut shown = self.shown();
            let quiet = shown.is_adopted(&notification.id);
            (quiet, shown.show(&notification.id, generation))
        };
        if let Some((old, ())) = evicted {
            self.send(Command::Close(old));
        }
        self.send(Command::Show(Showing {
            id: notification.id.clone(),
            generation,
            xml: winxml::notification_toast(notification),
            expires: winxml::expires_at(notification, Timestamp::now()),
            quiet,
        }));
    }
}

impl Inner {
    fn shown(&self) -> std::sync::MutexGuard<'_, Roster> {
        lock(&self.shown)
    }

    /// The toast of `generation` is gone (handled by the user, or failed): forgets it,
    /// then reports `feedback`. A stale toast (replaced since) reports nothing.
    fn done(&self, id: &NotificationId, generation: u64, feedback: Option<Feedback>) {
        if self.shown().finish(id, generation).is_none() {
            return;
        }
        let _ = self.commands.send(Command::Forget {
            id: id.clone(),
            generation,
        });
        if let (Some(feedback), Some(sink)) = (feedback, self.feedback.get()) {
            let _ = sink.send(feedback);
        }
    }

    /// Records whether toasts can be shown; logs each change once.
    fn set_unavailable(&self, reason: Option<String>) {
        let mut current = lock(&self.unavailable);
        if *current == reason {
            return;
        }
        match &reason {
            Some(why) => tracing::warn!(
                "toasts are not shown ({why}); notifications are stored and synced (trying again with the next one)"
            ),
            None => tracing::info!("toasts are shown again"),
        }
        *current = reason;
    }
}

/// Owns the WinRT objects; runs every call in order.
struct Worker {
    inner: Weak<Inner>,
    notifier: Option<ToastNotifier>,
    /// The toasts shown by this agent, kept so their events stay connected.
    toasts: HashMap<NotificationId, (u64, ToastNotification)>,
}

impl Worker {
    fn run(mut self, queue: &mpsc::Receiver<Command>) {
        self.probe();
        while let Ok(command) = queue.recv() {
            match command {
                Command::Show(showing) => self.show(showing),
                Command::Close(id) => self.close(&id),
                Command::Summary(xml) => {
                    if let Err(e) = self.show_summary(&xml) {
                        self.failed(&e);
                    }
                }
                Command::Forget { id, generation } => {
                    if self.toasts.get(&id).is_some_and(|(g, _)| *g == generation) {
                        self.toasts.remove(&id);
                    }
                }
            }
        }
    }

    /// Finds out at start whether toasts can be shown, for `status`.
    fn probe(&mut self) {
        if let Err(e) = self.notifier() {
            self.failed(&e);
        }
    }

    /// The notifier for [`APP_ID`], created on first use (and again after a failure).
    fn notifier(&mut self) -> windows::core::Result<ToastNotifier> {
        let notifier = match &self.notifier {
            Some(notifier) => notifier.clone(),
            None => ToastNotificationManager::CreateToastNotifierWithId(&HSTRING::from(APP_ID))?,
        };
        let setting = notifier.Setting()?;
        let Some(inner) = self.inner.upgrade() else {
            return Ok(notifier);
        };
        inner.set_unavailable(setting_problem(setting));
        self.notifier = Some(notifier.clone());
        Ok(notifier)
    }

    fn failed(&mut self, error: &windows::core::Error) {
        self.notifier = None;
        if let Some(inner) = self.inner.upgrade() {
            inner.set_unavailable(Some(format!(
                "WinRT toasts are not available here: {}",
                error_text(error)
            )));
        }
    }

    fn show(&mut self, showing: Showing) {
        match self.try_show(&showing) {
            Ok(toast) => {
                self.toasts.insert(showing.id, (showing.generation, toast));
            }
            Err(e) => {
                self.failed(&e);
                if let Some(inner) = self.inner.upgrade() {
                    inner.done(&showing.id, showing.generation, None);
                }
            }
        }
    }

    fn try_show(&mut self, showing: &Showing) -> windows::core::Result<ToastNotification> {
        let notifier = self.notifier()?;
        let toast = toast(&showing.xml, showing.id.as_str(), GROUP)?;
        toast.SetExpirationTime(&winrt_date(showing.expires)?)?;
        toast.SetSuppressPopup(showing.quiet)?;
        self.connect(&toast, &showing.id, showing.generation)?;
        notifier.Show(&toast)?;
        Ok(toast)
    }

    fn show_summary(&mut self, xml: &str) -> windows::core::Result<()> {
        let notifier = self.notifier()?;
        notifier.Show(&toast(xml, SUMMARY, SUMMARY)?)
    }

    /// Hides the toast of `id` and removes it from the notification centre.
    fn close(&mut self, id: &NotificationId) {
        if let Some((_, toast)) = self.toasts.remove(id)
            && let Some(notifier) = &self.notifier
        {
            let _ = notifier.Hide(&toast);
        }
        let removed = ToastNotificationManager::History().and_then(|history| {
            history.RemoveGroupedTagWithId(
                &HSTRING::from(id.as_str()),
                &HSTRING::from(GROUP),
                &HSTRING::from(APP_ID),
            )
        });
        if let Err(e) = removed {
            tracing::debug!(%id, error = %e, "could not remove a toast from the notification centre");
        }
    }

    /// Turns the toast's events into feedback for the agent.
    fn connect(
        &self,
        toast: &ToastNotification,
        id: &NotificationId,
        generation: u64,
    ) -> windows::core::Result<()> {
        let (inner, key) = (self.inner.clone(), id.clone());
        toast.Activated(&TypedEventHandler::new(
            move |_: Ref<ToastNotification>, args: Ref<IInspectable>| {
                let feedback = if activation_argument(&args).as_deref() == Some(MARK_READ) {
                    Feedback::MarkRead(key.clone())
                } else {
                    Feedback::Activated(key.clone())
                };
                if let Some(inner) = inner.upgrade() {
                    inner.done(&key, generation, Some(feedback));
                }
                Ok(())
            },
        ))?;
        let (inner, key) = (self.inner.clone(), id.clone());
        toast.Dismissed(&TypedEventHandler::new(
            move |_: Ref<ToastNotification>, args: Ref<ToastDismissedEventArgs>| {
                let reason = args.as_ref().and_then(|a| a.Reason().ok());
                // Timed out: it stays in the notification centre, still ours to close.
                // Hidden by the app: we closed it ourselves.
                if reason == Some(ToastDismissalReason::UserCanceled)
                    && let Some(inner) = inner.upgrade()
                {
                    inner.done(&key, generation, Some(Feedback::Dismissed(key.clone())));
                }
                Ok(())
            },
        ))?;
        let (inner, key) = (self.inner.clone(), id.clone());
        toast.Failed(&TypedEventHandler::new(
            move |_: Ref<ToastNotification>, args: Ref<ToastFailedEventArgs>| {
                let code = args.as_ref().and_then(|a| a.ErrorCode().ok());
                tracing::warn!(id = %key, ?code, "Windows could not show a toast");
                if let Some(inner) = inner.upgrade() {
                    inner.done(&key, generation, None);
                }
                Ok(())
            },
        ))?;
        Ok(())
    }
}

impl Presenter for WinRt {
    fn show(&self, notification: &Notification) {
        self.present(notification);
    }

    fn update(&self, notification: &Notification) {
        self.present(notification);
    }

    fn close(&self, id: &NotificationId) {
        if self.shown().close(id).is_some() {
            self.send(Command::Close(id.clone()));
        }
    }

    fn summary(&self, count: usize) {
        self.send(Command::Summary(winxml::summary_toast(count)));
    }

    fn is_shown(&self, id: &NotificationId) -> bool {
        self.shown().contains(id)
    }

    fn attach(&self, attachment: Attachment) {
        // WinRT calls run on the worker thread, which ends with the presenter: nothing
        // is spawned on the agent's runtime.
        let _ = self.inner.feedback.set(attachment.feedback);
    }

    fn adopted(&self) -> Vec<NotificationId> {
        self.shown().adopted()
    }

    fn describe(&self) -> String {
        let unavailable = lock(&self.inner.unavailable);
        match unavailable.as_ref() {
            Some(why) => format!("windows (not shown: {why})"),
            None => format!("windows (WinRT toasts as {APP_ID})"),
        }
    }
}
