//! The toast rules (`docs/toasts.md`) as pure functions: from a stored change, what
//! the desktop shows here, and the backlog rule (more than 3 new toasts replayed after
//! being offline become one summary toast).

use crate::protocol::stored::NotificationRecord;
use crate::protocol::{
    Notification, NotificationId, Platform, ReadState, Status, Timestamp, UserActionState,
};

use super::super::store::Applied;

/// What to do with a toast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToastOp {
    /// Show a new toast.
    Show(Box<Notification>),
    /// Replace the shown toast's content in place.
    Update(Box<Notification>),
    /// Close it.
    Close(NotificationId),
    /// One toast saying "N new notifications" (a backlog).
    Summary(usize),
    /// Nothing to do.
    Nothing,
}

/// What the rules need to know besides the change.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// The time now (expired notifications are not shown).
    pub now: Timestamp,
    /// This device's platform (`targetPolicy`).
    pub platform: Platform,
    /// Whether a toast for this notification is on screen here.
    pub shown: bool,
    /// Whether its app may show toasts (config `toasts = false` turns them off).
    pub app_toasts: bool,
    /// Do not disturb: nothing new pops up.
    pub do_not_disturb: bool,
}

/// Whether `record` deserves a toast at all: active, unread, untouched, unexpired,
/// visual, and for this platform.
pub fn toastable(record: &NotificationRecord, now: Timestamp, platform: Platform) -> bool {
    let state = record.state;
    state.status == Status::Active
        && state.read_state == ReadState::Unread
        && state.user_action_state == UserActionState::NoInteraction
        && record.content.expiration_date_time > now
        && record.content.payload.visual_content.is_some()
        && record.content.target_policy.targets(platform)
}

/// The toast for one stored change.
pub fn plan(applied: &Applied, ctx: &Context) -> ToastOp {
    let record = match applied {
        Applied::Created(record) | Applied::Updated(record) => record,
    };
    if !toastable(record, ctx.now, ctx.platform) {
        return if ctx.shown {
            ToastOp::Close(record.id.clone())
        } else {
            ToastOp::Nothing
        };
    }
    let notification = Box::new(record.to_notification());
    match (ctx.shown, ctx.app_toasts && !ctx.do_not_disturb) {
        // Already on screen: keep it current (a replace), whatever the settings now.
        (true, _) => ToastOp::Update(notification),
        (false, true) => ToastOp::Show(notification),
        (false, false) => ToastOp::Nothing,
    }
}

/// How many new toasts a backlog may show one by one; more become one summary.
pub const BACKLOG_SHOWN: usize = 3;

/// The toasts of a replayed backlog: up to [`BACKLOG_SHOWN`] shown one by one, more
/// summarised in one toast. `ops` are the planned operations of the backlog's changes,
/// in order; closes and updates pass through.
pub fn plan_backlog(ops: Vec<ToastOp>) -> Vec<ToastOp> {
    let shows = ops
        .iter()
        .filter(|op| matches!(op, ToastOp::Show(_)))
        .count();
    if shows <= BACKLOG_SHOWN {
        return ops;
    }
    let mut out: Vec<ToastOp> = ops
        .into_iter()
        .filter(|op| !matches!(op, ToastOp::Show(_) | ToastOp::Nothing))
        .collect();
    out.push(ToastOp::Summary(shows));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{NotificationInput, Seq, UserState};

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

    const VISUAL: &str = r#"{"targetHostName":"a.com","payload":{"visualContent":{"title":"t"}}}"#;

    fn ctx() -> Context {
        Context {
            now: Timestamp::now(),
            platform: Platform::Linux,
            shown: false,
            app_toasts: true,
            do_not_disturb: false,
        }
    }

    fn kind(op: &ToastOp) -> &'static str {
        match op {
            ToastOp::Show(_) => "show",
            ToastOp::Update(_) => "update",
            ToastOp::Close(_) => "close",
            ToastOp::Summary(_) => "summary",
            ToastOp::Nothing => "nothing",
        }
    }

    /// Every toast rule, one row each: (what, change, context, expected).
    #[test]
    #[allow(clippy::too_many_lines)] // a table
    fn the_rules_table() {
        let raw = r#"{"targetHostName":"a.com","payload":{"rawContent":"r"}}"#;
        let windows_only = r#"{"targetHostName":"a.com","targetPolicy":{"platformTypes":["windows"]},"payload":{"visualContent":{"title":"t"}}}"#;
        let fresh = UserState::FRESH;
        let read = UserState {
            read_state: ReadState::Read,
            ..fresh
        };
        let dismissed = UserState {
            user_action_state: UserActionState::Dismissed,
            ..fresh
        };
        let activated = UserState {
            user_action_state: UserActionState::Activated,
            ..fresh
        };
        let deleted = UserState {
            status: Status::Deleted,
            ..fresh
        };
        let mut expired = record(VISUAL, fresh);
        expired.content.expiration_date_time = Timestamp::from_millis(0);
        let shown = Context {
            shown: true,
            ..ctx()
        };
        let dnd = Context {
            do_not_disturb: true,
            ..ctx()
        };
        let app_off = Context {
            app_toasts: false,
            ..ctx()
        };
        let cases = [
            (
                "new visual notification",
                Applied::Created(record(VISUAL, fresh)),
                ctx(),
                "show",
            ),
            (
                "replaced while shown: in place",
                Applied::Updated(record(VISUAL, fresh)),
                shown,
                "update",
            ),
            (
                "replaced after its toast went",
                Applied::Updated(record(VISUAL, fresh)),
                ctx(),
                "show",
            ),
            (
                "raw content is not shown",
                Applied::Created(record(raw, fresh)),
                ctx(),
                "nothing",
            ),
            (
                "another platform's",
                Applied::Created(record(windows_only, fresh)),
                ctx(),
                "nothing",
            ),
            (
                "already read when it arrives",
                Applied::Created(record(VISUAL, read)),
                ctx(),
                "nothing",
            ),
            (
                "read anywhere closes",
                Applied::Updated(record(VISUAL, read)),
                shown,
                "close",
            ),
            (
                "dismissed anywhere closes",
                Applied::Updated(record(VISUAL, dismissed)),
                shown,
                "close",
            ),
            (
                "activated anywhere closes",
                Applied::Updated(record(VISUAL, activated)),
                shown,
                "close",
            ),
            (
                "deleted anywhere closes",
                Applied::Updated(record(VISUAL, deleted)),
                shown,
                "close",
            ),
            (
                "expired closes",
                Applied::Updated(expired.clone()),
                shown,
                "close",
            ),
            (
                "expired is not shown",
                Applied::Created(expired),
                ctx(),
                "nothing",
            ),
            (
                "read, not shown here: nothing",
                Applied::Updated(record(VISUAL, read)),
                ctx(),
                "nothing",
            ),
            (
                "do not disturb: nothing pops up",
                Applied::Created(record(VISUAL, fresh)),
                dnd,
                "nothing",
            ),
            (
                "do not disturb still closes",
                Applied::Updated(record(VISUAL, read)),
                Context { shown: true, ..dnd },
                "close",
            ),
            (
                "app with toasts off",
                Applied::Created(record(VISUAL, fresh)),
                app_off,
                "nothing",
            ),
        ];
        for (what, applied, ctx, expected) in cases {
            assert_eq!(kind(&plan(&applied, &ctx)), expected, "{what}");
        }
    }

    #[test]
    fn a_backlog_of_more_than_three_becomes_one_summary() {
        let show = || ToastOp::Show(Box::new(record(VISUAL, UserState::FRESH).to_notification()));
        let close = ToastOp::Close(NotificationId::new("gone"));
        let three = vec![show(), close.clone(), show(), show()];
        assert_eq!(
            plan_backlog(three.clone()),
            three,
            "three are shown one by one"
        );
        let four = vec![
            show(),
            close.clone(),
            show(),
            show(),
            ToastOp::Nothing,
            show(),
        ];
        assert_eq!(plan_backlog(four), vec![close, ToastOp::Summary(4)]);
    }
}
