//! The notification resource (`docs/architecture.md`; its rules in `validate.rs`) as the
//! service stores it and sends it.
//!
//! `NotificationContent` is what an app sets (validated by [`super::validate`]);
//! `UserState` is what devices change; `Notification` joins them with the id and the
//! timestamps and is the JSON resource of the Graph API and the feed.

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use super::enums::{Platform, Priority, ReadState, Status, UserActionState};
use super::ids::{NotificationId, Seq};
use super::sealed::SealedContent;
use super::time::Timestamp;

/// The visible part of a notification, shown as a toast.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VisualContent {
    /// The toast's summary line, 1 to 512 characters.
    pub title: String,
    /// The toast's body, at most 4,096 characters.
    pub body: Option<String>,
}

/// What a notification carries: something to show, opaque data for local apps, or both;
/// or, in their place, the same encrypted for each of the user's devices.
#[allow(clippy::struct_field_names)] // the names are Graph's
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    /// Shown as a toast.
    pub visual_content: Option<VisualContent>,
    /// Handed to local apps over IPC, never shown; at most 16 KiB.
    pub raw_content: Option<String>,
    /// End-to-end encrypted content (`docs/encryption.md`): one entry per subscription,
    /// each the JSON of a payload with visual and raw content, encrypted for that
    /// device. The service carries it without a key. On a device that opened its entry,
    /// the opened content is in the fields above and this list is empty.
    pub encrypted_content: Option<Vec<SealedContent>>,
}

/// In JSON a payload sent in the clear has no `encryptedContent` at all, so the Graph
/// resource is what it always was; the stores (postcard, not self-describing) always
/// write every field.
impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let plain = serializer.is_human_readable() && self.encrypted_content.is_none();
        let mut out = serializer.serialize_struct("Payload", if plain { 2 } else { 3 })?;
        out.serialize_field("visualContent", &self.visual_content)?;
        out.serialize_field("rawContent", &self.raw_content)?;
        if plain {
            out.skip_field("encryptedContent")?;
        } else {
            out.serialize_field("encryptedContent", &self.encrypted_content)?;
        }
        out.end()
    }
}

impl Payload {
    /// Whether it arrived encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.encrypted_content.is_some()
    }

    /// Whether it arrived encrypted and was not opened here (no entry for this device,
    /// or one that could not be decrypted): nothing to show.
    pub fn is_sealed(&self) -> bool {
        self.encrypted_content
            .as_ref()
            .is_some_and(|e| !e.is_empty())
    }
}

/// Which platforms a notification is for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetPolicy {
    /// `None` means every platform.
    pub platform_types: Option<Vec<Platform>>,
}

impl TargetPolicy {
    /// Whether a device of `platform` should receive the notification.
    pub fn targets(&self, platform: Platform) -> bool {
        self.platform_types
            .as_ref()
            .is_none_or(|types| types.contains(&platform))
    }
}

/// A JSON object kept verbatim (as text) for compatibility, e.g. `fallbackPolicy`.
///
/// In JSON it is the object itself; in the stores it is its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonObject(String);

impl JsonObject {
    /// Wraps a JSON object value.
    pub fn from_value(value: &serde_json::Map<String, serde_json::Value>) -> Self {
        Self(serde_json::Value::Object(value.clone()).to_string())
    }

    /// Its size as compact JSON, in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty text (never, for a parsed object).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for JsonObject {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            let value: serde_json::Value =
                serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
            value.serialize(serializer)
        } else {
            serializer.serialize_str(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for JsonObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            match serde_json::Value::deserialize(deserializer)? {
                serde_json::Value::Object(map) => Ok(JsonObject::from_value(&map)),
                _ => Err(de::Error::custom("expected a JSON object")),
            }
        } else {
            String::deserialize(deserializer).map(JsonObject)
        }
    }
}

/// The fields an app sets when it posts a notification, already validated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationContent {
    /// The app's host name.
    pub target_host_name: String,
    /// The app's own id; a second post with it replaces the notification in place.
    pub app_notification_id: Option<String>,
    /// A group that `DELETE ...?groupName=` removes at once.
    pub group_name: Option<String>,
    /// Seconds a toast stays on screen.
    pub display_time_to_live: Option<u32>,
    /// When the notification is purged everywhere.
    pub expiration_date_time: Timestamp,
    /// Urgency.
    pub priority: Priority,
    /// What it carries.
    pub payload: Payload,
    /// Which platforms receive it.
    pub target_policy: TargetPolicy,
    /// Accepted and stored for Graph compatibility; no effect.
    pub fallback_policy: Option<JsonObject>,
}

impl NotificationContent {
    /// Its size as a user's quota counts it: the bytes of its text and data (host,
    /// ids, group, title, body, raw content, encrypted content, fallback policy).
    pub fn size(&self) -> usize {
        let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        let visual = self
            .payload
            .visual_content
            .as_ref()
            .map_or(0, |v| v.title.len() + text(&v.body));
        self.target_host_name.len()
            + text(&self.app_notification_id)
            + text(&self.group_name)
            + visual
            + text(&self.payload.raw_content)
            + self
                .payload
                .encrypted_content
                .as_ref()
                .map_or(0, |entries| {
                    entries
                        .iter()
                        .map(|e| e.unsid.as_str().len() + e.content.len())
                        .sum()
                })
            + self.fallback_policy.as_ref().map_or(0, JsonObject::len)
    }
}

/// What the user did with a notification, synced across devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserState {
    /// Read or not.
    pub read_state: ReadState,
    /// Clicked, dismissed, ...
    pub user_action_state: UserActionState,
    /// Active or a tombstone.
    pub status: Status,
}

impl UserState {
    /// The state of a new (or replaced) notification.
    pub const FRESH: UserState = UserState {
        read_state: ReadState::Unread,
        user_action_state: UserActionState::NoInteraction,
        status: Status::Active,
    };

    /// Whether the notification still asks for attention: active, not read, and not
    /// dismissed (closing a toast dismisses it; a dismissed one is done with, as on
    /// every peer's desktop). This is what "unread" means in counts and filters.
    pub fn is_unread(&self) -> bool {
        self.status == Status::Active
            && self.read_state == ReadState::Unread
            && self.user_action_state != UserActionState::Dismissed
    }
}

/// The notification resource, as JSON on every API and channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// Assigned by the service.
    pub id: NotificationId,
    /// What the app set.
    #[serde(flatten)]
    pub content: NotificationContent,
    /// When it was first created.
    pub created_date_time: Timestamp,
    /// When it last changed (content or state).
    pub last_modified_date_time: Timestamp,
    /// The user's state.
    #[serde(flatten)]
    pub state: UserState,
}

impl Notification {
    /// Whether it has expired at `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.content.expiration_date_time <= now
    }
}

/// One feed entry as `GET /v1/me/notifications` returns it: the resource plus its `seq`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedItem {
    /// The feed position of this notification's latest change.
    pub seq: Seq,
    /// The notification in its latest state.
    #[serde(flatten)]
    pub notification: Notification,
}

/// The body of `GET /v1/me/notifications`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FeedPage {
    /// Items in `seq` order.
    pub value: Vec<FeedItem>,
    /// Where the next page is, when this one ended at its `top` or its size limit
    /// (Graph's paging link; a relative URL). Paging on with the last item's `seq` as
    /// `since` is the same.
    #[serde(
        rename = "@odata.nextLink",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub next_link: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_payload_is_the_graph_resource_and_every_payload_round_trips() {
        let plain = Payload {
            visual_content: Some(VisualContent {
                title: "t".into(),
                body: None,
            }),
            raw_content: None,
            encrypted_content: None,
        };
        let json = serde_json::to_value(&plain).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"visualContent": {"title": "t", "body": null}, "rawContent": null})
        );
        let opened = Payload {
            encrypted_content: Some(Vec::new()),
            ..plain.clone()
        };
        assert_eq!(
            serde_json::to_value(&opened).unwrap()["encryptedContent"],
            serde_json::json!([])
        );
        for payload in [plain, opened] {
            let text = serde_json::to_string(&payload).unwrap();
            assert_eq!(serde_json::from_str::<Payload>(&text).unwrap(), payload);
            let bytes = postcard::to_stdvec(&payload).unwrap();
            assert_eq!(postcard::from_bytes::<Payload>(&bytes).unwrap(), payload);
        }
    }
}
