//! The service's HTTP surface: the router, plus `/healthz` and the channel upgrade.
//!
//! Every error, including unknown paths and methods, is a Graph error body.

pub mod access;
pub mod body;
pub mod error;
pub mod graph;
pub mod host;
pub mod me;
pub mod mine;
pub mod oauth;
pub mod session;
pub mod web;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, RawQuery, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

use crate::protocol::Seq;
use crate::protocol::frames::MAX_CLIENT_FRAME_BYTES;

use super::State as AppState;
use super::channel;
use access::{bearer, device, device_token};
use error::ApiError;

/// Bytes read from a channel's socket at a time: what devices send is small (an ack is
/// about 30 bytes, an update under 200), and every idle channel holds this buffer. A
/// larger frame is read in several reads, into a buffer grown to the frame's size.
const CHANNEL_READ_BUFFER: usize = 128;

/// Bytes of frames a channel gathers before writing them to its socket (it flushes
/// after each group of live changes anyway): several queued changes go out in one
/// write. An idle channel's buffer stays empty, so it costs nothing there.
const CHANNEL_WRITE_BUFFER: usize = 4096;

/// The router of every route.
pub fn router(state: AppState) -> Router {
    let mut app = Router::new()
        .route("/healthz", get(healthz))
        .route("/oauth2/v2.0/token", post(oauth::token))
        .route(
            "/v1/me/subscriptions",
            post(me::subscribe).get(mine::subscriptions),
        )
        .route(
            "/v1/me/subscriptions/{id}",
            axum::routing::delete(mine::unsubscribe),
        )
        .route("/v1/me/devices", get(mine::devices))
        .route("/v1/me/devices/{id}", axum::routing::delete(mine::revoke))
        .route("/v1/me/device", axum::routing::delete(me::sign_out))
        .route("/v1/me/notifications", get(me::feed).post(me::note))
        .route(
            "/v1/me/notifications/{id}",
            axum::routing::patch(me::patch).delete(me::delete),
        )
        .route("/v1/me/channel", get(channel_upgrade))
        .merge(web_app(&state));
    if state.settings.metrics_listen.is_none() {
        app = app.route("/metrics", get(super::metrics::serve_main));
    }
    for version in ["/beta", "/v1.0"] {
        app = app
            .route(
                &format!("{version}/me/notifications"),
                post(graph::post).delete(graph::delete_group),
            )
            .route(
                &format!("{version}/me/notifications/{{id}}"),
                get(graph::get).delete(graph::delete),
            )
            .route(
                &format!("{version}/users/{{user}}/notifications"),
                post(graph::post_for_user).delete(graph::delete_group_for_user),
            )
            .route(
                &format!("{version}/users/{{user}}/notifications/{{id}}"),
                get(graph::get_for_user).delete(graph::delete_for_user),
            );
    }
    app.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        super::metrics::count_requests,
    ))
    .layer(axum::middleware::from_fn(refuse_nul_in_uri))
    .fallback(|| async { ApiError::not_found("no such endpoint") })
    .method_not_allowed_fallback(|| async {
        ApiError::new(
            crate::protocol::ErrorCode::MethodNotAllowed,
            "method not allowed on this endpoint; the Allow header lists the methods it takes",
        )
    })
    .with_state(state)
}

/// The web app's routes (its files and its session), behind the `Host` check.
fn web_app(state: &AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/web/session",
            get(session::current)
                .post(session::open)
                .delete(session::close),
        )
        .route("/web/session/refresh", post(session::refresh))
        .merge(web::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            host::check,
        ))
}

/// Answers `400` to a path or query that holds a percent-encoded NUL (ids, group
/// names, tokens in the query), before any route reads it.
async fn refuse_nul_in_uri(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let uri = request.uri();
    let checked = body::refuse_encoded_nul("path", uri.path().as_bytes()).and_then(|()| {
        body::refuse_encoded_nul("query string", uri.query().unwrap_or("").as_bytes())
    });
    match checked {
        Ok(()) => next.run(request).await,
        Err(refused) => axum::response::IntoResponse::into_response(refused),
    }
}

/// The router of a separate `metrics_listen` address: `/metrics` only.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(super::metrics::serve))
        .with_state(state)
}

/// `GET /healthz`: 200 while the service takes writes; 503 (507 for a full disk) with
/// the reason while the store is failed or the service is shutting down.
async fn healthz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    if state.shutdown.is_cancelled() {
        return Err(ApiError::new(
            crate::protocol::ErrorCode::ServiceUnavailable,
            "shutting down",
        ));
    }
    if let Some(failure) = state.store.failure() {
        let mut error = ApiError::store_failed(&failure);
        error.code = crate::protocol::ErrorCode::ServiceUnavailable;
        return Err(error);
    }
    Ok("ok\n")
}

#[derive(Deserialize)]
struct ChannelQuery {
    cursor: Option<u64>,
    access_token: Option<String>,
}

/// `GET /v1/me/channel?cursor=N`: authenticates the device, then upgrades.
async fn channel_upgrade(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    upgrade: MaybeUpgrade,
) -> Result<Response, ApiError> {
    let query: ChannelQuery = body::query(query.as_deref())?;
    let token = match query.access_token.as_deref() {
        Some(token) if bearer(&headers).is_none() => Some(token),
        _ => device_token(&headers, &axum::http::Method::GET)?,
    };
    let device = device(&state, token).await?;
    let upgrade = upgrade.0.ok_or_else(|| {
        ApiError::bad_request(
            "this endpoint is a WebSocket; connect with an Upgrade: websocket request",
        )
    })?;
    if state.shutdown.is_cancelled() {
        return Err(ApiError::new(
            crate::protocol::ErrorCode::ServiceUnavailable,
            "shutting down",
        ));
    }
    if state.hub.channel_count() >= state.settings.max_channels {
        return Err(ApiError::new(
            crate::protocol::ErrorCode::ServiceUnavailable,
            "the service holds as many channels as it may; try again later",
        )
        .retry_after(std::time::Duration::from_secs(30)));
    }
    let cursor = Seq(query.cursor.unwrap_or(0));
    let tasks = state.tasks.clone();
    // Small buffers: an idle channel should cost a few KiB, not tungstenite's 128 KiB
    // read buffer (frames from devices are small: acks and updates).
    Ok(upgrade
        .max_message_size(MAX_CLIENT_FRAME_BYTES)
        .max_frame_size(MAX_CLIENT_FRAME_BYTES)
        .read_buffer_size(CHANNEL_READ_BUFFER)
        .write_buffer_size(CHANNEL_WRITE_BUFFER)
        .on_upgrade(move |socket| {
            tasks.track_future(channel::serve(socket, state, device, cursor))
        }))
}

/// A WebSocket upgrade when the request is one (so a plain GET gets a Graph error).
struct MaybeUpgrade(Option<WebSocketUpgrade>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeUpgrade {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            WebSocketUpgrade::from_request_parts(parts, state)
                .await
                .ok(),
        ))
    }
}
