//! The app backend of a soak: posts at a steady rate (and in bursts) to the users'
//! devices, one in ten replacing an earlier notification of the user in place, one in
//! ten expiring within seconds and some in groups it deletes when the schedule says, and
//! keeps the ledger the checks compare the devices with: each post is named by its
//! `appNotificationId`, and each outcome is recorded (answered `201`, refused, or no
//! answer, which may or may not have been committed).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tidings::protocol::Timestamp;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::web::Action;

/// What became of the posts, per user.
#[derive(Default)]
pub struct Ledger {
    /// `appNotificationId`s answered `201`.
    pub posted: HashMap<String, HashSet<String>>,
    /// Sent without an answer (the node was killed): committed or not.
    pub unanswered: HashMap<String, HashSet<String>>,
    /// Answered with an error: never committed.
    pub refused: HashMap<String, HashSet<String>>,
    /// Marked read on one of the user's devices (the agent took the change, or the
    /// service answered).
    pub read: HashMap<String, HashSet<String>>,
    /// Dismissed on one of the user's devices, the same way.
    pub dismissed: HashMap<String, HashSet<String>>,
    /// Posts sent, by outcome: 201, refused, unanswered.
    pub counts: [u64; 3],
    /// When each expiring post (`x<n>`) expires.
    pub expires: HashMap<String, Timestamp>,
    /// The members of each (user, group) posted (answered or not) since its last delete.
    groups: HashMap<(String, String), Vec<String>>,
    /// Deleted with their group (answered `204`), or by a device: on no device.
    pub gone: HashMap<String, HashSet<String>>,
    /// Group deletes, by outcome: 204, refused, unanswered.
    pub group_deletes: [u64; 3],
}

impl Ledger {
    /// Records a post's outcome.
    fn record(&mut self, user: &str, app_id: String, status: Option<reqwest::StatusCode>) {
        let (book, slot) = match status {
            Some(s) if s == reqwest::StatusCode::CREATED => (&mut self.posted, 0),
            Some(_) => (&mut self.refused, 1),
            None => (&mut self.unanswered, 2),
        };
        book.entry(user.to_owned()).or_default().insert(app_id);
        self.counts[slot] += 1;
    }

    /// Records a group delete's outcome: answered `204`, each member posted before it
    /// is gone; unanswered, each may be; refused, none is.
    fn group_deleted(&mut self, user: &str, group: &str, status: Option<reqwest::StatusCode>) {
        let slot = match status {
            Some(s) if s == reqwest::StatusCode::NO_CONTENT => 0,
            Some(_) => 1,
            None => 2,
        };
        self.group_deletes[slot] += 1;
        if slot == 1 {
            return;
        }
        let key = (user.to_owned(), group.to_owned());
        let members = self.groups.get(&key).cloned().unwrap_or_default();
        let user = user.to_owned();
        for app_id in members {
            let was_posted = self.posted.entry(user.clone()).or_default().remove(&app_id);
            if slot == 0 {
                self.unanswered
                    .entry(user.clone())
                    .or_default()
                    .remove(&app_id);
                self.gone.entry(user.clone()).or_default().insert(app_id);
            } else if was_posted {
                self.unanswered
                    .entry(user.clone())
                    .or_default()
                    .insert(app_id);
            }
        }
        if slot == 0 {
            self.groups.remove(&key);
        }
    }

    /// The notifications the service keeps, as far as the ledger knows: answered
    /// `201` or unanswered, and not deleted since.
    pub fn kept(&self) -> u64 {
        let count = |book: &HashMap<String, HashSet<String>>| -> u64 {
            book.values().map(|s| s.len() as u64).sum()
        };
        count(&self.posted) + count(&self.unanswered)
    }

    /// Records what a device did to `app_id` of `user`: `taken` when the agent took
    /// it or the service answered `2xx`, not when no answer came (then it may or may
    /// not have happened: a delete makes the notification one that may be anywhere).
    pub fn acted(&mut self, user: &str, app_id: &str, action: Action, taken: bool) {
        let user = user.to_owned();
        match (action, taken) {
            (Action::Read, true) => self.read.entry(user).or_default().insert(app_id.to_owned()),
            (Action::Dismiss, true) => self
                .dismissed
                .entry(user)
                .or_default()
                .insert(app_id.to_owned()),
            (Action::Delete, true) => {
                self.posted.entry(user.clone()).or_default().remove(app_id);
                self.unanswered
                    .entry(user.clone())
                    .or_default()
                    .remove(app_id);
                self.gone.entry(user).or_default().insert(app_id.to_owned())
            }
            (Action::Delete, false) => {
                self.posted.entry(user.clone()).or_default().remove(app_id)
                    && self
                        .unanswered
                        .entry(user)
                        .or_default()
                        .insert(app_id.to_owned())
            }
            (Action::Read | Action::Dismiss, false) => false,
        };
    }

    /// Whether `app_id` expires before `at` (so it may be gone, or going, anywhere).
    pub fn expired_by(&self, app_id: &str, at: Timestamp) -> bool {
        self.expires
            .get(app_id)
            .is_some_and(|expires| *expires <= at)
    }
}

/// Where the app posts: the service's nodes, its token, and each user's UNSIDs.
pub struct Target {
    /// Every node; the app moves to the next when one does not answer.
    pub urls: Vec<String>,
    pub client_id: String,
    pub client_secret: String,
    /// (user, UNSID) of every device (a device signed in again gets a new one).
    pub unsids: Mutex<Vec<(String, String)>>,
}

/// The app's access token (client credentials), from the node at `url`.
async fn token(http: &reqwest::Client, target: &Target, url: &str) -> Option<String> {
    let answer = http
        .post(format!("{url}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", target.client_id.as_str()),
            ("client_secret", target.client_secret.as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .ok()?;
    let body: Value = answer.json().await.ok()?;
    body["access_token"].as_str().map(str::to_owned)
}

/// What the schedule asks of the app backend, besides its steady posts.
pub enum Command {
    /// Post this many at once.
    Burst(usize),
    /// Delete group `g<group>` of the user of device `device`.
    DeleteGroup { device: usize, group: u8 },
}

/// The app backend: its client, token, randomness and the ledger it keeps.
struct Poster {
    http: reqwest::Client,
    target: Arc<Target>,
    ledger: Arc<Mutex<Ledger>>,
    rng: StdRng,
    bearer: Option<String>,
    next: u64,
    /// The node it talks to (an index into the target's).
    node: usize,
}

/// Posts `rate` a second, each burst at once and each group delete in turn (one request
/// at a time, so the ledger knows which posts a delete came after), until `stop`.
pub async fn post(
    target: Arc<Target>,
    ledger: Arc<Mutex<Ledger>>,
    seed: u64,
    rate: u32,
    mut commands: mpsc::UnboundedReceiver<Command>,
    stop: CancellationToken,
) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client");
    let mut poster = Poster {
        http,
        target,
        ledger,
        rng: StdRng::seed_from_u64(seed ^ 0x5eed),
        bearer: None,
        next: 0,
        node: 0,
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
    loop {
        let command = tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => Command::Burst(1),
            Some(command) = commands.recv() => command,
        };
        match command {
            Command::Burst(count) => {
                // With no token (the node is down) the rest of the burst is not sent.
                for _ in 0..count {
                    if !poster.post_one().await {
                        break;
                    }
                }
            }
            Command::DeleteGroup { device, group } => poster.delete_group(device, group).await,
        }
    }
}

impl Poster {
    /// The node it talks to.
    fn url(&self) -> &str {
        &self.target.urls[self.node % self.target.urls.len()]
    }

    /// Moves on to the next node (the one it talked to did not answer).
    fn next_node(&mut self) {
        self.node = (self.node + 1) % self.target.urls.len();
    }

    /// The app's token, fetched when it has none (a token is good on every node).
    async fn token(&mut self) -> Option<String> {
        if self.bearer.is_none() {
            self.bearer = token(&self.http, &self.target, self.url()).await;
            if self.bearer.is_none() {
                self.next_node();
            }
        }
        self.bearer.clone()
    }

    /// Sends one request as the app, for the user of `unsid`; its status, or `None` when
    /// there was no answer.
    async fn send(
        &mut self,
        request: reqwest::RequestBuilder,
        unsid: &str,
    ) -> Option<reqwest::StatusCode> {
        let token = self.token().await?;
        let answer = request
            .bearer_auth(token)
            .header("X-UNS-ID", unsid)
            .send()
            .await;
        let status = answer.as_ref().map(reqwest::Response::status).ok();
        if status == Some(reqwest::StatusCode::UNAUTHORIZED) {
            self.bearer = None;
        }
        if status.is_none_or(|s| s == reqwest::StatusCode::SERVICE_UNAVAILABLE) {
            self.next_node();
        }
        status
    }

    /// Posts one notification to a random device's user; false when the app has no
    /// token (nothing was sent).
    async fn post_one(&mut self) -> bool {
        if self.token().await.is_none() {
            return false;
        }
        let (user, unsid) = {
            let unsids = self.target.unsids.lock().expect("the UNSIDs");
            unsids[self.rng.random_range(0..unsids.len())].clone()
        };
        let app_id = pick_app_id(&mut self.rng, &mut self.next);
        let mut body = json!({"targetHostName": "contoso.com", "appNotificationId": app_id,
            "payload": {"visualContent": {"title": format!("soak {app_id}")}}});
        if app_id.starts_with('x') {
            let expires = Timestamp::now().plus(Duration::from_secs(self.rng.random_range(3..=20)));
            body["expirationDateTime"] = expires.to_rfc3339().into();
            self.ledger
                .lock()
                .expect("the ledger")
                .expires
                .insert(app_id.clone(), expires);
        }
        // One plain post in five is in one of the user's three groups.
        let group = (app_id.starts_with('s') && self.rng.random_ratio(1, 5))
            .then(|| format!("g{}", self.rng.random_range(0..3)));
        if let Some(group) = &group {
            body["groupName"] = group.clone().into();
        }
        let request = self
            .http
            .post(format!("{}/beta/me/notifications", self.url()))
            .json(&body);
        let status = self.send(request, &unsid).await;
        let mut ledger = self.ledger.lock().expect("the ledger");
        if let Some(group) = group.filter(|_| status.is_none_or(|s| s.is_success())) {
            ledger
                .groups
                .entry((user.clone(), group))
                .or_default()
                .push(app_id.clone());
        }
        ledger.record(&user, app_id, status);
        true
    }

    /// Deletes a group of device `device`'s user, and moves its members in the ledger:
    /// gone when answered `204`, maybe gone when not answered.
    async fn delete_group(&mut self, device: usize, group: u8) {
        let picked = self
            .target
            .unsids
            .lock()
            .expect("the UNSIDs")
            .get(device)
            .cloned();
        let Some((user, unsid)) = picked else {
            return;
        };
        let group = format!("g{group}");
        // Group names here are `g0` to `g2`: nothing to escape.
        let url = format!("{}/beta/me/notifications?groupName={group}", self.url());
        let request = self.http.delete(url);
        let status = self.send(request, &unsid).await;
        self.ledger
            .lock()
            .expect("the ledger")
            .group_deleted(&user, &group, status);
    }
}

/// A new `appNotificationId` (`s<n>`), or (one in ten) one of the user's five that are
/// posted again and again, each time replacing the last in place (`r<k>`: never marked
/// read, as a replacement starts unread), or (one in ten) a new one that expires 3 to
/// 20 s after it is posted (`x<n>`).
fn pick_app_id(rng: &mut StdRng, next: &mut u64) -> String {
    match rng.random_range(0..10) {
        0 => format!("r{}", rng.random_range(0..5)),
        1 => {
            *next += 1;
            format!("x{next}")
        }
        _ => {
            *next += 1;
            format!("s{next}")
        }
    }
}
