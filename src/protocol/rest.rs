//! The REST answers both sides read: the token endpoint's answer and a subscription.
//! (The feed page is [`super::FeedPage`], the error body [`super::ErrorBody`].) The
//! service writes them, the agent and the command line read them: one declaration.

use serde::{Deserialize, Serialize};

use super::{DeviceId, Timestamp, Unsid, UserId};

/// The answer of `POST /oauth2/v2.0/token`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The bearer token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until `access_token` expires.
    pub expires_in: u64,
    /// The device credential (password and refresh grants; a refresh replaces it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The device this token is for (device grants).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<DeviceId>,
    /// The signed-in user (device grants).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
}

/// A device's subscription to an app: the answer of `POST /v1/me/subscriptions`, and
/// what the agent keeps (its store encodes the fields in this order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// The UNSID to hand to the app's backend.
    #[serde(rename = "id")]
    pub unsid: Unsid,
    /// The app's host name.
    pub target_host_name: String,
    /// When it lapses unless renewed.
    pub expiration_date_time: Timestamp,
}
