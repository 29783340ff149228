//! The XML of a Windows toast (the `ToastGeneric` schema) for a notification: pure, so
//! it is tested on every platform; the Windows presenter (`winrt`) loads it into an
//! `XmlDocument`.
//!
//! What maps to what (the toast rules of `docs/toasts.md`, on Windows):
//! - title and body are two `<text>` lines, XML-escaped (Windows renders no markup, so
//!   escaping is all that makes them plain text);
//! - a click on the toast sends [`ACTIVATE`], the "Mark as read" button [`MARK_READ`];
//! - priority `High` -> the `reminder` scenario (stays on screen until the user acts,
//!   like a freedesktop critical toast), `Low` -> silent, `None` -> the default;
//! - `displayTimeToLive` and the expiry are not in the XML: they become the toast's
//!   `ExpirationTime` (see [`expires_at`]).

use crate::protocol::{Notification, Priority, Timestamp};

use super::text::escape_xml;

/// The activation argument of a click on the toast itself.
pub const ACTIVATE: &str = "open";
/// The activation argument of the "Mark as read" button.
pub const MARK_READ: &str = "read";

/// The toast XML for `notification`.
pub fn notification_toast(notification: &Notification) -> String {
    let content = &notification.content;
    let visual = content.payload.visual_content.as_ref();
    let title = visual.map_or("", |v| v.title.as_str());
    let body = visual.and_then(|v| v.body.as_deref()).unwrap_or("");
    let scenario = match content.priority {
        Priority::High => " scenario=\"reminder\"",
        Priority::None | Priority::Low => "",
    };
    let audio = match content.priority {
        Priority::Low => "<audio silent=\"true\"/>",
        Priority::None | Priority::High => "",
    };
    format!(
        "<toast launch=\"{ACTIVATE}\"{scenario}>{visual}\
         <actions><action content=\"Mark as read\" arguments=\"{MARK_READ}\" activationType=\"foreground\"/></actions>\
         {audio}</toast>",
        visual = visual_xml(title, body),
    )
}

/// The XML of the one toast that stands for a backlog of `count` notifications.
pub fn summary_toast(count: usize) -> String {
    format!(
        "<toast launch=\"{ACTIVATE}\">{}</toast>",
        visual_xml(
            &format!("{count} new notifications"),
            "Run `tidings history` to see them."
        )
    )
}

/// When the toast should leave the screen and the notification centre: at
/// `displayTimeToLive` from `now`, or at the notification's expiry if that is sooner.
pub fn expires_at(notification: &Notification, now: Timestamp) -> Timestamp {
    let content = &notification.content;
    let expiry = content.expiration_date_time;
    content.display_time_to_live.map_or(expiry, |seconds| {
        now.plus(std::time::Duration::from_secs(u64::from(seconds)))
            .min(expiry)
    })
}

fn visual_xml(title: &str, body: &str) -> String {
    let body = if body.is_empty() {
        String::new()
    } else {
        format!("<text>{}</text>", escape_xml(body))
    };
    format!(
        "<visual><binding template=\"ToastGeneric\"><text>{}</text>{body}</binding></visual>",
        escape_xml(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{NotificationId, NotificationInput, UserState};

    fn note(title: &str, body: Option<&str>, priority: Priority) -> Notification {
        let mut visual = serde_json::json!({ "title": title });
        if let Some(body) = body {
            visual["body"] = body.into();
        }
        let input = serde_json::json!({
            "targetHostName": "a.com",
            "priority": format!("{priority:?}"),
            "payload": { "visualContent": visual },
        });
        let content = NotificationInput::from_json(input.to_string().as_bytes())
            .unwrap()
            .validate(Timestamp::now())
            .unwrap();
        Notification {
            id: NotificationId::new("n1"),
            content,
            created_date_time: Timestamp::now(),
            last_modified_date_time: Timestamp::now(),
            state: UserState::FRESH,
        }
    }

    /// Parses `xml` as Windows' `LoadXml` would, and returns the texts of the toast.
    fn texts(xml: &str) -> Vec<String> {
        let document = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
        assert_eq!(document.root_element().tag_name().name(), "toast");
        document
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .map(|n| n.text().unwrap_or("").to_owned())
            .collect()
    }

    #[test]
    fn title_body_and_actions() {
        let xml = notification_toast(&note("Build", Some("passed"), Priority::None));
        assert_eq!(
            xml,
            "<toast launch=\"open\"><visual><binding template=\"ToastGeneric\">\
             <text>Build</text><text>passed</text></binding></visual>\
             <actions><action content=\"Mark as read\" arguments=\"read\" activationType=\"foreground\"/></actions>\
             </toast>"
        );
    }

    #[test]
    fn markup_and_quotes_stay_text() {
        let xml = notification_toast(&note(
            "a \"b\" & 'c'",
            Some("<b>x</b>\u{1}"),
            Priority::None,
        ));
        assert_eq!(texts(&xml), ["a \"b\" & 'c'", "<b>x</b>␁"]);
        assert!(
            xml.contains("<text>a &quot;b&quot; &amp; &apos;c&apos;</text>"),
            "{xml}"
        );
        assert!(xml.contains("<text>&lt;b&gt;x&lt;/b&gt;␁</text>"), "{xml}");
    }

    #[test]
    fn priority_picks_scenario_and_sound() {
        let high = notification_toast(&note("t", None, Priority::High));
        assert!(
            high.starts_with("<toast launch=\"open\" scenario=\"reminder\">"),
            "{high}"
        );
        assert!(!high.contains("<audio"));
        let low = notification_toast(&note("t", None, Priority::Low));
        assert!(low.ends_with("<audio silent=\"true\"/></toast>"), "{low}");
        assert!(!low.contains("scenario"));
        assert_eq!(texts(&low), ["t"], "no empty body line");
        texts(&high);
    }

    #[test]
    fn expiry_is_the_sooner_of_ttl_and_expiration() {
        let now = Timestamp::from_millis(1_000_000);
        let mut n = note("t", None, Priority::None);
        n.content.expiration_date_time = Timestamp::from_millis(1_000_000 + 3_600_000);
        n.content.display_time_to_live = Some(60);
        assert_eq!(expires_at(&n, now), Timestamp::from_millis(1_060_000));
        n.content.display_time_to_live = Some(7_200);
        assert_eq!(expires_at(&n, now), n.content.expiration_date_time);
        n.content.display_time_to_live = None;
        assert_eq!(expires_at(&n, now), n.content.expiration_date_time);
    }

    #[test]
    fn summary_counts() {
        assert_eq!(
            texts(&summary_toast(7)),
            ["7 new notifications", "Run `tidings history` to see them."]
        );
    }
}
