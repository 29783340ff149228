//! Notification records as builds before encrypted content wrote them (version 1: a
//! payload of visual and raw content only), read into today's record.

use serde::Deserialize;

use super::NotificationRecord;
use crate::protocol::ids::{NotificationId, Seq};
use crate::protocol::notification::{
    JsonObject, NotificationContent, Payload, TargetPolicy, UserState, VisualContent,
};
use crate::protocol::{Priority, Timestamp};

/// A version 1 record: today's fields, in today's order, but its payload's.
#[derive(Deserialize)]
struct Record {
    seq: Seq,
    id: NotificationId,
    content: Content,
    created: Timestamp,
    modified: Timestamp,
    state: UserState,
}

#[derive(Deserialize)]
struct Content {
    target_host_name: String,
    app_notification_id: Option<String>,
    group_name: Option<String>,
    display_time_to_live: Option<u32>,
    expiration_date_time: Timestamp,
    priority: Priority,
    payload: V1Payload,
    target_policy: TargetPolicy,
    fallback_policy: Option<JsonObject>,
}

#[derive(Deserialize)]
struct V1Payload {
    visual_content: Option<VisualContent>,
    raw_content: Option<String>,
}

/// Reads a version 1 record's postcard bytes.
pub(super) fn read(bytes: &[u8]) -> Result<NotificationRecord, postcard::Error> {
    let old: Record = postcard::from_bytes(bytes)?;
    let c = old.content;
    Ok(NotificationRecord {
        seq: old.seq,
        id: old.id,
        content: NotificationContent {
            target_host_name: c.target_host_name,
            app_notification_id: c.app_notification_id,
            group_name: c.group_name,
            display_time_to_live: c.display_time_to_live,
            expiration_date_time: c.expiration_date_time,
            priority: c.priority,
            payload: Payload {
                visual_content: c.payload.visual_content,
                raw_content: c.payload.raw_content,
                encrypted_content: None,
            },
            target_policy: c.target_policy,
            fallback_policy: c.fallback_policy,
        },
        created: old.created,
        modified: old.modified,
        state: old.state,
    })
}
