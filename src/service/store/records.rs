//! The values the service store keeps, and their versioned postcard encoding.
//!
//! Every value is one version byte followed by the postcard encoding of that version's
//! struct. postcard is not self-describing, so a changed struct gets a new version
//! number and a decoder for the old one; a record of an unknown version is an error,
//! never a misread.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::protocol::{
    ClientId, DeviceId, Notification, NotificationContent, NotificationId, Platform, Seq,
    Timestamp, Unsid, UserId, UserState,
};

use super::StoreError;

/// The version byte every record is written with today.
const VERSION: u8 = 1;

/// Encodes a record as version byte + postcard.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![VERSION];
    postcard::to_io(value, &mut out).map_err(StoreError::Encode)?;
    Ok(out)
}

/// Decodes a record written by [`encode`].
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&VERSION, rest)) => postcard::from_bytes(rest).map_err(StoreError::Decode),
        Some((version, _)) => Err(StoreError::Corrupt(format!(
            "record version {version} is not known to this build"
        ))),
        None => Err(StoreError::Corrupt("empty record".to_owned())),
    }
}

/// A user who can sign devices in.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserRecord {
    /// Stable id.
    pub id: UserId,
    /// Sign-in name.
    pub name: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// When added.
    pub created: Timestamp,
}

/// An app backend allowed to post for one host name.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AppRecord {
    /// OAuth client id.
    pub client_id: ClientId,
    /// The host name its notifications carry.
    pub host: String,
    /// SHA-256 of the client secret.
    pub secret_hash: Vec<u8>,
    /// When added.
    pub created: Timestamp,
}

/// A device signed in for a user.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// Stable id.
    pub id: DeviceId,
    /// Its user.
    pub user: UserId,
    /// A name the user chose.
    pub name: String,
    /// What it runs on.
    pub platform: Platform,
    /// SHA-256 of the refresh token's secret part.
    pub refresh_hash: Vec<u8>,
    /// Revoked devices keep their record (for `device list`) but nothing works for them.
    pub revoked: bool,
    /// The highest `seq` the device acknowledged as durably stored.
    pub acked_seq: Seq,
    /// When it last talked to the service.
    pub last_seen: Option<Timestamp>,
    /// When it signed in.
    pub created: Timestamp,
}

/// A device's subscription to one app host.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    /// The UNSID handed to the app.
    pub unsid: Unsid,
    /// Whose.
    pub user: UserId,
    /// Which device subscribed.
    pub device: DeviceId,
    /// The app's host name.
    pub host: String,
    /// When it lapses unless renewed.
    pub expires: Timestamp,
}

/// A notification with its feed position, as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
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

impl NotificationRecord {
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
