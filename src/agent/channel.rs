//! The push channel client: the service's address, the access token, one WebSocket
//! session (receive changes in groups, store them, ack), and the reconnect backoff.
//!
//! It knows the wire (`protocol` frames) and the store's `apply`; the agent's loop in
//! `mod.rs` strings sessions together.

use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;
use url::Url;

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::Notify;

use crate::protocol::{ClientFrame, ErrorCode, ErrorDetail, Notification, Seq, ServerFrame};

use super::AgentError;
use super::store::{AgentStore, Applied, LocalChange};

/// Changes stored (and acked) together at most.
const MAX_GROUP: usize = 256;
/// No frame (not even a ping) for this long means the link is dead (the service
/// pings every 30 s).
pub const DEAD_LINK: Duration = Duration::from_secs(75);

/// The service the agent talks to, checked once.
#[derive(Debug, Clone)]
pub struct Endpoint {
    base: Url,
}

impl Endpoint {
    /// Parses the service URL. Plain `http://` is accepted for loopback hosts only.
    pub fn parse(text: &str) -> Result<Self, AgentError> {
        let mut base = Url::parse(text).map_err(|e| {
            AgentError::Config(format!("the service URL {text:?} is not a URL: {e}"))
        })?;
        // The base is kept as http(s); the channel URL is derived from it.
        let http_scheme = match base.scheme() {
            "ws" => Some("http"),
            "wss" => Some("https"),
            _ => None,
        };
        if let Some(scheme) = http_scheme {
            let _ = base.set_scheme(scheme);
        }
        match base.scheme() {
            "http" if is_loopback(&base) => Ok(Self { base }),
            "https" => Ok(Self { base }),
            "http" => Err(AgentError::Config(format!(
                "refusing plain {}:// to {}: notifications and tokens would cross the network unencrypted; use https://",
                base.scheme(),
                base.host_str().unwrap_or("?")
            ))),
            other => Err(AgentError::Config(format!(
                "unsupported URL scheme {other:?}; use https://"
            ))),
        }
    }

    /// The URL of `path` at the service.
    pub fn url(&self, path: &str) -> Result<Url, AgentError> {
        self.join(path)
    }

    fn join(&self, path: &str) -> Result<Url, AgentError> {
        self.base
            .join(path)
            .map_err(|e| AgentError::Config(format!("bad service URL: {e}")))
    }

    /// `POST /oauth2/v2.0/token`.
    pub fn token_url(&self) -> Result<Url, AgentError> {
        self.join("/oauth2/v2.0/token")
    }

    /// `GET /v1/me/channel?cursor=N` as a `ws://` URL.
    pub fn channel_url(&self, cursor: Seq) -> Result<Url, AgentError> {
        let mut url = self.join(&format!("/v1/me/channel?cursor={cursor}"))?;
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        url.set_scheme(scheme)
            .map_err(|()| AgentError::Config("cannot make a WebSocket URL".to_owned()))?;
        Ok(url)
    }
}

/// An error with its causes ("error sending request: ...: invalid peer certificate").
pub fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Renews the access token with the device's refresh token.
pub async fn access_token(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    refresh_token: &str,
) -> Result<String, AgentError> {
    let response = http
        .post(endpoint.token_url()?)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .send()
        .await
        .map_err(|e| AgentError::Network(format!("reaching the service: {}", describe(&e))))?;
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Err(AgentError::SignedOut);
    }
    let body: serde_json::Value = response
        .json()
        .await
        .map_err(|e| AgentError::Network(format!("reading the token answer: {e}")))?;
    if !status.is_success() {
        return Err(AgentError::Network(format!(
            "token endpoint answered {status}: {body}"
        )));
    }
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| AgentError::Network("the token answer has no access_token".to_owned()))
}

/// Signs a device in with the password grant; returns the token answer.
pub async fn sign_in(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    form: &[(&str, &str)],
) -> Result<serde_json::Value, AgentError> {
    let response = http
        .post(endpoint.token_url()?)
        .form(form)
        .send()
        .await
        .map_err(|e| AgentError::Network(format!("reaching the service: {}", describe(&e))))?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .map_err(|e| AgentError::Network(format!("reading the sign-in answer: {e}")))?;
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Err(AgentError::Config(
            "the service refused the user name or password".to_owned(),
        ));
    }
    if !status.is_success() {
        let message = body["error"]["message"]
            .as_str()
            .unwrap_or("no reason given");
        return Err(AgentError::Config(format!(
            "sign-in failed ({status}): {message}"
        )));
    }
    Ok(body)
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
    on_applied: &(dyn Fn(&[Applied]) + Sync),
) -> Result<SessionEnd, AgentError> {
    let cursor = store.cursor()?;
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
    let handshake =
        tokio_tungstenite::connect_async_tls_with_config(request, None, true, Some(connector));
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
            group = next_group(&mut socket, signals.dead_link) => group,
        };
        let Some(group) = group else {
            return Ok(SessionEnd::Lost { healthy });
        };
        if !group.changes.is_empty() {
            let (applied, cursor) = store.apply(group.changes).await?;
            on_applied(&applied);
            ack(&mut socket, cursor).await?;
        }
        for (request_id, ok, error) in group.results {
            settle(store, &mut sent, &request_id, ok, error.as_ref())?;
        }
        if group.synced && !healthy {
            healthy = true;
            // An ack lost with the previous connection would leave the service behind
            // when the backlog is empty: confirm the cursor once per connection.
            ack(&mut socket, store.cursor()?).await?;
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

/// Handles the service's answer to an outbox change: applied, or refused for good
/// (the notification is gone, or the change is invalid), drops it; a transient
/// failure leaves it for the next connection.
fn settle(
    store: &AgentStore,
    sent: &mut HashSet<String>,
    request_id: &str,
    ok: bool,
    error: Option<&ErrorDetail>,
) -> Result<(), AgentError> {
    tracing::debug!(request_id, ok, "outbox answer");
    let permanent =
        error.is_some_and(|e| matches!(e.code, ErrorCode::NotFound | ErrorCode::InvalidRequest));
    if ok || permanent {
        if !ok {
            tracing::warn!(
                request_id,
                ?error,
                "the service refused a local change; dropped"
            );
        }
        store.confirm(request_id)?;
    }
    sent.remove(request_id);
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
    take(&mut group, first?.ok()?)?;
    while group.changes.len() < MAX_GROUP {
        match socket.next().now_or_never() {
            Some(Some(Ok(message))) => take(&mut group, message)?,
            Some(_) => {
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

/// Adds one message to the group; `None` when it closes the channel.
fn take(group: &mut Group, message: Message) -> Option<()> {
    match message {
        Message::Text(text) => match serde_json::from_str::<ServerFrame>(text.as_str()) {
            Ok(ServerFrame::Change { seq, notification }) => {
                group.changes.push((seq, notification));
            }
            Ok(ServerFrame::Synced { .. }) => group.synced = true,
            Ok(ServerFrame::Result {
                request_id,
                ok,
                error,
            }) => group.results.push((request_id, ok, error)),
            Err(e) => tracing::warn!(error = %e, "ignoring a frame the agent does not understand"),
        },
        Message::Close(frame) => {
            tracing::info!(?frame, "the service closed the channel");
            return None;
        }
        _ => {}
    }
    Some(())
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

/// Reconnect delays: 250 ms doubling to 60 s, each drawn at random from the upper half
/// (jitter, so many agents do not reconnect in step), reset after a healthy session.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(250);
    const CAP: Duration = Duration::from_secs(60);

    /// A fresh backoff.
    pub fn new() -> Self {
        Self { next: Self::FIRST }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.next;
        self.next = (self.next * 2).min(Self::CAP);
        ceiling.mul_f64(rand::random_range(0.5..=1.0))
    }

    /// After a healthy session, start again from the shortest delay.
    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap_and_resets() {
        let mut backoff = Backoff::new();
        let first = backoff.next_delay();
        assert!(first >= Duration::from_millis(125) && first <= Duration::from_millis(250));
        for _ in 0..20 {
            assert!(backoff.next_delay() <= Duration::from_secs(60));
        }
        assert!(
            backoff.next_delay() >= Duration::from_secs(30),
            "capped at 60 s, jitter in the upper half"
        );
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(250));
    }

    #[test]
    fn plain_http_is_for_loopback_only() {
        assert!(Endpoint::parse("http://127.0.0.1:7319").is_ok());
        assert!(Endpoint::parse("http://localhost:7319").is_ok());
        assert!(Endpoint::parse("http://[::1]:7319").is_ok());
        let err = Endpoint::parse("http://notify.example.com")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unencrypted"), "{err}");
        let url = Endpoint::parse("http://127.0.0.1:7319")
            .unwrap()
            .channel_url(Seq(5))
            .unwrap();
        assert_eq!(url.as_str(), "ws://127.0.0.1:7319/v1/me/channel?cursor=5");
    }
}
