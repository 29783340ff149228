//! Notifications for the stores' unit tests.

use crate::protocol::stored::NotificationRecord;
use crate::protocol::{
    NotificationContent, NotificationId, Payload, Priority, Seq, TargetPolicy, Timestamp, UserState,
};

/// A small notification of contoso.com, expiring at `expires` (milliseconds).
pub fn content(app_id: Option<&str>, group: Option<&str>, expires: i64) -> NotificationContent {
    NotificationContent {
        target_host_name: "contoso.com".to_owned(),
        app_notification_id: app_id.map(str::to_owned),
        group_name: group.map(str::to_owned),
        display_time_to_live: None,
        expiration_date_time: Timestamp::from_millis(expires),
        priority: Priority::None,
        payload: Payload {
            visual_content: None,
            raw_content: Some("r".to_owned()),
            encrypted_content: None,
        },
        target_policy: TargetPolicy::default(),
        fallback_policy: None,
    }
}

/// [`content`] stored at `seq` as `id`, fresh, created at time 0.
pub fn record(
    seq: u64,
    id: &str,
    app_id: Option<&str>,
    group: Option<&str>,
    expires: i64,
) -> NotificationRecord {
    NotificationRecord {
        seq: Seq(seq),
        id: NotificationId::new(id),
        content: content(app_id, group, expires),
        created: Timestamp::from_millis(0),
        modified: Timestamp::from_millis(0),
        state: UserState::FRESH,
    }
}
