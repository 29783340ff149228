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
