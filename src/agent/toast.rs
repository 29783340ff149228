//! The presenter seam: what the agent asks the desktop to show or close.
//!
//! The agent's event loop calls a [`Presenter`]; this change ships the headless one,
//! which logs what it would show (`--no-toasts`). The desktop presenter (notify-rust)
//! and the full toast rules of DESIGN section 5 come with the toasts issue; [`plan`]
//! holds the part of the rules the sync core needs today.

use crate::protocol::{Notification, NotificationId, ReadState, Status, UserActionState};

use super::store::Applied;

/// Shows and closes toasts.
pub trait Presenter: Send + Sync + 'static {
    /// Shows (or updates in place) a toast for `notification`.
    fn show(&self, notification: &Notification);
    /// Closes the toast of `id`, if one is shown.
    fn close(&self, id: &NotificationId);
    /// The backend and its state, for `status`.
    fn describe(&self) -> String {
        "custom".to_owned()
    }
}

/// What to do with a toast after a change was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToastOp {
    /// Show or update it.
    Show(Box<Notification>),
    /// Close it.
    Close(NotificationId),
    /// Nothing to do.
    Nothing,
}

/// Decides the toast for one stored change: a live, unread, untouched notification with
/// visual content is shown; one read, dismissed or deleted anywhere is closed.
pub fn plan(applied: &Applied) -> ToastOp {
    let (record, created) = match applied {
        Applied::Created(record) => (record, true),
        Applied::Updated(record) => (record, false),
    };
    let state = record.state;
    let handled = state.status == Status::Deleted
        || state.read_state == ReadState::Read
        || state.user_action_state != UserActionState::NoInteraction;
    if handled {
        return if created {
            ToastOp::Nothing
        } else {
            ToastOp::Close(record.id.clone())
        };
    }
    if record.content.payload.visual_content.is_none() {
        return ToastOp::Nothing;
    }
    ToastOp::Show(Box::new(record.to_notification()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::stored::NotificationRecord;
    use crate::protocol::{NotificationInput, Seq, Timestamp, UserState};

    fn record(body: &str, state: UserState) -> NotificationRecord {
        let content = NotificationInput::from_json(body.as_bytes())
            .unwrap()
            .validate(Timestamp::now())
            .unwrap();
        NotificationRecord {
            seq: Seq(1),
            id: NotificationId::new("n"),
            content,
            created: Timestamp::now(),
            modified: Timestamp::now(),
            state,
        }
    }

    #[test]
    fn the_rules_table() {
        let visual = r#"{"targetHostName":"a.com","payload":{"visualContent":{"title":"t"}}}"#;
        let raw = r#"{"targetHostName":"a.com","payload":{"rawContent":"r"}}"#;
        let fresh = UserState::FRESH;
        let read = UserState {
            read_state: ReadState::Read,
            ..fresh
        };
        let dismissed = UserState {
            user_action_state: UserActionState::Dismissed,
            ..fresh
        };
        let deleted = UserState {
            status: Status::Deleted,
            ..fresh
        };
        let cases = [
            (Applied::Created(record(visual, fresh)), "show"),
            (Applied::Updated(record(visual, fresh)), "show"),
            (Applied::Created(record(raw, fresh)), "nothing"),
            (Applied::Created(record(visual, read)), "nothing"),
            (Applied::Updated(record(visual, read)), "close"),
            (Applied::Updated(record(visual, dismissed)), "close"),
            (Applied::Updated(record(visual, deleted)), "close"),
            (Applied::Created(record(visual, deleted)), "nothing"),
        ];
        for (applied, expected) in cases {
            let got = match plan(&applied) {
                ToastOp::Show(_) => "show",
                ToastOp::Close(_) => "close",
                ToastOp::Nothing => "nothing",
            };
            assert_eq!(got, expected, "{applied:?}");
        }
    }
}
