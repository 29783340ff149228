//! The REST answers both sides read: the token endpoint's answer, a subscription, and
//! the caller's devices and subscriptions.
//! (The feed page is [`super::FeedPage`], the error body [`super::ErrorBody`].) The
//! service writes them, the agent and the command line read them: one declaration.

use serde::{Deserialize, Serialize};

use super::{DeviceId, Platform, Timestamp, Unsid, UserId};

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

/// A Graph-style list: `{"value": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing<T> {
    /// The items.
    pub value: Vec<T>,
}

/// One of the caller's signed-in devices (`GET /v1/me/devices`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MyDevice {
    /// Its id (`DELETE /v1/me/devices/{id}` revokes it).
    pub id: DeviceId,
    /// The name it signed in with.
    pub name: String,
    /// What it runs on.
    pub platform: Platform,
    /// When it signed in.
    pub created_date_time: Timestamp,
    /// When it last talked to the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_date_time: Option<Timestamp>,
    /// Whether its push channel is open now.
    pub connected: bool,
    /// Whether it is the device asking.
    pub current: bool,
}

/// One subscription of any of the caller's devices (`GET /v1/me/subscriptions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MySubscription {
    /// The UNSID (`DELETE /v1/me/subscriptions/{id}` ends it).
    #[serde(rename = "id")]
    pub unsid: Unsid,
    /// The app's host name.
    pub target_host_name: String,
    /// When it lapses unless its device renews it.
    pub expiration_date_time: Timestamp,
    /// The device that subscribed.
    pub device_id: DeviceId,
    /// That device's name.
    pub device_name: String,
}
