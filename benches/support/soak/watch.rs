//! A device of each user held by the runner itself: signed in with the password grant
//! (or, for some users, a web session as the web app's page is; `web.rs`), subscribed
//! to the app, and following the push channel frame by frame, the way an
//! agent does (from its cursor, acking what it took, reconnecting after a node's kill).
//! Because the runner sees every frame, it checks what the agents' stores cannot show:
//! each change arrives once and in `seq` order (every `seq` after the last one taken,
//! across reconnections), and what it holds at the end is compared with the ledger like
//! any device's. A web session's user also reads, dismisses and deletes from it when
//! the schedule says, as the page's buttons do.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;

use super::check::{Held, Violations, pick_plain, state_of};
use super::web::{self, Action, Tokens, sign_in};

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
    /// A web session, as the web app's page is.
    pub web: bool,
    pub seen: Arc<Mutex<Seen>>,
    http: reqwest::Client,
    session: Arc<Mutex<Session>>,
}

/// Where a watcher is and how it proves who it is; shared by its channel and the
/// user's actions in it.
struct Session {
    urls: Vec<String>,
    /// The node it talks to (an index into `urls`).
    node: usize,
    tokens: Tokens,
}

impl Session {
    /// The node it talks to now, and its tokens.
    fn current(&self) -> (String, Tokens) {
        (self.urls[self.node].clone(), self.tokens.clone())
    }
}

/// Signs a device of `user` in to `urls[first]` (a web session when `web`) and
/// subscribes it to `host`; then follows its channel until `stop`, adding what is wrong
/// to `found`, moving to the next node whenever one cannot be reached.
pub async fn start(
    urls: &[String],
    first: usize,
    (user, web): (&str, bool),
    host: &str,
    found: Arc<Mutex<Violations>>,
    stop: CancellationToken,
) -> Result<Watcher, String> {
    let http = reqwest::Client::new();
    let url = &urls[first % urls.len()];
    let tokens = sign_in(&http, url, user, web).await?;
    let request = http
        .post(format!("{url}/v1/me/subscriptions"))
        .json(&json!({"targetHostName": host}));
    let answer = tokens
        .authorize(request, url)
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
    let session = Arc::new(Mutex::new(Session {
        urls: urls.to_vec(),
        node: first % urls.len(),
        tokens,
    }));
    let follow = Follow {
        http: http.clone(),
        session: session.clone(),
        seen: seen.clone(),
        found,
        user: user.to_owned(),
    };
    tokio::spawn(follow.run(stop));
    Ok(Watcher {
        user: user.to_owned(),
        web,
        seen,
        http,
        session,
    })
}

impl Watcher {
    /// Does `action` to the `s` notification of those it holds that `pick` picks,
    /// through the device API, as the web app's buttons do; what it did to which
    /// (`appNotificationId`) and the answer's status (`None`: no answer), or `None`
    /// when it holds none.
    pub async fn act(&self, pick: u64, action: Action) -> Option<(String, Option<StatusCode>)> {
        let (app_id, id) = pick_plain(&self.seen.lock().unwrap().held, pick)?;
        let (url, tokens) = self.session.lock().unwrap().current();
        let status = web::act(&self.http, &url, &tokens, &id, action).await;
        Some((app_id, status))
    }
}

/// One watcher's following of its channel.
struct Follow {
    http: reqwest::Client,
    session: Arc<Mutex<Session>>,
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
            let at = self.session.lock().unwrap().tokens.at;
            if at.elapsed() > REFRESH_AFTER {
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
        let (url, tokens) = self.session.lock().unwrap().current();
        if let Ok(tokens) = web::refresh(&self.http, &url, &tokens).await {
            self.session.lock().unwrap().tokens = tokens;
        }
    }

    /// One connection from `cursor`, until it ends; whether it took any frame.
    async fn connection(&mut self, cursor: u64) -> bool {
        let (url, tokens) = self.session.lock().unwrap().current();
        let ws = url.replacen("http", "ws", 1);
        let Ok(mut request) = format!("{ws}/v1/me/channel?cursor={cursor}").into_client_request()
        else {
            return false;
        };
        for (name, value) in tokens.headers(&url) {
            if let Ok(value) = value.parse() {
                request.headers_mut().insert(name, value);
            }
        }
        let Ok((mut socket, _)) = tokio_tungstenite::connect_async(request).await else {
            // Down, or refusing (503 without its database): the next node.
            let mut session = self.session.lock().unwrap();
            session.node = (session.node + 1) % session.urls.len();
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
            seen.held.insert(app_id, (text("id"), state_of(n)));
        }
    }
}
