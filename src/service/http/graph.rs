//! The Graph-compatible app routes: post, get and delete notifications for the user a
//! UNSID names, under `/beta` and `/v1.0`, as `/me/...` or `/users/{id}/...`.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tracing::{Instrument, debug_span};

use crate::protocol::{Notification, NotificationId, NotificationInput};
use crate::service::State as AppState;
use crate::service::admission::Sender;
use crate::service::stage;
use crate::service::store::Stored;

use super::access::{AppCall, app_call, check_sealed_entries};
use super::body::{self, Media};
use super::error::ApiError;

/// `POST .../me/notifications`.
pub async fn post(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let call = authorized(&state, &headers).await?;
    create(&state, &call, &uri, &headers, body).await
}

/// `POST .../users/{id}/notifications`: `{id}` must be `me` or the UNSID's user.
pub async fn post_for_user(
    State(state): State<AppState>,
    Path(user): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let call = authorized(&state, &headers).await?;
    check_user(&call, &user)?;
    create(&state, &call, &uri, &headers, body).await
}

/// The app's credentials checked, as the `auth` stage of a post.
async fn authorized(state: &AppState, headers: &HeaderMap) -> Result<AppCall, ApiError> {
    app_call(state, headers)
        .instrument(debug_span!(target: stage::TARGET, "auth"))
        .await
}

async fn create(
    state: &AppState,
    call: &AppCall,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let now = state.now();
    let content = async {
        let bytes = body::read(headers, body, Media::Json).await?;
        Ok::<_, ApiError>(NotificationInput::from_json(&bytes)?.validate(now)?)
    }
    .instrument(debug_span!(target: stage::TARGET, "body"))
    .await?;
    if content.target_host_name != call.app.host {
        return Err(ApiError::forbidden(format!(
            "targetHostName {:?} is not this app's host {:?}",
            content.target_host_name, call.app.host
        )));
    }
    let user = &call.subscription.user;
    check_sealed_entries(state, user, &call.app.host, &content.payload).await?;
    let sender = Sender::App(call.app.client_id.clone());
    state
        .admission
        .admit(state.store.as_ref(), &sender, user, content.size())
        .instrument(debug_span!(target: stage::TARGET, "admit"))
        .await?;
    let stored = state
        .store
        .upsert(user, content, now)
        .instrument(debug_span!(target: stage::TARGET, "store"))
        .await?;
    state.metrics.accepted();
    debug_span!(target: stage::TARGET, "answer").in_scope(|| created(uri, &stored))
}

/// The `201` answer to a post: the notification, and its address in `Location`.
fn created(uri: &Uri, stored: &Stored) -> Result<Response, ApiError> {
    let location = format!(
        "{}/{}",
        uri.path().trim_end_matches('/'),
        stored.notification.id
    );
    let size = stored.notification.content.size();
    let json = crate::protocol::notification_json(&stored.notification, size)
        .map_err(|e| ApiError::internal(&e))?;
    let mut response = (StatusCode::CREATED, Body::from(json)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(value) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, value);
    }
    Ok(response)
}

/// `GET .../me/notifications/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Notification>, ApiError> {
    let call = app_call(&state, &headers).await?;
    find(&state, &call, &NotificationId::new(id))
        .await
        .map(Json)
}

/// `GET .../users/{user}/notifications/{id}`.
pub async fn get_for_user(
    State(state): State<AppState>,
    Path((user, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Notification>, ApiError> {
    let call = app_call(&state, &headers).await?;
    check_user(&call, &user)?;
    find(&state, &call, &NotificationId::new(id))
        .await
        .map(Json)
}

/// `DELETE .../me/notifications/{id}`.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let call = app_call(&state, &headers).await?;
    remove(&state, &call, &NotificationId::new(id)).await
}

/// `DELETE .../users/{user}/notifications/{id}`.
pub async fn delete_for_user(
    State(state): State<AppState>,
    Path((user, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let call = app_call(&state, &headers).await?;
    check_user(&call, &user)?;
    remove(&state, &call, &NotificationId::new(id)).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupQuery {
    group_name: Option<String>,
}

/// `DELETE .../me/notifications?groupName=G`.
pub async fn delete_group(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let call = app_call(&state, &headers).await?;
    remove_group(&state, &call, query.as_deref()).await
}

/// `DELETE .../users/{user}/notifications?groupName=G`.
pub async fn delete_group_for_user(
    State(state): State<AppState>,
    Path(user): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let call = app_call(&state, &headers).await?;
    check_user(&call, &user)?;
    remove_group(&state, &call, query.as_deref()).await
}

async fn remove_group(
    state: &AppState,
    call: &AppCall,
    query: Option<&str>,
) -> Result<StatusCode, ApiError> {
    let GroupQuery { group_name } = body::query(query)?;
    let group = group_name
        .filter(|g| !g.is_empty())
        .ok_or_else(|| ApiError::bad_request("groupName: the query parameter is required"))?;
    let deleted = state
        .store
        .delete_group(&call.subscription.user, &call.app.host, &group, state.now())
        .await?;
    tracing::debug!(deleted, group, "group deleted");
    Ok(StatusCode::NO_CONTENT)
}

fn check_user(call: &AppCall, user: &str) -> Result<(), ApiError> {
    if user == "me" || user == call.subscription.user.as_str() {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "the X-UNS-ID belongs to another user than {user:?}; use /me or that user's id"
        )))
    }
}

fn not_found(id: &NotificationId) -> ApiError {
    ApiError::not_found(format!("no notification {id} for this app and user"))
}

async fn find(
    state: &AppState,
    call: &AppCall,
    id: &NotificationId,
) -> Result<Notification, ApiError> {
    let record = state
        .store
        .get(&call.subscription.user, id, state.now())
        .await?
        .filter(|r| r.content.target_host_name == call.app.host)
        .ok_or_else(|| not_found(id))?;
    Ok(record.to_notification())
}

async fn remove(
    state: &AppState,
    call: &AppCall,
    id: &NotificationId,
) -> Result<StatusCode, ApiError> {
    find(state, call, id).await?;
    state
        .store
        .delete(&call.subscription.user, id, state.now())
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(StatusCode::NO_CONTENT)
}
