//! How notifications and agent events read in the terminal: history rows, `show`'s
//! words, `watch`'s lines. Text an app sent goes through [`super::line`] or a table
//! cell when printed, which make it safe to show.

use crate::protocol::local::{Dnd, Event, EventKind, Item};
use crate::protocol::{Notification, Priority, Status, Timestamp, UserActionState};

use super::relative;

/// One history row.
pub fn row(item: &Item, now: Timestamp) -> Vec<String> {
    let n = &item.notification;
    vec![
        n.id.to_string(),
        relative(Some(n.created_date_time), now),
        app_label(&n.content.target_host_name).to_owned(),
        state_word(n).to_owned(),
        shorten(title(n), 60),
    ]
}

/// The app a notification came from, as people read it: a note from the user to their
/// own devices (host `localhost`) is labelled as the web inbox labels it.
pub fn app_label(host: &str) -> &str {
    if host == crate::protocol::validate::LOCAL_HOST_NAME {
        "note to my devices"
    } else {
        host
    }
}

pub fn title(n: &Notification) -> &str {
    let payload = &n.content.payload;
    if payload.is_sealed() {
        return SEALED;
    }
    payload
        .visual_content
        .as_ref()
        .map_or("(raw content)", |v| v.title.as_str())
}

/// What stands for a notification encrypted for the user's other devices only.
const SEALED: &str = "(encrypted for another device)";

/// The `encrypted` row of `show`.
pub fn encryption_word(n: &Notification) -> String {
    let payload = &n.content.payload;
    if payload.is_sealed() {
        SEALED.trim_matches(['(', ')']).to_owned()
    } else if payload.is_encrypted() {
        "end to end, opened on this device".to_owned()
    } else {
        String::new()
    }
}

/// A priority as `--priority` spells it (the wire's `None` is "normal").
pub fn priority_word(priority: Priority) -> &'static str {
    match priority {
        Priority::High => "high",
        Priority::Low => "low",
        Priority::None => "normal",
    }
}

/// The STATE column: deleted, dismissed (done with, so not unread), unread or read.
pub fn state_word(n: &Notification) -> &'static str {
    if n.state.status == Status::Deleted {
        "deleted"
    } else if n.state.user_action_state == UserActionState::Dismissed {
        "dismissed"
    } else if n.state.is_unread() {
        "unread"
    } else {
        "read"
    }
}

/// `text` cut to `max` characters, with an ellipsis when cut; one line.
pub fn shorten(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() <= max && line.len() == text.len() {
        return line.to_owned();
    }
    let mut cut: String = line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Do-not-disturb as `status` and `dnd` say it.
pub fn describe_dnd(dnd: Dnd) -> String {
    match (dnd.on, dnd.until) {
        (false, _) => "off".to_owned(),
        (true, None) => "on (until turned off)".to_owned(),
        (true, Some(until)) => format!("on until {until}"),
    }
}

/// One human line for an event.
pub fn describe(event: &Event) -> String {
    let kind = match event.kind {
        EventKind::Created => "new",
        EventKind::Updated => "changed",
        EventKind::Deleted => "deleted",
        EventKind::Removed => "removed",
        EventKind::Lagged => {
            return format!(
                "(missed {} events; run `tidings history`)",
                event.missed.unwrap_or(0)
            );
        }
    };
    match &event.notification {
        Some(n) => format!(
            "{kind:<8} {}  {:<24}  {:<9}  {}",
            n.id,
            shorten(&n.content.target_host_name, 24),
            state_word(n),
            shorten(title(n), 60)
        ),
        None => kind.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(host: &str, read: &str, title: &str) -> Event {
        serde_json::from_value(json!({
            "kind": "created",
            "notification": {
                "id": "4f603ca4-61cd-4a5a-95cc-2c90be0b84d4",
                "targetHostName": host,
                "expirationDateTime": "2030-01-01T00:00:00Z",
                "priority": "None",
                "payload": {"visualContent": {"title": title}},
                "targetPolicy": {},
                "createdDateTime": "2026-01-01T00:00:00Z",
                "lastModifiedDateTime": "2026-01-01T00:00:00Z",
                "readState": read,
                "userActionState": "noInteraction",
                "status": "active"
            }
        }))
        .unwrap()
    }

    #[test]
    fn watch_rows_line_up() {
        let short = describe(&event("a.io", "read", "First"));
        let long = describe(&event("notifications.contoso.com", "unread", "Second"));
        let column = |line: &str, word: &str| line.find(word).map(|at| line[..at].chars().count());
        assert_eq!(
            column(&short, "First"),
            column(&long, "Second"),
            "{short}\n{long}"
        );
    }
}
