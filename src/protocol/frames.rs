//! The push channel's frames (`docs/service.md`, The channel): JSON text, one object per frame,
//! tagged by `type`.

use serde::{Deserialize, Serialize};

use super::enums::{ReadState, UserActionState};
use super::error::ErrorDetail;
use super::ids::{NotificationId, Seq};
use super::notification::Notification;

/// Largest frame the service accepts from a device, in bytes.
pub const MAX_CLIENT_FRAME_BYTES: usize = 64 * 1024;

/// Frames the service sends to a device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
#[allow(clippy::large_enum_variant)] // nearly every frame is a Change: boxing it would cost an allocation each
pub enum ServerFrame {
    /// A notification changed (created, replaced, state changed or deleted).
    Change {
        /// The feed position of this change.
        seq: Seq,
        /// The notification's full, latest state.
        notification: Notification,
    },
    /// The backlog after the device's cursor has been sent; live changes follow.
    Synced {
        /// The user's feed position when the backlog ended.
        seq: Seq,
    },
    /// The answer to a device's `update` or `delete`.
    Result {
        /// The request's id, as the device sent it.
        request_id: String,
        /// Whether it was applied.
        ok: bool,
        /// Why not, when `ok` is false.
        error: Option<ErrorDetail>,
    },
}

/// Frames a device sends to the service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ClientFrame {
    /// Everything up to `seq` is durably stored on the device.
    Ack {
        /// The cumulative cursor.
        seq: Seq,
    },
    /// The user changed a notification's state on this device.
    Update {
        /// Echoed in the `result`.
        request_id: String,
        /// Which notification.
        id: NotificationId,
        /// New read state.
        read_state: Option<ReadState>,
        /// New action state.
        user_action_state: Option<UserActionState>,
    },
    /// The user deleted a notification on this device.
    Delete {
        /// Echoed in the `result`.
        request_id: String,
        /// Which notification.
        id: NotificationId,
    },
}

/// A `change` frame's JSON from borrowed parts: the same text as
/// [`ServerFrame::Change`] gives, without cloning the notification (the hub shares one
/// change among every channel of its user).
pub fn change_json(seq: Seq, notification: &Notification) -> Result<String, serde_json::Error> {
    /// `ServerFrame::Change`, borrowed.
    #[derive(Serialize)]
    #[serde(tag = "type", rename = "change")]
    struct Change<'a> {
        seq: Seq,
        notification: &'a Notification,
    }
    let json =
        super::notification_json(&Change { seq, notification }, notification.content.size())?;
    // serde_json writes UTF-8 only.
    String::from_utf8(json).map_err(|e| serde::ser::Error::custom(e.utf8_error()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_use_the_documented_shape() {
        let ack: ClientFrame = serde_json::from_str(r#"{"type":"ack","seq":7}"#).unwrap();
        assert_eq!(ack, ClientFrame::Ack { seq: Seq(7) });
        let update: ClientFrame = serde_json::from_str(
            r#"{"type":"update","requestId":"r1","id":"n1","userActionState":"dismissed"}"#,
        )
        .unwrap();
        assert!(matches!(
            update,
            ClientFrame::Update {
                read_state: None,
                ..
            }
        ));
        let synced = serde_json::to_string(&ServerFrame::Synced { seq: Seq(3) }).unwrap();
        assert_eq!(synced, r#"{"type":"synced","seq":3}"#);
    }
}
