//! The caller's own devices and subscriptions under `/v1/me`: list them, revoke a
//! device, end a subscription. A device token reaches only its own user's things; what
//! belongs to someone else is `404`, as if it did not exist.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use crate::protocol::rest::{Listing, MyDevice, MySubscription};
use crate::protocol::{DeviceId, Unsid};
use crate::service::State as AppState;

use super::access::Caller;
use super::error::ApiError;

/// `GET /v1/me/devices`: the user's signed-in devices, the caller marked `current`.
pub async fn devices(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<Listing<MyDevice>>, ApiError> {
    let value = state
        .store
        .user_devices(&caller.user)
        .await?
        .into_iter()
        .map(|d| MyDevice {
            connected: state.hub.is_connected(&d.id),
            current: d.id == caller.id,
            id: d.id,
            name: d.name,
            platform: d.platform,
            created_date_time: d.created,
            last_seen_date_time: d.last_seen,
        })
        .collect();
    Ok(Json(Listing { value }))
}

/// `DELETE /v1/me/devices/{id}`: revokes one of the user's devices (the caller too, as
/// `DELETE /v1/me/device` does): its tokens stop working and its channel closes.
pub async fn revoke(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = DeviceId::new(id);
    let theirs = state
        .store
        .device(&id)
        .await?
        .filter(|d| d.user == caller.user && !d.revoked);
    if theirs.is_none() {
        return Err(ApiError::not_found(format!("no device {id}")));
    }
    state.revoke_device(&id).await?;
    tracing::info!(device = %id, by = %caller.id, "device revoked by its user");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/me/subscriptions`: every subscription of the user's devices.
pub async fn subscriptions(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<Listing<MySubscription>>, ApiError> {
    let mut value = Vec::new();
    for d in state.store.user_devices(&caller.user).await? {
        for sub in state.store.device_subscriptions(&d.id).await? {
            value.push(MySubscription {
                unsid: sub.unsid,
                target_host_name: sub.host,
                expiration_date_time: sub.expires,
                device_id: d.id.clone(),
                device_name: d.name.clone(),
            });
        }
    }
    Ok(Json(Listing { value }))
}

/// `DELETE /v1/me/subscriptions/{id}`: ends one of the user's subscriptions; the app's
/// posts to that UNSID are refused from now on.
pub async fn unsubscribe(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let unsid = Unsid::new(id);
    let theirs = state
        .store
        .subscription(&unsid)
        .await?
        .filter(|s| s.user == caller.user);
    if theirs.is_none() {
        return Err(ApiError::not_found("no such subscription"));
    }
    state.store.unsubscribe(&unsid).await?;
    Ok(StatusCode::NO_CONTENT)
}
