//! The web app in a real headless Chromium (`cargo bench --bench web`): a user with
//! 10,000 notifications (`TIDINGS_BENCH_NOTIFICATIONS`) signs in once; then the page is
//! loaded afresh several times, and for each load the browser's own Performance API
//! reports:
//!
//! - the bytes of the first load: the page and its files (`transferSize` of the
//!   navigation and resource entries; the backlog on the WebSocket is not in them,
//!   so it is counted apart: the frames' size, from the notifications' JSON);
//! - the time from the start of navigation to the first page of the synced inbox
//!   drawn (the app's `tidings:first-page` mark), with every notification received.
//!
//! Needs Debian's `chromium` and `chromium-driver` (the test command installs them).
//! Under `cargo test` it runs once with 200 notifications, as a smoke test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    missing_docs
)]

#[path = "../tests/it/browser.rs"]
mod browser;

#[path = "support/mode.rs"]
mod mode;

use std::time::Duration;

use browser::Browser;
use serde_json::Value;
use tidings::protocol::{NotificationInput, Timestamp, UserId};
use tidings::service::store::UserRecord;
use tidings::service::{self, ServiceState, auth};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const LOADS: usize = 5;

fn main() {
    let measuring = mode::measuring("web");
    let count: usize = if measuring {
        std::env::var("TIDINGS_BENCH_NOTIFICATIONS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10_000)
    } else {
        200
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(count, if measuring { LOADS } else { 1 }));
}

async fn run(count: usize, loads: usize) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut settings = service::Settings::new(dir.path().to_owned());
    settings.posts = service::admission::PostLimits::unlimited();
    let state = ServiceState::open(settings).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(service::run(listener, state.clone(), shutdown.clone()));
    let backlog_bytes = fill(&state, count).await;

    let browser = Browser::start().await;
    browser.client.goto(&url).await.unwrap();
    browser.sign_in("alice", "alice-pw").await;
    first_page(&browser).await;
    println!("web app, {count} notifications, {loads} fresh page loads (signed in):");
    let mut times = Vec::new();
    for _ in 0..loads {
        browser.client.goto(&url).await.unwrap();
        let (ms, total) = first_page(&browser).await;
        assert_eq!(total as usize, count, "every notification is in");
        times.push(ms);
    }
    let bytes = browser
        .eval("return performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource')).reduce((n, e) => n + e.transferSize, 0)")
        .await
        .as_f64()
        .unwrap();
    let files = browser
        .eval("return performance.getEntriesByType('resource').map(e => e.name.replace(location.origin, '') + ' ' + e.transferSize).concat(['/ ' + performance.getEntriesByType('navigation')[0].transferSize])")
        .await;
    times.sort_by(f64::total_cmp);
    println!("  first load: {bytes:.0} bytes over HTTP ({files})");
    println!(
        "  the backlog on the channel: {backlog_bytes} bytes of notification JSON ({count} frames)"
    );
    println!(
        "  navigation start to the first page drawn: median {:.0} ms, min {:.0} ms, max {:.0} ms",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1]
    );
    browser.close().await;
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
}

/// Waits for the app's first-page mark of this load: (ms since navigation start,
/// notifications held).
async fn first_page(browser: &Browser) -> (f64, f64) {
    let script = "const m = performance.getEntriesByName('tidings:first-page')[0]; return m ? [m.startTime, m.detail.total] : null";
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        if let Value::Array(pair) = browser.eval(script).await {
            return (pair[0].as_f64().unwrap(), pair[1].as_f64().unwrap());
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the first page was not drawn within 2 minutes"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// User alice (password `alice-pw`) with `count` notes of a typical size; returns the
/// bytes of their JSON, as the channel sends them.
async fn fill(state: &service::State, count: usize) -> usize {
    let user = UserRecord {
        id: UserId::random(),
        name: "alice".to_owned(),
        password_hash: auth::hash_password("alice-pw").unwrap(),
        created: Timestamp::now(),
    };
    let user = state.store.add_user(user).await.unwrap();
    let mut bytes = 0;
    for i in 0..count {
        let body = format!(
            r#"{{"targetHostName":"localhost","payload":{{"visualContent":{{"title":"Build {i} passed","body":"All 1,024 tests passed in 3 min 12 s on the main branch."}}}}}}"#
        );
        let content = NotificationInput::from_json(body.as_bytes())
            .unwrap()
            .validate(Timestamp::now())
            .unwrap();
        let stored = state
            .store
            .upsert(&user.id, content, Timestamp::now())
            .await
            .unwrap();
        bytes += serde_json::to_vec(&stored.notification).unwrap().len();
    }
    bytes
}
