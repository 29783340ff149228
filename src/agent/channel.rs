//! The push channel client: one WebSocket session (receive changes in groups, store
//! them, present them, ack; send the outbox and settle its answers).
//!
//! It knows the wire (`protocol` frames) and the store's `apply`; the agent's loop in
//! `mod.rs` strings sessions together.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;

use crate::protocol::validate::{MAX_EXPIRY, MAX_ID_CHARS, check_content};
use crate::protocol::{
    ClientFrame, ErrorDetail, Notification, Seq, ServerFrame, Timestamp, ValidationError,
};

use super::endpoint::{Endpoint, describe};
use super::link::Link;
use super::open::{self, Opening};
use super::store::{AgentStore, Applied, LocalChange};
use super::{AgentError, answers};

/// Changes stored (and acked) together at most.
const MAX_GROUP: usize = 256;
/// The largest frame or message taken from the service. A change carries at most what
/// an app may post (a 64 KiB body, which JSON escaping can grow about sixfold); a
/// hostile service must not make the agent buffer the WebSocket library's 16 MiB.
pub const MAX_SERVER_FRAME_BYTES: usize = 512 * 1024;
/// No frame (not even a ping) for this long means the link is dead (the service
/// pings every 30 s).
pub const DEAD_LINK: Duration = Duration::from_secs(75);

/// What a session hands to the agent's loop as it goes.
#[derive(Debug, Clone, Copy)]
pub enum Delivery<'a> {
    /// Changes replayed from before this connection (stored, not yet presented as live).
    Backlog(&'a [Applied]),
    /// The backlog is over: from now on changes are live.
    Synced,
    /// Live changes.
    Live(&'a [Applied]),
}

/// How a session ended without an error.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionEnd {
    /// The agent is shutting down.
    Shutdown,
    /// The service closed the channel (or the link died); reconnect.
    Lost {
        /// Whether the session got as far as `synced` (resets the backoff).
        healthy: bool,
    },
    /// A replay of the whole feed was asked for: reconnect at once, from `seq` 0.
    Resync,
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What can end or wake a session besides the service.
pub struct Signals<'a> {
    /// No frame (not even a ping) for this long means the link is dead.
    pub dead_link: Duration,
    /// The agent is stopping.
    pub shutdown: &'a CancellationToken,
    /// The outbox has new changes to send.
    pub outbox: &'a Notify,
    /// A replay of the whole feed was asked for (`AgentStore::want_resync`).
    pub resync: &'a Notify,
    /// Where the session reports that it caught up.
    pub link: &'a Link,
    /// Held from storing a group until it is presented (see `AgentHandle`).
    pub telling: &'a tokio::sync::Mutex<()>,
}

/// One connection: replays the backlog and follows live changes, storing each group
/// durably, handing what changed to `on_applied`, then acking it (so once the service
/// has an ack, the agent has stored and presented everything up to it).
pub async fn session(
    store: &AgentStore,
    endpoint: &Endpoint,
    token: &str,
    tls: &Arc<rustls::ClientConfig>,
    signals: &Signals<'_>,
    on_applied: &(dyn Fn(Delivery<'_>) + Sync),
) -> Result<SessionEnd, AgentError> {
    // A replay asked for starts from the feed's start; the stored cursor stays (each
    // change is applied only when newer than what is stored).
    let resync = store.resync()?;
    let cursor = if resync > 0 { Seq(0) } else { store.cursor()? };
    let mut request = endpoint
        .channel_url(cursor)?
        .as_str()
        .into_client_request()
        .map_err(|e| AgentError::Network(e.to_string()))?;
    let bearer = format!("Bearer {token}")
        .parse()
        .map_err(|_| AgentError::Network("the access token is not a valid header".to_owned()))?;
    request.headers_mut().insert("Authorization", bearer);
    let connector = tokio_tungstenite::Connector::Rustls(tls.clone());
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_SERVER_FRAME_BYTES))
        .max_frame_size(Some(MAX_SERVER_FRAME_BYTES));
    let handshake = tokio_tungstenite::connect_async_tls_with_config(
        request,
        Some(config),
        true,
        Some(connector),
    );
    // A black-holed link must not hang the handshake: it gets as long as a silent link.
    let (mut socket, _) = tokio::time::timeout(signals.dead_link, handshake)
        .await
        .map_err(|_| AgentError::Network("opening the channel timed out".to_owned()))?
        .map_err(|e| match e {
            tungstenite::Error::Http(response) if response.status() == 401 => {
                AgentError::TokenRejected
            }
            other => AgentError::Network(format!("opening the channel: {}", describe(&other))),
        })?;
    tracing::info!(%cursor, "channel open");
    let mut healthy = false;
    let mut sent = HashSet::new();
    send_outbox(&mut socket, store, &mut sent).await?;
    loop {
        let group = tokio::select! {
            () = signals.shutdown.cancelled() => {
                let _ = socket.close(None).await;
                return Ok(SessionEnd::Shutdown);
            }
            () = signals.outbox.notified() => {
                send_outbox(&mut socket, store, &mut sent).await?;
                continue;
            }
            () = signals.resync.notified() => {
                let _ = socket.close(None).await;
                return Ok(SessionEnd::Resync);
            }
            group = next_group(&mut socket, signals.dead_link) => group,
        };
        let Some(group) = group else {
            return Ok(SessionEnd::Lost { healthy });
        };
        let mut changes = plausible(group.changes, store.cursor()?);
        open_sealed(&mut changes, store, signals.link)?;
        if !changes.is_empty() {
            let in_order = signals.telling.lock().await;
            let (applied, cursor) = store.apply(changes).await?;
            on_applied(if healthy {
                Delivery::Live(&applied)
            } else {
                Delivery::Backlog(&applied)
            });
            drop(in_order);
            ack(&mut socket, cursor).await?;
            if healthy {
                signals.link.synced();
            }
        }
        for (request_id, ok, error) in group.results {
            answers::settle(store, &mut sent, &request_id, ok, error.as_ref())?;
        }
        if group.synced && !healthy {
            healthy = true;
            // An ack lost with the previous connection would leave the service behind
            // when the backlog is empty: confirm the cursor once per connection.
            ack(&mut socket, store.cursor()?).await?;
            signals.link.synced();
            if resync > 0 {
                store.resynced(resync).await?;
            }
            on_applied(Delivery::Synced);
            tracing::info!("caught up with the service");
        }
    }
}

/// Sends every outbox change not yet sent on this connection.
async fn send_outbox(
    socket: &mut Socket,
    store: &AgentStore,
    sent: &mut HashSet<String>,
) -> Result<(), AgentError> {
    for entry in store.outbox()? {
        if sent.contains(&entry.request_id) {
            continue;
        }
        let frame = match entry.change {
            LocalChange::Update(patch) => ClientFrame::Update {
                request_id: entry.request_id.clone(),
                id: entry.id,
                read_state: patch.read_state,
                user_action_state: patch.user_action_state,
            },
            LocalChange::Delete => ClientFrame::Delete {
                request_id: entry.request_id.clone(),
                id: entry.id,
            },
        };
        send(socket, &frame).await?;
        sent.insert(entry.request_id);
    }
    Ok(())
}

/// Frames received together: the changes to store, whether `synced` came, and the
/// answers to outbox changes.
#[derive(Default)]
struct Group {
    changes: Vec<(Seq, Notification)>,
    synced: bool,
    results: Vec<(String, bool, Option<ErrorDetail>)>,
}

/// Waits for the next frame, then takes every frame already received (up to
/// [`MAX_GROUP`] changes). `None` when the channel is closed or dead.
async fn next_group(socket: &mut Socket, dead_link: Duration) -> Option<Group> {
    let mut group = Group::default();
    let Ok(first) = tokio::time::timeout(dead_link, socket.next()).await else {
        tracing::warn!(
            ?dead_link,
            "no frame from the service for too long; the link is dead"
        );
        return None;
    };
    take(&mut group, received(first)?)?;
    while group.changes.len() < MAX_GROUP {
        match socket.next().now_or_never() {
            Some(Some(Ok(message))) => take(&mut group, message)?,
            Some(ended) => {
                let _ = received(ended);
                return if group.changes.is_empty() {
                    None
                } else {
                    Some(group)
                };
            }
            None => break,
        }
    }
    Some(group)
}

/// The message, or `None` with the reason the link dropped logged.
fn received(next: Option<Result<Message, tungstenite::Error>>) -> Option<Message> {
    match next {
        Some(Ok(message)) => Some(message),
        Some(Err(e)) => {
            tracing::info!(reason = %describe(&e), "the channel dropped");
            None
        }
        None => {
            tracing::info!("the service ended the connection without a close frame");
            None
        }
    }
}

/// Adds one message to the group; `None` when it closes the channel. A change that
/// breaks the limits an app is held to is dropped with a warning (a hostile or broken
/// service must not fill the device's disk or screen).
fn take(group: &mut Group, message: Message) -> Option<()> {
    match message {
        Message::Text(text) => match serde_json::from_str::<ServerFrame>(text.as_str()) {
            Ok(ServerFrame::Change {
                seq,
                mut notification,
            }) => match check_notification(&mut notification) {
                Ok(()) => group.changes.push((seq, notification)),
                Err(e) => {
                    tracing::warn!(%seq, error = %e, "dropped a change that breaks the service's own limits");
                }
            },
            Ok(ServerFrame::Synced { .. }) => group.synced = true,
            Ok(ServerFrame::Result {
                request_id,
                ok,
                error,
            }) => group.results.push((request_id, ok, error)),
            Err(e) => tracing::warn!(error = %e, "ignoring a frame the agent does not understand"),
        },
        Message::Close(frame) => {
            let (code, reason) = frame.map_or((None, String::new()), |f| {
                (Some(u16::from(f.code)), f.reason.to_string())
            });
            tracing::info!(?code, %reason, "the service closed the channel");
            return None;
        }
        _ => {}
    }
    Some(())
}

/// The limits an app's post is held to, applied to a received notification; an expiry
/// later than the service may set (30 days from now) is brought back to it.
fn check_notification(notification: &mut Notification) -> Result<(), ValidationError> {
    let id = notification.id.as_str();
    if id.is_empty() || id.len() > MAX_ID_CHARS || id.chars().any(char::is_control) {
        return Err(ValidationError::new("id", "is not a notification id"));
    }
    check_content(&notification.content)?;
    let latest = Timestamp::now().plus(MAX_EXPIRY);
    let expiry = &mut notification.content.expiration_date_time;
    *expiry = (*expiry).min(latest);
    Ok(())
}

/// The largest step a change's `seq` may take past the one before it (2^40). A user's
/// feed moves by one per change: no service makes a trillion changes for one user
/// between two that a device receives. A larger step is a hostile or broken service
/// moving the device's cursor towards the end of time, after which it would never
/// receive anything again.
pub const MAX_SEQ_STEP: u64 = 1 << 40;

/// The changes whose `seq` moves on from `cursor` (and from each other) by at most
/// [`MAX_SEQ_STEP`]; the others are dropped with a warning. (A `seq` at or below the
/// cursor is kept: the store ignores what it already holds.)
fn plausible(changes: Vec<(Seq, Notification)>, cursor: Seq) -> Vec<(Seq, Notification)> {
    let mut last = cursor;
    changes
        .into_iter()
        .filter(|(seq, _)| {
            if seq.0.saturating_sub(last.0) > MAX_SEQ_STEP {
                tracing::warn!(%seq, cursor = %last, "dropped a change whose seq jumps too far ahead");
                return false;
            }
            last = last.max(*seq);
            true
        })
        .collect()
}

/// Opens each change's encrypted content for this device, in place (`open.rs`).
fn open_sealed(
    changes: &mut [(Seq, Notification)],
    store: &AgentStore,
    link: &Link,
) -> Result<(), AgentError> {
    if !changes.iter().any(|(_, n)| n.content.payload.is_sealed()) {
        return Ok(());
    }
    let keyring = store.keyring()?;
    for (seq, notification) in changes {
        if let Opening::Failed(why) = open::open(notification, &keyring) {
            tracing::warn!(%seq, id = %notification.id, %why, "an encrypted notification for this device could not be opened; it is kept but not shown");
            link.unopened();
        }
    }
    Ok(())
}

async fn ack(socket: &mut Socket, seq: Seq) -> Result<(), AgentError> {
    send(socket, &ClientFrame::Ack { seq }).await
}

async fn send(socket: &mut Socket, frame: &ClientFrame) -> Result<(), AgentError> {
    let text = serde_json::to_string(frame).map_err(|e| AgentError::Network(e.to_string()))?;
    socket
        .send(Message::Text(text.into()))
        .await
        .map_err(|e| AgentError::Network(format!("sending to the service: {e}")))
}
