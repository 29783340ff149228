//! Who is calling: bearer tokens to apps and devices (or, for the web app, a session
//! cookie from a same-origin page), and an app's UNSID to the subscription (and so the
//! user) it posts to.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};

use crate::protocol::validate::entry_field;
use crate::protocol::{Payload, Timestamp, Unsid, UserId};
use crate::service::auth::Claims;
use crate::service::store::{AppRecord, DeviceRecord, SubscriptionRecord};
use crate::service::{ServiceState, State as AppState};

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

/// The cookie that carries a web session's access token (`session.rs` sets it:
/// `HttpOnly`, so page scripts never see it, and `SameSite=Strict`).
pub const ACCESS_COOKIE: &str = "tidings_access";

/// The value of cookie `name`, from any `Cookie` header.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

/// Refuses a cross-site request that a browser would send with the session cookie (CSRF,
/// on top of `SameSite=Strict`): an `Origin` must name this very host, and a request
/// without one may only read. Browsers send `Origin` with every `POST`, `PATCH`,
/// `DELETE` and WebSocket handshake.
pub fn same_origin(headers: &HeaderMap, method: &Method) -> Result<(), ApiError> {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(origin) => {
            let authority = origin
                .split_once("://")
                .map(|(_, a)| a.trim_end_matches('/'));
            match (authority, host) {
                (Some(a), Some(h)) if a.eq_ignore_ascii_case(h) => Ok(()),
                _ => Err(ApiError::forbidden(format!(
                    "a request from {origin} may not use this site's session; sign in on this site's own page"
                ))),
            }
        }
        None if method == Method::GET || method == Method::HEAD => Ok(()),
        None => Err(ApiError::forbidden(
            "a request signed in by a session cookie must carry an Origin header (browsers send one)",
        )),
    }
}

/// A request's device token: `Authorization: Bearer`, else the web session's cookie
/// from a same-origin request ([`same_origin`]).
pub fn device_token<'h>(
    headers: &'h HeaderMap,
    method: &Method,
) -> Result<Option<&'h str>, ApiError> {
    if let Some(token) = bearer(headers) {
        return Ok(Some(token));
    }
    let Some(token) = cookie(headers, ACCESS_COOKIE) else {
        return Ok(None);
    };
    same_origin(headers, method)?;
    Ok(Some(token))
}

/// The (not revoked) device making a request, by [`device_token`]: the extractor of
/// every device route.
pub struct Caller(pub DeviceRecord);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = device_token(&parts.headers, &parts.method)?;
        device(state, token).await.map(Self)
    }
}

fn missing() -> ApiError {
    ApiError::unauthenticated(
        "no access token; send Authorization: Bearer <token> from POST /oauth2/v2.0/token",
    )
}

/// The app an app token belongs to.
pub async fn app(state: &ServiceState, token: Option<&str>) -> Result<AppRecord, ApiError> {
    let claims = state
        .signer
        .verify(token.ok_or_else(missing)?, state.now())?;
    match claims {
        Claims::App { client_id } => state
            .store
            .app(&client_id)
            .await?
            .ok_or_else(|| ApiError::unauthenticated("the token's app no longer exists")),
        Claims::Device { .. } => Err(ApiError::forbidden(
            "this endpoint takes an app token (grant_type=client_credentials), not a device token",
        )),
    }
}

/// The (not revoked) device a device token belongs to.
pub async fn device(state: &ServiceState, token: Option<&str>) -> Result<DeviceRecord, ApiError> {
    let claims = state
        .signer
        .verify(token.ok_or_else(missing)?, state.now())?;
    match claims {
        Claims::Device { device, .. } => live_device(state.store.device(&device).await?),
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
pub async fn app_call(state: &ServiceState, headers: &HeaderMap) -> Result<AppCall, ApiError> {
    let app = app(state, bearer(headers)).await?;
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
    let subscription = subscription(state, &Unsid::new(unsid), state.now()).await?;
    if subscription.host != app.host {
        return Err(ApiError::forbidden(format!(
            "this app posts for {:?}, but the X-UNS-ID is a subscription to {:?}",
            app.host, subscription.host
        )));
    }
    Ok(AppCall { app, subscription })
}

async fn subscription(
    state: &ServiceState,
    unsid: &Unsid,
    now: Timestamp,
) -> Result<SubscriptionRecord, ApiError> {
    match state.store.subscription(unsid).await? {
        Some(sub) if sub.expires > now => Ok(sub),
        Some(_) => Err(ApiError::not_found(
            "X-UNS-ID: the subscription has expired; the device must subscribe again",
        )),
        None => Err(ApiError::not_found(
            "X-UNS-ID: no such subscription (unknown, or its device was revoked)",
        )),
    }
}

/// Each entry of encrypted content must name a current subscription of `user` to
/// `host` (a device that can open it): else `400` naming the entry, as an unknown
/// `X-UNS-ID` is refused. A backend drops a subscription it is told of, as it drops one a
/// Web Push service answers `410 Gone` for.
pub async fn check_sealed_entries(
    state: &ServiceState,
    user: &UserId,
    host: &str,
    payload: &Payload,
) -> Result<(), ApiError> {
    let Some(entries) = &payload.encrypted_content else {
        return Ok(());
    };
    let now = state.now();
    for (at, entry) in entries.iter().enumerate() {
        let current = state
            .store
            .subscription(&entry.unsid)
            .await?
            .is_some_and(|s| &s.user == user && s.host == host && s.expires > now);
        if !current {
            return Err(ApiError::bad_request(format!(
                "{}: {:?} is not a current subscription of this user to {host:?} (unknown, expired, revoked, or another user's); leave the entry out",
                entry_field(at, "unsid"),
                entry.unsid.as_str()
            )));
        }
    }
    Ok(())
}
