//! The values the service store keeps (accounts); notifications use the shared
//! [`NotificationRecord`]. All are written with the versioned encoding of
//! [`crate::protocol::stored`].

use serde::{Deserialize, Serialize};

use crate::protocol::stored;
pub use crate::protocol::stored::NotificationRecord;
use crate::protocol::{ClientId, DeviceId, Platform, Seq, Timestamp, Unsid, UserId};

use super::StoreError;

/// Encodes a record (version byte + postcard).
pub(crate) fn encode<T: Serialize + stored::Versioned>(value: &T) -> Result<Vec<u8>, StoreError> {
    Ok(stored::encode(value)?)
}

/// Decodes a record written by [`encode`].
pub(crate) fn decode<'a, T: Deserialize<'a> + stored::Versioned>(
    bytes: &'a [u8],
) -> Result<T, StoreError> {
    Ok(stored::decode(bytes)?)
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

impl stored::Versioned for UserRecord {}
impl stored::Versioned for AppRecord {}
impl stored::Versioned for DeviceRecord {}
impl stored::Versioned for SubscriptionRecord {}
impl stored::Versioned for RefreshRecord {}
impl stored::Versioned for SubscriptionExpiry<'_> {
    const VERSION: u8 = <SubscriptionRecord as stored::Versioned>::VERSION;
}

/// A [`SubscriptionRecord`] read in place, for the one question asked of it on every
/// delivery (is it still current?) with no copy of its strings. Its fields must stay
/// those of [`SubscriptionRecord`], in order (a test checks it).
#[derive(Deserialize)]
pub(crate) struct SubscriptionExpiry<'a> {
    _unsid: &'a str,
    _user: &'a str,
    _device: &'a str,
    _host: &'a str,
    /// When it lapses unless renewed.
    pub expires: Timestamp,
}

/// Replaced tokens remembered per device.
const RETIRED_KEPT: usize = 16;

/// A device's refresh-token history.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RefreshRecord {
    /// When the current token was issued.
    pub issued: Option<Timestamp>,
    /// SHA-256 of the tokens the current one replaced, newest last.
    pub retired: Vec<Vec<u8>>,
}

impl RefreshRecord {
    /// When `device`'s current token was issued.
    pub fn issued(&self, device: &DeviceRecord) -> Timestamp {
        self.issued
            .unwrap_or_else(|| device.last_seen.unwrap_or(device.created))
    }

    /// Remembers `replaced` (the hash of the token a rotation replaced; the oldest are
    /// forgotten beyond [`RETIRED_KEPT`]) and that the new token was issued `now`.
    pub fn retire(&mut self, replaced: Vec<u8>, now: Timestamp) {
        self.retired.push(replaced);
        let excess = self.retired.len().saturating_sub(RETIRED_KEPT);
        self.retired.drain(..excess);
        self.issued = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscription_s_expiry_reads_in_place_from_the_full_record() {
        let record = SubscriptionRecord {
            unsid: Unsid::new("u-1".to_owned()),
            user: UserId::new("user-1".to_owned()),
            device: DeviceId::new("device-1".to_owned()),
            host: "app.example.com".to_owned(),
            expires: Timestamp::from_millis(1_234_567),
        };
        let bytes = encode(&record).unwrap();
        let view: SubscriptionExpiry<'_> = decode(&bytes).unwrap();
        assert_eq!(view.expires, record.expires);
    }
}
