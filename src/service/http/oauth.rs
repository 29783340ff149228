//! `POST /oauth2/v2.0/token`: client credentials for apps, password sign-in for devices
//! (registers the device), and refresh tokens.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::{Extension, Json};
use serde::Deserialize;

use crate::protocol::rest::TokenResponse;
use crate::protocol::{ClientId, ErrorCode, Platform};
use crate::service::auth::{self, Claims};
use crate::service::provision;
use crate::service::{ServiceState, State as AppState};

use super::access::live_device;
use super::body::{self, Media};
use super::error::ApiError;

/// Longest device name accepted.
const MAX_DEVICE_NAME_CHARS: usize = 128;

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    username: Option<String>,
    password: Option<String>,
    device_name: Option<String>,
    platform: Option<String>,
    refresh_token: Option<String>,
}

fn required<'a>(value: Option<&'a String>, name: &str) -> Result<&'a str, ApiError> {
    value
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("{name}: is required")))
}

/// The route.
pub async fn token(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<TokenResponse>, ApiError> {
    let bytes = body::read(&headers, body, Media::Form).await?;
    let form: TokenForm = body::form(&bytes)?;
    let peer = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.0.0.ip());
    match required(form.grant_type.as_ref(), "grant_type")? {
        "client_credentials" => client_credentials(&state, &form).await.map(Json),
        "password" => password(&state, &form, peer).await.map(Json),
        "refresh_token" => refresh(&state, &form).await.map(Json),
        other => Err(ApiError::bad_request(format!(
            "grant_type: {other:?} is not supported; use client_credentials, password or refresh_token"
        ))),
    }
}

fn bearer(state: &ServiceState, claims: Claims) -> TokenResponse {
    let (device_id, user_id) = match &claims {
        Claims::Device { device, user } => (Some(device.clone()), Some(user.clone())),
        Claims::App { .. } => (None, None),
    };
    TokenResponse {
        access_token: state.signer.issue(claims, state.now()),
        token_type: "Bearer".to_owned(),
        expires_in: state.signer.ttl().as_secs(),
        refresh_token: None,
        device_id,
        user_id,
    }
}

async fn client_credentials(
    state: &ServiceState,
    form: &TokenForm,
) -> Result<TokenResponse, ApiError> {
    let client_id = ClientId::new(required(form.client_id.as_ref(), "client_id")?);
    let secret = required(form.client_secret.as_ref(), "client_secret")?;
    let app = state.store.app(&client_id).await?;
    match app {
        Some(app) if auth::secret_matches(secret, &app.secret_hash) => {
            Ok(bearer(state, Claims::App { client_id }))
        }
        _ => Err(ApiError::unauthenticated(
            "invalid client_id or client_secret",
        )),
    }
}

async fn password(
    state: &AppState,
    form: &TokenForm,
    peer: IpAddr,
) -> Result<TokenResponse, ApiError> {
    let username = required(form.username.as_ref(), "username")?;
    let password = required(form.password.as_ref(), "password")?.to_owned();
    let platform: Platform = match form.platform.as_deref() {
        None | Some("") => Platform::current(),
        Some(text) => text
            .parse()
            .map_err(|e| ApiError::bad_request(format!("platform: {e}")))?,
    };
    let name = form
        .device_name
        .clone()
        .unwrap_or_else(|| "device".to_owned());
    sign_in(
        state,
        SignIn {
            username,
            password,
            name,
            platform,
            peer,
        },
    )
    .await
}

/// A password sign-in that registers a device.
pub struct SignIn<'a> {
    /// The user's name.
    pub username: &'a str,
    /// Their password.
    pub password: String,
    /// The new device's name.
    pub name: String,
    /// What it runs on.
    pub platform: Platform,
    /// Where the request came from (failed sign-ins are counted per name and address).
    pub peer: IpAddr,
}

/// Checks a user's password, within the sign-in limits (failures slow later tries per
/// name and address; password checks share a bounded pool), and registers a device.
/// The answer carries its access and refresh tokens. The token endpoint's password
/// grant and the web app's sign-in both come here.
pub async fn sign_in(state: &AppState, request: SignIn<'_>) -> Result<TokenResponse, ApiError> {
    let SignIn {
        username,
        password,
        name,
        platform,
        peer,
    } = request;
    for (field, value) in [("username", username), ("device_name", name.as_str())] {
        body::refuse_nul(field, value)?;
    }
    if name.chars().count() > MAX_DEVICE_NAME_CHARS {
        return Err(ApiError::bad_request(format!(
            "device_name: must be at most {MAX_DEVICE_NAME_CHARS} characters"
        )));
    }
    if let Some(wait) = state.strikes.wait(username, peer, Instant::now()) {
        return Err(ApiError::new(
            ErrorCode::TooManyRequests,
            format!(
                "too many failed sign-ins; try again in {} s",
                wait.as_secs().max(1)
            ),
        )
        .retry_after(wait));
    }
    let user = state.store.user_by_name(username).await?;
    // An unknown user is checked against a dummy hash so timing does not tell names apart.
    let hash = user
        .as_ref()
        .map_or_else(|| auth::DUMMY_HASH.to_owned(), |u| u.password_hash.clone());
    let valid = state
        .passwords
        .verify(password, hash)
        .await
        .map_err(|busy| {
            ApiError::new(ErrorCode::ServiceUnavailable, busy.to_string())
                .retry_after(std::time::Duration::from_secs(1))
        })?;
    let user = match user {
        Some(user) if valid => user,
        _ => {
            state.strikes.failed(username, peer, Instant::now());
            return Err(ApiError::unauthenticated("invalid user name or password"));
        }
    };
    state.strikes.succeeded(username, peer);
    let registered = provision::register_device(state, &user.id, name, platform)
        .await
        .map_err(|e| match e {
            provision::ProvisionError::Store(e) => ApiError::from(e),
            provision::ProvisionError::TooManyDevices(message) => ApiError::forbidden(message),
            other @ provision::ProvisionError::Auth(_) => ApiError::internal(&other),
        })?;
    let device = registered.device;
    tracing::info!(user = %user.name, device = %device.id, "device signed in");
    let mut response = bearer(
        state,
        Claims::Device {
            device: device.id.clone(),
            user: user.id,
        },
    );
    response.refresh_token = Some(registered.refresh_token);
    Ok(response)
}

/// How long the refresh token just replaced is still taken, in case the answer that
/// replaced it was lost.
const REPLACED_TOKEN_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// `grant_type=refresh_token`: rotates the refresh token (the answer carries the new
/// one; the old one stops working). A replaced token presented again means two holders
/// of one credential, one of them not the device: the device is revoked (OAuth 2.0
/// refresh token rotation with reuse detection), unless it is the one replaced last,
/// within [`REPLACED_TOKEN_GRACE`] (a lost answer). A token unused for longer than
/// `refresh_token_ttl` has expired.
async fn refresh(state: &ServiceState, form: &TokenForm) -> Result<TokenResponse, ApiError> {
    rotate(
        state,
        required(form.refresh_token.as_ref(), "refresh_token")?,
    )
    .await
}

/// Rotates a device's refresh token: the answer carries a fresh access token and the
/// new refresh token (see [`refresh`] for reuse detection). The refresh grant and the
/// web app's session refresh both come here.
pub async fn rotate(state: &ServiceState, token: &str) -> Result<TokenResponse, ApiError> {
    let invalid = || ApiError::unauthenticated("invalid refresh_token; sign in again");
    let (device_id, secret) = auth::parse_refresh_token(token).ok_or_else(invalid)?;
    let device = live_device(state.store.device(&device_id).await?)?;
    let history = state.store.refresh_record(&device.id).await?;
    let now = state.now();
    let current = auth::secret_matches(secret, &device.refresh_hash);
    // The answer to a refresh can be lost on the way (a dropped connection): the token
    // it replaced is taken once more for a short while, and replaced again.
    let answer_lost = !current
        && history
            .retired
            .last()
            .is_some_and(|last| auth::secret_matches(secret, last))
        && now < history.issued(&device).plus(REPLACED_TOKEN_GRACE);
    if !current && !answer_lost {
        if history
            .retired
            .iter()
            .any(|old| auth::secret_matches(secret, old))
        {
            state.revoke_device(&device.id).await?;
            tracing::warn!(device = %device.id, "a replaced refresh token was used again; the device is revoked");
            return Err(ApiError::unauthenticated(
                "this refresh token was already replaced, so a copy of it is in other hands; the device is signed out for safety: sign in again",
            ));
        }
        return Err(invalid());
    }
    if history
        .issued(&device)
        .plus(state.settings.refresh_token_ttl)
        <= now
    {
        return Err(ApiError::unauthenticated(
            "this refresh token expired unused; sign in again",
        ));
    }
    let (fresh_secret, fresh_hash) = auth::new_secret()?;
    if !state
        .store
        .rotate_refresh(&device.id, &device.refresh_hash, fresh_hash, now)
        .await?
    {
        return Err(ApiError::unauthenticated(
            "this refresh token was just replaced by another request; use the newest one",
        ));
    }
    state.store.touch_device(&device.id, now);
    let mut response = bearer(
        state,
        Claims::Device {
            device: device.id.clone(),
            user: device.user,
        },
    );
    response.refresh_token = Some(auth::refresh_token(&device.id, &fresh_secret));
    Ok(response)
}
