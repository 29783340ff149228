//! The app backend of a soak: posts at a steady rate (and in bursts) to the users'
//! devices, one in ten replacing an earlier notification of the user in place and one
//! in ten expiring within seconds, and keeps the ledger the checks compare the devices with: each post is named by its
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

/// What became of the posts, per user.
#[derive(Default)]
pub struct Ledger {
    /// `appNotificationId`s answered `201`.
    pub posted: HashMap<String, HashSet<String>>,
    /// Sent without an answer (the node was killed): committed or not.
    pub unanswered: HashMap<String, HashSet<String>>,
    /// Answered with an error: never committed.
    pub refused: HashMap<String, HashSet<String>>,
    /// Marked read on one of the user's devices (the agent took the change).
    pub read: HashMap<String, HashSet<String>>,
    /// Posts sent, by outcome: 201, refused, unanswered.
    pub counts: [u64; 3],
    /// When each expiring post (`x<n>`) expires.
    pub expires: HashMap<String, Timestamp>,
}

impl Ledger {
    /// Whether `app_id` expires before `at` (so it may be gone, or going, anywhere).
    pub fn expired_by(&self, app_id: &str, at: Timestamp) -> bool {
        self.expires
            .get(app_id)
            .is_some_and(|expires| *expires <= at)
    }
}

/// Where the app posts: the service, its token, and each user's UNSIDs.
pub struct Target {
    pub url: String,
    pub client_id: String,
    pub client_secret: String,
    /// (user, UNSID) of every device.
    pub unsids: Vec<(String, String)>,
}

/// The app's access token (client credentials).
async fn token(http: &reqwest::Client, target: &Target) -> Option<String> {
    let answer = http
        .post(format!("{}/oauth2/v2.0/token", target.url))
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

/// Posts `rate` a second, and each burst it is sent at once, until `stop`.
pub async fn post(
    target: Arc<Target>,
    ledger: Arc<Mutex<Ledger>>,
    seed: u64,
    rate: u32,
    mut bursts: mpsc::UnboundedReceiver<usize>,
    stop: CancellationToken,
) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client");
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
    let mut bearer = None;
    let mut next = 0u64;
    loop {
        let count = tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => 1,
            Some(count) = bursts.recv() => count,
        };
        for _ in 0..count {
            if bearer.is_none() {
                bearer = token(&http, &target).await;
            }
            let Some(token) = &bearer else { break };
            let (user, unsid) = &target.unsids[rng.random_range(0..target.unsids.len())];
            let app_id = pick_app_id(&mut rng, &mut next);
            let mut body = json!({"targetHostName": "contoso.com", "appNotificationId": app_id,
                "payload": {"visualContent": {"title": format!("soak {app_id}")}}});
            if app_id.starts_with('x') {
                let expires = Timestamp::now().plus(Duration::from_secs(rng.random_range(3..=20)));
                body["expirationDateTime"] = expires.to_rfc3339().into();
                ledger
                    .lock()
                    .expect("the ledger")
                    .expires
                    .insert(app_id.clone(), expires);
            }
            let answer = http
                .post(format!("{}/beta/me/notifications", target.url))
                .bearer_auth(token)
                .header("X-UNS-ID", unsid)
                .json(&body)
                .send()
                .await;
            let status = answer.as_ref().map(reqwest::Response::status).ok();
            if status == Some(reqwest::StatusCode::UNAUTHORIZED) {
                bearer = None;
            }
            record(&ledger, user, app_id, status);
        }
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

fn record(ledger: &Mutex<Ledger>, user: &str, app_id: String, status: Option<reqwest::StatusCode>) {
    let mut ledger = ledger.lock().expect("the ledger");
    let (book, slot) = match status {
        Some(s) if s == reqwest::StatusCode::CREATED => (&mut ledger.posted, 0),
        Some(_) => (&mut ledger.refused, 1),
        None => (&mut ledger.unanswered, 2),
    };
    book.entry(user.to_owned()).or_default().insert(app_id);
    ledger.counts[slot] += 1;
}
