//! The versioned postcard encoding both stores (the service's and the agent's) use for
//! their values, and the stored form of a notification.
//!
//! Every value is one version byte followed by the postcard encoding of that version's
//! struct. postcard is not self-describing, so a changed struct gets a new version
//! number and a decoder for the old one; a record of an unknown version is an error,
//! never a misread.

use serde::{Deserialize, Serialize};

mod v1;

use super::ids::{NotificationId, Seq};
use super::notification::{Notification, NotificationContent, UserState};
use super::time::Timestamp;

/// A value the stores keep, and the version of its encoding.
///
/// A type whose fields change takes a higher [`Versioned::VERSION`] and reads what older
/// builds wrote in [`Versioned::read_older`]; a version it does not know is an error.
pub trait Versioned: Sized {
    /// The version byte it is written with today.
    const VERSION: u8 = 1;

    /// Reads a value an older build wrote with `version`; `None` when no build wrote
    /// this type with it.
    fn read_older(version: u8, bytes: &[u8]) -> Option<Result<Self, postcard::Error>> {
        let _ = (version, bytes);
        None
    }
}

/// A value that could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// postcard could not encode it.
    #[error("could not encode a record: {0}")]
    Encode(postcard::Error),
    /// postcard could not decode it.
    #[error("could not decode a stored record: {0}")]
    Decode(postcard::Error),
    /// A version this build does not know, or no bytes at all.
    #[error("corrupt record: {0}")]
    Version(String),
}

/// Encodes a record as version byte + postcard.
pub fn encode<T: Serialize + Versioned>(value: &T) -> Result<Vec<u8>, RecordError> {
    // Sized first (a pass that only counts), so the buffer is allocated once rather
    // than grown several times as the record is written.
    let size = postcard::serialize_with_flavor(value, postcard::ser_flavors::Size::default())
        .map_err(RecordError::Encode)?;
    let mut out = Vec::with_capacity(1 + size);
    out.push(T::VERSION);
    postcard::to_io(value, &mut out).map_err(RecordError::Encode)?;
    Ok(out)
}

/// Decodes a record written by [`encode`].
pub fn decode<'a, T: Deserialize<'a> + Versioned>(bytes: &'a [u8]) -> Result<T, RecordError> {
    match bytes.split_first() {
        Some((&version, rest)) if version == T::VERSION => {
            postcard::from_bytes(rest).map_err(RecordError::Decode)
        }
        Some((&version, rest)) => T::read_older(version, rest)
            .ok_or_else(|| {
                RecordError::Version(format!(
                    "record version {version} is not known to this build"
                ))
            })?
            .map_err(RecordError::Decode),
        None => Err(RecordError::Version("empty record".to_owned())),
    }
}

/// Reads a stored big-endian u64 (counters, cursors, `seq` floors).
pub fn be_u64(bytes: &[u8]) -> Result<u64, RecordError> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| RecordError::Version(format!("a number is {} bytes, not 8", bytes.len())))?;
    Ok(u64::from_be_bytes(array))
}

/// A notification with its feed position, as the stores keep it. (The wire resource
/// uses `#[serde(flatten)]`, which postcard cannot encode, so this is its flat twin.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationRecord {
    /// The feed position of its latest change.
    pub seq: Seq,
    /// Assigned by the service.
    pub id: NotificationId,
    /// What the app set.
    pub content: NotificationContent,
    /// First created.
    pub created: Timestamp,
    /// Last changed.
    pub modified: Timestamp,
    /// The user's state.
    pub state: UserState,
}

/// Version 2 added encrypted content to the payload.
impl Versioned for NotificationRecord {
    const VERSION: u8 = 2;

    fn read_older(version: u8, bytes: &[u8]) -> Option<Result<Self, postcard::Error>> {
        (version == 1).then(|| v1::read(bytes))
    }
}

impl NotificationRecord {
    /// The stored form of `notification` at `seq`.
    pub fn new(seq: Seq, notification: Notification) -> Self {
        Self {
            seq,
            id: notification.id,
            content: notification.content,
            created: notification.created_date_time,
            modified: notification.last_modified_date_time,
            state: notification.state,
        }
    }

    /// The wire resource, made from this record (no copy of its content).
    pub fn into_notification(self) -> Notification {
        Notification {
            id: self.id,
            content: self.content,
            created_date_time: self.created,
            last_modified_date_time: self.modified,
            state: self.state,
        }
    }

    /// The wire resource.
    pub fn to_notification(&self) -> Notification {
        Notification {
            id: self.id.clone(),
            content: self.content.clone(),
            created_date_time: self.created,
            last_modified_date_time: self.modified,
            state: self.state,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value whose second version added a field.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Grown(u64, String, Option<u8>);

    impl Versioned for Grown {
        const VERSION: u8 = 2;
        fn read_older(version: u8, bytes: &[u8]) -> Option<Result<Self, postcard::Error>> {
            (version == 1).then(|| {
                postcard::from_bytes::<(u64, String)>(bytes).map(|(n, s)| Grown(n, s, None))
            })
        }
    }

    impl Versioned for (u64, String) {}

    #[test]
    fn unknown_versions_are_refused_not_misread() {
        let bytes = encode(&(1u64, "x".to_owned())).unwrap();
        assert_eq!(bytes[0], 1);
        assert_eq!(
            decode::<(u64, String)>(&bytes).unwrap(),
            (1, "x".to_owned())
        );
        let mut future = bytes.clone();
        future[0] = 2;
        assert!(matches!(
            decode::<(u64, String)>(&future),
            Err(RecordError::Version(_))
        ));
        assert!(decode::<(u64, String)>(&[]).is_err());
    }

    /// A record as the build before encrypted content wrote it (version 1).
    const V1_RECORD: &str = "0105026e310b636f6e746f736f2e636f6d01026131010167011e808098cbcd68044869676801024869010574686572650103726177000080f0b38ac968d0ffb38ac9680472656164096469736d697373656406616374697665";

    #[test]
    fn a_notification_record_of_version_1_reads_whole() {
        let bytes: Vec<u8> = (0..V1_RECORD.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&V1_RECORD[i..i + 2], 16).unwrap())
            .collect();
        let record: NotificationRecord = decode(&bytes).unwrap();
        assert_eq!(record.seq, Seq(5));
        assert_eq!(record.id.as_str(), "n1");
        let content = &record.content;
        assert_eq!(content.target_host_name, "contoso.com");
        assert_eq!(content.app_notification_id.as_deref(), Some("a1"));
        assert_eq!(content.group_name.as_deref(), Some("g"));
        assert_eq!(content.display_time_to_live, Some(30));
        assert_eq!(content.priority, crate::protocol::Priority::High);
        let visual = content.payload.visual_content.as_ref().unwrap();
        assert_eq!(
            (visual.title.as_str(), visual.body.as_deref()),
            ("Hi", Some("there"))
        );
        assert_eq!(content.payload.raw_content.as_deref(), Some("raw"));
        assert!(!content.payload.is_encrypted());
        assert_eq!(record.state.read_state, crate::protocol::ReadState::Read);
        assert_eq!(
            record.modified,
            Timestamp::parse_rfc3339("2026-12-06T00:00:01Z").unwrap()
        );
        // Written again, it is a version 2 record that reads back the same.
        let again = encode(&record).unwrap();
        assert_eq!(again[0], 2);
        assert_eq!(decode::<NotificationRecord>(&again).unwrap(), record);
    }

    #[test]
    fn what_an_older_version_wrote_is_read_by_the_type_that_grew() {
        let old = encode(&(7u64, "x".to_owned())).unwrap();
        assert_eq!(decode::<Grown>(&old).unwrap(), Grown(7, "x".into(), None));
        let new = encode(&Grown(8, "y".into(), Some(1))).unwrap();
        assert_eq!(new[0], 2);
        assert_eq!(
            decode::<Grown>(&new).unwrap(),
            Grown(8, "y".into(), Some(1))
        );
        // The old type refuses the new version rather than misreading it.
        assert!(decode::<(u64, String)>(&new).is_err());
        let mut unknown = new.clone();
        unknown[0] = 3;
        assert!(matches!(
            decode::<Grown>(&unknown),
            Err(RecordError::Version(_))
        ));
    }
}
