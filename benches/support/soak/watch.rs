//! A device of each user held by the runner itself: signed in with the password grant,
//! subscribed to the app, and following the push channel frame by frame, the way an
//! agent does (from its cursor, acking what it took, reconnecting after a node's kill).
//! Because the runner sees every frame, it checks what the agents' stores cannot show:
//! each change arrives once and in `seq` order (every `seq` after the last one taken,
//! across reconnections), and what it holds at the end is compared with the ledger like
//! any device's.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;

use super::check::{Held, Violations};

/// The violation a change taken twice, or out of order, is.
const ORDER: &str = "a change arrived twice or out of seq order on a channel";

/// A token older than this is refreshed before the next connection (they last an hour).
const REFRESH_AFTER: Duration = Duration::from_secs(30 * 60);

/// How long to wait before connecting again, at most.
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Acks are sent at most this often.
const ACK_EVERY: Duration = Duration::from_millis(250);

/// What a watcher saw: what it holds, the last `seq` it took, frames and connections.
#[derive(Default)]
pub struct Seen {
    pub held: Held,
    pub last: u64,
    pub frames: u64,
    pub connections: u64,
}

/// A runner-held device of `user`.
pub struct Watcher {
    pub user: String,
    pub seen: Arc<Mutex<Seen>>,
}

/// The device's tokens.
struct Tokens {
    access: String,
    refresh: String,
    at: Instant,
}

/// Signs a device of `user` in to `urls[first]` and subscribes it to `host`; then
/// follows its channel until `stop`, adding what is wrong to `found`, moving to the next
/// node whenever one cannot be reached.
pub async fn start(
    urls: &[String],
    first: usize,
    user: &str,
    host: &str,
    found: Arc<Mutex<Violations>>,
    stop: CancellationToken,
) -> Result<Watcher, String> {
    let http = reqwest::Client::new();
    let url = &urls[first % urls.len()];
    let tokens = sign_in(&http, url, user).await?;
    let answer = http
        .post(format!("{url}/v1/me/subscriptions"))
        .bearer_auth(&tokens.access)
        .json(&json!({"targetHostName": host}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !answer.status().is_success() {
        return Err(format!(
            "the watcher of {user} could not subscribe: {}",
            answer.status()
        ));
    }
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let follow = Follow {
        http,
        urls: urls.to_vec(),
        node: first % urls.len(),
        tokens,
        seen: seen.clone(),
        found,
        user: user.to_owned(),
    };
    tokio::spawn(follow.run(stop));
    Ok(Watcher {
        user: user.to_owned(),
        seen,
    })
}

async fn sign_in(http: &reqwest::Client, url: &str, user: &str) -> Result<Tokens, String> {
    let password = format!("{user}-pw");
    let name = format!("{user}-watcher");
    let form = [
        ("grant_type", "password"),
        ("username", user),
        ("password", password.as_str()),
        ("device_name", name.as_str()),
        ("platform", "linux"),
    ];
    grant(http, url, &form).await
}

/// A token grant; the tokens it answered.
async fn grant(http: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> Result<Tokens, String> {
    let answer = http
        .post(format!("{url}/oauth2/v2.0/token"))
        .form(form)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = answer.status();
    let body: Value = answer.json().await.map_err(|e| e.to_string())?;
    let text = |key: &str| body[key].as_str().map(str::to_owned);
    match (text("access_token"), text("refresh_token")) {
        (Some(access), Some(refresh)) => Ok(Tokens {
            access,
            refresh,
            at: Instant::now(),
        }),
        _ => Err(format!("token grant {status}: {body}")),
    }
}

/// One watcher's following of its channel.
struct Follow {
    http: reqwest::Client,
    urls: Vec<String>,
    /// The node it talks to (an index into `urls`).
    node: usize,
    tokens: Tokens,
    seen: Arc<Mutex<Seen>>,
    found: Arc<Mutex<Violations>>,
    user: String,
}

impl Follow {
    /// Connects, takes frames until the link ends, and connects again from its cursor,
    /// until `stop`.
    async fn run(mut self, stop: CancellationToken) {
        let mut backoff = Duration::from_millis(50);
        while !stop.is_cancelled() {
            if self.tokens.at.elapsed() > REFRESH_AFTER {
                self.refresh().await;
            }
            let cursor = self.seen.lock().unwrap().last;
            let took_any = tokio::select! {
                () = stop.cancelled() => return,
                took = self.connection(cursor) => took,
            };
            if took_any {
                backoff = Duration::from_millis(50);
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    async fn refresh(&mut self) {
        let refresh = self.tokens.refresh.clone();
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
        ];
        if let Ok(tokens) = grant(&self.http, &self.urls[self.node], &form).await {
            self.tokens = tokens;
        }
    }

    /// One connection from `cursor`, until it ends; whether it took any frame.
    async fn connection(&mut self, cursor: u64) -> bool {
        let ws = self.urls[self.node].replacen("http", "ws", 1);
        let Ok(mut request) = format!("{ws}/v1/me/channel?cursor={cursor}").into_client_request()
        else {
            return false;
        };
        let Ok(bearer) = format!("Bearer {}", self.tokens.access).parse() else {
            return false;
        };
        request.headers_mut().insert("Authorization", bearer);
        let Ok((mut socket, _)) = tokio_tungstenite::connect_async(request).await else {
            // Down, or refusing (503 without its database): the next node.
            self.node = (self.node + 1) % self.urls.len();
            return false;
        };
        self.seen.lock().unwrap().connections += 1;
        let mut took = false;
        let mut acked = cursor;
        let mut last_ack = Instant::now();
        while let Some(Ok(message)) = socket.next().await {
            let Message::Text(text) = message else {
                continue;
            };
            let Ok(frame) = serde_json::from_str::<Value>(text.as_str()) else {
                continue;
            };
            if frame["type"] == "change" {
                took = true;
                self.take(&frame);
            }
            let last = self.seen.lock().unwrap().last;
            if last > acked && last_ack.elapsed() >= ACK_EVERY {
                let ack = json!({"type": "ack", "seq": last}).to_string();
                if socket.send(Message::text(ack)).await.is_err() {
                    break;
                }
                (acked, last_ack) = (last, Instant::now());
            }
        }
        took
    }

    /// Takes one `change` frame: its `seq` must come after the last one taken.
    fn take(&self, frame: &Value) {
        let seq = frame["seq"].as_u64().unwrap_or(0);
        let n = &frame["notification"];
        let mut seen = self.seen.lock().unwrap();
        seen.frames += 1;
        if seq <= seen.last {
            let (user, last) = (&self.user, seen.last);
            let id = n["id"].as_str().unwrap_or_default().to_owned();
            self.found.lock().unwrap().add(ORDER, || {
                format!("seq {seq} ({id}) after seq {last} on the watcher of {user}")
            });
            return;
        }
        seen.last = seq;
        let text = |key: &str| n[key].as_str().unwrap_or_default().to_owned();
        let app_id = text("appNotificationId");
        if n["status"] == "deleted" {
            seen.held.remove(&app_id);
        } else {
            seen.held.insert(app_id, (text("id"), text("readState")));
        }
    }
}
