//! Registering devices: the password grant signs one in over HTTP, and the agent's
//! local mode provisions the OS user and this device directly in the embedded
//! service's store. Both go through [`register_device`].

use crate::protocol::{DeviceId, Platform, Seq, Timestamp, UserId};

use super::ServiceState;
use super::auth::{self, AuthError};
use super::store::{DeviceRecord, StoreError, UserRecord};

/// Why provisioning failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Credentials could not be made.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The user has as many devices signed in as allowed.
    #[error("{0}")]
    TooManyDevices(String),
}

/// A freshly registered device and its refresh token (shown to the device once).
pub struct Registered {
    /// The device as stored.
    pub device: DeviceRecord,
    /// Its credential.
    pub refresh_token: String,
}

/// Registers a new device of `user`.
pub async fn register_device(
    state: &ServiceState,
    user: &UserId,
    name: String,
    platform: Platform,
) -> Result<Registered, ProvisionError> {
    let cap = state.settings.max_devices_per_user;
    if state.store.live_devices(user).await? >= cap {
        return Err(ProvisionError::TooManyDevices(format!(
            "this user already has {cap} devices signed in; sign one out (`tidings logout` on it) or revoke old ones (`tidings admin device list`, then `tidings admin device revoke ID`)"
        )));
    }
    let (secret, refresh_hash) = auth::new_secret()?;
    let now = state.now();
    let device = state
        .store
        .add_device(DeviceRecord {
            id: DeviceId::random(),
            user: user.clone(),
            name,
            platform,
            refresh_hash,
            revoked: false,
            acked_seq: Seq::ZERO,
            last_seen: Some(now),
            created: now,
        })
        .await?;
    let refresh_token = auth::refresh_token(&device.id, &secret);
    Ok(Registered {
        device,
        refresh_token,
    })
}

/// Local mode: makes sure `user_name` exists (with a random password nobody knows:
/// local devices never sign in with one) and registers this device for it.
pub async fn local_device(
    state: &ServiceState,
    user_name: &str,
    device_name: String,
) -> Result<Registered, ProvisionError> {
    let user = if let Some(user) = state.store.user_by_name(user_name).await? {
        user
    } else {
        let password = auth::random_id()?;
        let hash = state
            .passwords
            .hash(password)
            .await
            .map_err(|e| AuthError::Hash(e.to_string()))??;
        let user = UserRecord {
            id: UserId::random(),
            name: user_name.to_owned(),
            password_hash: hash,
            created: Timestamp::now(),
        };
        state.store.add_user(user).await?
    };
    register_device(state, &user.id, device_name, Platform::current()).await
}
