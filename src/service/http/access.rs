//! Who is calling: bearer tokens to apps and devices, and an app's UNSID to the
//! subscription (and so the user) it posts to.

use axum::http::{HeaderMap, header};

use crate::protocol::{Timestamp, Unsid};
use crate::service::ServiceState;
use crate::service::auth::Claims;
use crate::service::store::{AppRecord, DeviceRecord, SubscriptionRecord};

use super::error::ApiError;

/// The `X-UNS-ID` header (matched case-insensitively, as every header).
pub const UNS_ID_HEADER: &str = "x-uns-id";

/// The token of an `Authorization: Bearer` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn missing() -> ApiError {
    ApiError::unauthenticated(
        "no access token; send Authorization: Bearer <token> from POST /oauth2/v2.0/token",
    )
}

/// The app an app token belongs to.
pub fn app(state: &ServiceState, token: Option<&str>) -> Result<AppRecord, ApiError> {
    let claims = state
        .signer
        .verify(token.ok_or_else(missing)?, state.now())?;
    match claims {
        Claims::App { client_id } => state
            .store
            .app(&client_id)?
            .ok_or_else(|| ApiError::unauthenticated("the token's app no longer exists")),
        Claims::Device { .. } => Err(ApiError::forbidden(
            "this endpoint takes an app token (grant_type=client_credentials), not a device token",
        )),
    }
}

/// The (not revoked) device a device token belongs to.
pub fn device(state: &ServiceState, token: Option<&str>) -> Result<DeviceRecord, ApiError> {
    let claims = state
        .signer
        .verify(token.ok_or_else(missing)?, state.now())?;
    match claims {
        Claims::Device { device, .. } => live_device(state.store.device(&device)?),
        Claims::App { .. } => Err(ApiError::forbidden(
            "this endpoint takes a device token (grant_type=password or refresh_token), not an app token",
        )),
    }
}

/// Refuses unknown and revoked devices.
pub fn live_device(device: Option<DeviceRecord>) -> Result<DeviceRecord, ApiError> {
    match device {
        Some(d) if !d.revoked => Ok(d),
        Some(_) => Err(ApiError::unauthenticated(
            "this device was revoked; sign in again",
        )),
        None => Err(ApiError::unauthenticated(
            "this device is not known to the service",
        )),
    }
}

/// An app's call on behalf of a UNSID: the app and the subscription it posts to.
pub struct AppCall {
    /// The calling app.
    pub app: AppRecord,
    /// The subscription the `X-UNS-ID` names.
    pub subscription: SubscriptionRecord,
}

/// Authenticates an app and resolves its `X-UNS-ID`; the app must own the UNSID's host.
pub fn app_call(state: &ServiceState, headers: &HeaderMap) -> Result<AppCall, ApiError> {
    let app = app(state, bearer(headers))?;
    let unsid = headers
        .get(UNS_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(
                "X-UNS-ID: header is required; it is the UNSID a device subscribed with",
            )
        })?;
    let subscription = subscription(state, &Unsid::new(unsid), state.now())?;
    if subscription.host != app.host {
        return Err(ApiError::forbidden(format!(
            "this app posts for {:?}, but the X-UNS-ID is a subscription to {:?}",
            app.host, subscription.host
        )));
    }
    Ok(AppCall { app, subscription })
}

fn subscription(
    state: &ServiceState,
    unsid: &Unsid,
    now: Timestamp,
) -> Result<SubscriptionRecord, ApiError> {
    match state.store.subscription(unsid)? {
        Some(sub) if sub.expires > now => Ok(sub),
        Some(_) => Err(ApiError::not_found(
            "X-UNS-ID: the subscription has expired; the device must subscribe again",
        )),
        None => Err(ApiError::not_found(
            "X-UNS-ID: no such subscription (unknown, or its device was revoked)",
        )),
    }
}
