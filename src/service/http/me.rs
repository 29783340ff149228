//! The device routes under `/v1/me`: subscriptions (UNSIDs), the feed as JSON, the
//! user's own notes to their devices, and state changes.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::protocol::rest::Subscription;
use crate::protocol::validate::{LOCAL_HOST_NAME, parse_json, validate_host_name};
use crate::protocol::{
    FeedPage, Notification, NotificationId, NotificationInput, Seq, StatePatch, Unsid,
};
use crate::service::State as AppState;
use crate::service::admission::Sender;
use crate::service::auth;
use crate::service::feed;

use super::access::{Caller, check_sealed_entries};
use super::body::{self, Media};
use super::error::ApiError;

/// Largest `top` of a feed page.
pub const MAX_TOP: usize = 1000;

/// Most bytes of notifications (as JSON) one feed page holds: a page ends after the
/// item that reaches it, with `@odata.nextLink`, however large `top` is. Without it a
/// page of 1,000 maximal notifications was 62 MB, held in memory for each slow reader.
pub const MAX_FEED_PAGE_BYTES: usize = 1024 * 1024;

/// Feed pages built at once; more wait their turn.
pub const FEED_READS: usize = 4;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscribeBody {
    target_host_name: String,
}

/// `POST /v1/me/subscriptions`.
pub async fn subscribe(
    State(state): State<AppState>,
    Caller(device): Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Subscription>), ApiError> {
    let bytes = body::read(&headers, body, Media::Json).await?;
    let request: SubscribeBody = parse_json(&bytes)?;
    let host = validate_host_name("targetHostName", &request.target_host_name)?;
    let expires = state.now().plus(state.settings.subscription_ttl);
    let fresh = Unsid::new(auth::random_id()?);
    let sub = state
        .store
        .subscribe(&device.user, &device.id, &host, expires, fresh)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Subscription {
            unsid: sub.unsid,
            target_host_name: sub.host,
            expiration_date_time: sub.expires,
        }),
    ))
}

#[derive(Deserialize)]
struct FeedQuery {
    since: Option<u64>,
    top: Option<usize>,
}

/// `GET /v1/me/notifications?since=&top=`.
pub async fn feed(
    State(state): State<AppState>,
    Caller(device): Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query: FeedQuery = body::query(query.as_deref())?;
    let top = query.top.unwrap_or(100);
    if !(1..=MAX_TOP).contains(&top) {
        return Err(ApiError::bad_request(format!(
            "top: must be 1 to {MAX_TOP}, got {top}"
        )));
    }
    let after = Seq(query.since.unwrap_or(0));
    // Pages are built (and serialised) a few at a time: each may hold a MiB.
    let _turn = state.feed_reads.acquire().await;
    let limit = feed::PageLimit {
        items: top,
        bytes: MAX_FEED_PAGE_BYTES,
    };
    let page = feed::page(
        state.store.as_ref(),
        &device,
        after,
        None,
        limit,
        state.now(),
    )
    .await?;
    state.store.touch_device(&device.id, state.now());
    let next_link = page
        .full
        .then(|| format!("/v1/me/notifications?since={}&top={top}", page.last));
    let body = serde_json::to_vec(&FeedPage {
        value: page.items,
        next_link,
    })
    .map_err(|e| ApiError::internal(&e))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `POST /v1/me/notifications`: a note from the user to all of their own devices.
pub async fn note(
    State(state): State<AppState>,
    Caller(device): Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Notification>), ApiError> {
    let bytes = body::read(&headers, body, Media::Json).await?;
    let now = state.now();
    let content = NotificationInput::from_json(&bytes)?
        .with_default_host(LOCAL_HOST_NAME)
        .validate(now)?;
    if content.target_host_name != LOCAL_HOST_NAME {
        return Err(ApiError::bad_request(format!(
            "targetHostName: a note to your own devices carries {LOCAL_HOST_NAME:?} (or leave it out)"
        )));
    }
    check_sealed_entries(&state, &device.user, LOCAL_HOST_NAME, &content.payload).await?;
    let sender = Sender::User(device.user.clone());
    state
        .admission
        .admit(state.store.as_ref(), &sender, &device.user, content.size())
        .await?;
    let stored = state.store.upsert(&device.user, content, now).await?;
    state.metrics.accepted();
    Ok((StatusCode::CREATED, Json(stored.notification)))
}

/// `PATCH /v1/me/notifications/{id}`.
pub async fn patch(
    State(state): State<AppState>,
    Caller(device): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Notification>, ApiError> {
    let bytes = body::read(&headers, body, Media::Json).await?;
    let patch = StatePatch::from_json(&bytes)?;
    let id = NotificationId::new(id);
    let updated = state
        .store
        .update_state(&device.user, &id, patch, state.now())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no notification {id}")))?;
    Ok(Json(updated.notification))
}

/// `DELETE /v1/me/notifications/{id}`.
pub async fn delete(
    State(state): State<AppState>,
    Caller(device): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = NotificationId::new(id);
    state
        .store
        .delete(&device.user, &id, state.now())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no notification {id}")))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1/me/device`: the device signs itself out (`tidings logout`): it is revoked,
/// its tokens stop working and its channel closes.
pub async fn sign_out(
    State(state): State<AppState>,
    Caller(device): Caller,
) -> Result<StatusCode, ApiError> {
    state.revoke_device(&device.id).await?;
    tracing::info!(device = %device.id, "device signed out");
    Ok(StatusCode::NO_CONTENT)
}
