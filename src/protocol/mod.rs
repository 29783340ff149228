//! Wire and domain types shared by the service and the agent: the notification
//! resource and its validation, feed frames, text made safe to show, the Graph error body and id newtypes.
//!
//! This is the bottom layer: it imports nothing else from the crate, and everything
//! else may import it.

pub mod display;
pub mod enums;
pub mod error;
pub mod frames;
pub mod ids;
pub mod local;
pub mod notification;
pub mod rest;
pub mod sealed;
pub mod stored;
pub mod time;
pub mod validate;

pub use enums::{Platform, Priority, ReadState, Status, UserActionState};
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use frames::{ClientFrame, ServerFrame};
pub use ids::{ClientId, DeviceId, NotificationId, Seq, Unsid, UserId};
pub use notification::{
    FeedItem, FeedPage, Notification, NotificationContent, Payload, TargetPolicy, UserState,
    VisualContent,
};
pub use time::Timestamp;
pub use validate::{NotificationInput, StatePatch, ValidationError};

/// How many bytes `value` takes as compact JSON, counted without keeping them (to cap
/// answers by size: the service's feed pages, the agent's `list`).
pub fn json_len<T: serde::Serialize>(value: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing to a counter cannot fail; a value that cannot be serialised counts 0.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// Room a notification's JSON usually fits in: its text and data (the content's
/// `size`) plus this for the keys, ids and timestamps around them.
const JSON_ROOM: usize = 512;

/// A notification-bearing `value` as compact JSON, written into a buffer sized once
/// for `content_size` bytes of text and data (rather than grown several times).
pub fn notification_json<T: serde::Serialize>(
    value: &T,
    content_size: usize,
) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(content_size.saturating_add(JSON_ROOM));
    serde_json::to_writer(&mut out, value)?;
    Ok(out)
}
