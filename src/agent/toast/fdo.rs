//! The freedesktop notifications API (`org.freedesktop.Notifications` on the session
//! bus) as the desktop presenter uses it: the toast it sends for a notification
//! ([`build`]), its calls, each bounded by a timeout so that a hung server costs a
//! connection for a while and not for ever ([`show`], [`close_by_id`],
//! [`capabilities`]), and what the server's answers mean ([`feedback_of`]).

use std::sync::OnceLock;

use notify_rust::{CloseReason, Hint, NotificationHandle, NotificationResponse, Timeout, Urgency};

use super::Feedback;
use super::text::escape_markup;
use crate::protocol::display::printable;
use crate::protocol::{Notification, NotificationId, Priority};

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
pub(super) struct NoAnswer;

/// Why a toast was not shown.
#[derive(Debug, thiserror::Error)]
pub(super) enum ShowError {
    #[error(transparent)]
    Server(#[from] notify_rust::error::Error),
    #[error(transparent)]
    NoAnswer(#[from] NoAnswer),
}

/// Shows `toast`, giving up after the call timeout.
pub(super) async fn show(
    toast: &notify_rust::Notification,
) -> Result<NotificationHandle, ShowError> {
    Ok(bounded(toast.show_async()).await??)
}

/// Runs a call to the notification server, giving up after the call timeout.
pub(super) async fn bounded<F: std::future::Future>(call: F) -> Result<F::Output, NoAnswer> {
    tokio::time::timeout(call_timeout(), call)
        .await
        .map_err(|_| NoAnswer)
}

/// What the server's answer about a toast means for its notification: a click is
/// activated + read, "Mark as read" is read, the user closing it is a dismiss. A toast
/// that expired, or was closed by a call (ours, or another program's), changes nothing.
pub(super) fn feedback_of(
    response: &NotificationResponse,
    id: &NotificationId,
) -> Option<Feedback> {
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

/// `CloseNotification(id)` on the session bus.
pub(super) async fn close_by_id(server_id: u32) -> zbus::Result<()> {
    call("CloseNotification", &(server_id,)).await?;
    Ok(())
}

/// `GetCapabilities()` of the session's notification server.
pub(super) async fn capabilities() -> zbus::Result<Vec<String>> {
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
pub(super) fn build(
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
