//! The web app's session: a browser signs in with a user name and password and becomes
//! one of the user's devices (platform `webPush`, named after the browser), exactly as
//! the password grant registers one, within the same sign-in limits. Its tokens live in
//! cookies page scripts cannot read (`HttpOnly`), that no other site's request carries
//! (`SameSite=Strict`, and [`same_origin`] on every use), `Secure` when the service
//! serves TLS:
//!
//! - `tidings_access`: the access token, sent with every request (`Path=/`);
//! - `tidings_refresh`: the refresh token, sent only to `/web/session/refresh`.
//!
//! Routes: `GET /web/session` (who is signed in), `POST /web/session` (sign in),
//! `POST /web/session/refresh` (rotate both tokens), `DELETE /web/session` (sign out:
//! the device is revoked and the cookies cleared).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};

use crate::protocol::rest::TokenResponse;
use crate::protocol::validate::parse_json;
use crate::protocol::{DeviceId, Platform};
use crate::service::{ServiceState, State as AppState};

use super::access::{ACCESS_COOKIE, Caller, cookie, same_origin};
use super::body::{self, Media};
use super::error::ApiError;
use super::oauth::{SignIn, rotate, sign_in};

/// The cookie that carries the refresh token.
pub const REFRESH_COOKIE: &str = "tidings_refresh";
/// The only path the refresh cookie is sent to.
const REFRESH_PATH: &str = "/web/session/refresh";

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

/// Who is signed in, as the page sees it (never a token).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    /// The browser's device.
    device_id: DeviceId,
    /// Its name.
    device_name: String,
    /// The user's name.
    user_name: String,
    /// Seconds until the access token must be refreshed.
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_in: Option<u64>,
}

/// `GET /web/session`.
pub async fn current(
    State(state): State<AppState>,
    Caller(device): Caller,
) -> Result<Json<SessionInfo>, ApiError> {
    let user = state
        .store
        .user_by_id(&device.user)
        .await?
        .map_or_else(|| device.user.to_string(), |u| u.name);
    Ok(Json(SessionInfo {
        device_id: device.id,
        device_name: device.name,
        user_name: user,
        expires_in: None,
    }))
}

/// `POST /web/session` `{"username", "password"}`.
pub async fn open(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    same_origin(&headers, &Method::POST)?;
    let bytes = body::read(&headers, body, Media::Json).await?;
    let credentials: Credentials = parse_json(&bytes)?;
    let name = browser_name(
        headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default(),
    );
    let peer = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.0.0.ip());
    let request = SignIn {
        username: &credentials.username,
        password: credentials.password,
        name: name.clone(),
        platform: Platform::WebPush,
        peer,
    };
    let tokens = sign_in(&state, request).await?;
    let info = SessionInfo {
        device_id: tokens
            .device_id
            .clone()
            .unwrap_or_else(|| DeviceId::new("")),
        device_name: name,
        user_name: credentials.username,
        expires_in: Some(tokens.expires_in),
    };
    Ok(with_cookies(&state, &tokens, Json(info).into_response()))
}

/// `POST /web/session/refresh`: rotates the refresh token and issues a new access token.
pub async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    same_origin(&headers, &Method::POST)?;
    let token = cookie(&headers, REFRESH_COOKIE)
        .ok_or_else(|| ApiError::unauthenticated("no web session; sign in"))?;
    let tokens = rotate(&state, token).await?;
    let answer = Json(serde_json::json!({"expiresIn": tokens.expires_in}));
    Ok(with_cookies(&state, &tokens, answer.into_response()))
}

/// `DELETE /web/session`: signs the browser out; its device is revoked.
pub async fn close(
    State(state): State<AppState>,
    Caller(device): Caller,
) -> Result<Response, ApiError> {
    state.revoke_device(&device.id).await?;
    tracing::info!(device = %device.id, "web session signed out");
    let mut response = StatusCode::NO_CONTENT.into_response();
    let secure = secure(&state);
    append_cookie(
        &mut response,
        &set_cookie(ACCESS_COOKIE, "", "/", 0, secure),
    );
    append_cookie(
        &mut response,
        &set_cookie(REFRESH_COOKIE, "", REFRESH_PATH, 0, secure),
    );
    Ok(response)
}

fn with_cookies(state: &ServiceState, tokens: &TokenResponse, mut response: Response) -> Response {
    let secure = secure(state);
    let access = set_cookie(
        ACCESS_COOKIE,
        &tokens.access_token,
        "/",
        tokens.expires_in,
        secure,
    );
    append_cookie(&mut response, &access);
    if let Some(refresh) = &tokens.refresh_token {
        let ttl = state.settings.refresh_token_ttl.as_secs();
        let cookie = set_cookie(REFRESH_COOKIE, refresh, REFRESH_PATH, ttl, secure);
        append_cookie(&mut response, &cookie);
    }
    response
}

/// Cookies are `Secure` when the service itself serves TLS.
fn secure(state: &ServiceState) -> bool {
    state.settings.tls.is_some()
}

fn set_cookie(name: &str, value: &str, path: &str, max_age: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

fn append_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
}

/// A device name from a `User-Agent`: "Firefox on Linux", "Chrome on Android", or
/// "web browser" when it says nothing recognisable.
pub fn browser_name(agent: &str) -> String {
    const BROWSERS: [(&str, &str); 7] = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chromium/", "Chromium"),
        ("Chrome/", "Chrome"),
        ("CriOS/", "Chrome"),
        ("Safari/", "Safari"),
    ];
    const SYSTEMS: [(&str, &str); 7] = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ];
    let find = |table: &[(&str, &'static str)]| {
        table
            .iter()
            .find(|(needle, _)| agent.contains(needle))
            .map(|(_, name)| *name)
    };
    match (find(&BROWSERS), find(&SYSTEMS)) {
        (Some(browser), Some(system)) => format!("{browser} on {system}"),
        (Some(browser), None) => browser.to_owned(),
        (None, Some(system)) => format!("web browser on {system}"),
        (None, None) => "web browser".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::browser_name;

    #[test]
    fn browsers_are_named_after_what_they_say_they_are() {
        let chromium = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36";
        assert_eq!(browser_name(chromium), "Chrome on Linux");
        let firefox =
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0";
        assert_eq!(browser_name(firefox), "Firefox on Windows");
        let edge = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0";
        assert_eq!(browser_name(edge), "Edge on Windows");
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        assert_eq!(browser_name(iphone), "Safari on iOS");
        assert_eq!(browser_name("curl/8.0"), "web browser");
        assert_eq!(browser_name(""), "web browser");
    }
}
