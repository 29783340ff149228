//! Service benchmarks (`cargo bench --bench service`).
//!
//! 1. Latency: one device holds its WebSocket channel open while an app posts at a
//!    steady 200 posts/s; for each post, the time from sending the POST to receiving
//!    its `change` frame.
//! 2. Durable throughput: 16 concurrent posters, each on its own keep-alive HTTP/1.1
//!    connection, post for a fixed time; every counted post got a `201` (on disk).
//! 3. After each: a backup of the store it left (how long writes wait for one).
//! 4. Both again with end-to-end encrypted content (`docs/encryption.md`) in place of
//!    the visual content (the same plaintext, encrypted once for the device), and what
//!    opening one costs the device.
//!
//! Each runs against a fresh service, in-process on its own 2-thread runtime with its
//! store on the real disk (under `target/`); the load generator is a minimal raw HTTP/1.1 client on a separate thread so it
//! costs as little CPU as possible. Tunables: `TIDINGS_BENCH_SECS` (default 10).
//! Under `cargo test` it runs for one second per part, as a smoke test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    missing_docs
)]

use std::time::{Duration, Instant};

use serde_json::json;
use tidings::ipc::Client;
use tidings::protocol::sealed::DeviceKeys;
use tidings::service::{self, ServiceState, Settings};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[path = "support/load.rs"]
#[allow(dead_code)] // shared with nodes.rs, which also measures fan-out
mod load;
#[path = "support/mode.rs"]
mod mode;

use load::{Http, LATENCY_RATE, Listen, POSTERS, Post};

struct Target {
    addr: String,
    app_token: String,
    device_token: String,
    unsid: String,
}

impl Target {
    /// Posts as the app; with `keys`, encrypted for them.
    fn post(&self, keys: Option<&DeviceKeys>) -> Post {
        Post {
            addr: self.addr.clone(),
            auth: format!("Bearer {}", self.app_token),
            unsid: self.unsid.clone(),
            sealed: keys.map(|keys| keys.public().seal(PLAINTEXT.as_bytes()).unwrap()),
        }
    }

    fn listen(&self) -> Listen {
        Listen {
            addr: self.addr.clone(),
            token: self.device_token.clone(),
        }
    }
}

/// The cleartext of an encrypted post: the typical notification's payload.
const PLAINTEXT: &str = r#"{"visualContent":{"title":"lat","body":"A notification body of a typical length, about eighty bytes long."}}"#;

fn main() {
    let secs: u64 = std::env::var("TIDINGS_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    // `cargo test --all-targets` runs this too, without `--bench`: a one-second smoke run.
    let measuring = mode::measuring("service");
    let duration = Duration::from_secs(if measuring { secs } else { 1 });
    let keys = DeviceKeys::generate().unwrap();
    for (name, keys) in [("plain", None), ("encrypted", Some(&keys))] {
        println!("== {name}");
        measure(keys, duration);
    }
    let sealed = keys.public().seal(PLAINTEXT.as_bytes()).unwrap();
    let opens = if measuring { 2_000 } else { 20 };
    let started = Instant::now();
    for _ in 0..opens {
        keys.open(&sealed).unwrap();
    }
    println!(
        "the device opens one: {:.1} µs ({opens} opens; ciphertext {} bytes as base64url for {} of cleartext)",
        started.elapsed().as_secs_f64() * 1e6 / f64::from(opens),
        sealed.len(),
        PLAINTEXT.len()
    );
}

/// The latency and throughput measures, posting in the clear or encrypted for `keys`.
fn measure(keys: Option<&DeviceKeys>, duration: Duration) {
    let mut latencies = with_service(|target, client| {
        client.block_on(load::latency(
            &target.listen(),
            &target.post(keys),
            duration,
        ))
    });
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "latency POST -> change frame at {LATENCY_RATE}/s: n={} p50={:.3} ms p99={:.3} ms max={:.3} ms",
        latencies.len(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
    );

    let (posts, elapsed) = with_service(|target, client| {
        client.block_on(load::throughput(&[target.post(keys)], duration))
    });
    let rate = posts as f64 / elapsed.as_secs_f64();
    println!(
        "throughput: {posts} durable posts in {:.2} s with {POSTERS} posters = {rate:.0} posts/s",
        elapsed.as_secs_f64()
    );
}

/// Runs `work` against a fresh service (own store, own 2-thread runtime), from a
/// separate current-thread runtime for the load generator.
fn with_service<T>(work: impl FnOnce(&Target, &tokio::runtime::Runtime) -> T) -> T {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let shutdown = CancellationToken::new();
    let (addr, state, task) = server.block_on(async {
        let mut settings = Settings::new(dir.path().to_owned());
        settings.posts = service::admission::PostLimits::unlimited();
        let state = ServiceState::open(settings).await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let task = tokio::spawn(service::run(listener, state.clone(), shutdown.clone()));
        (addr, state, task)
    });
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let target = client.block_on(provision(&addr, &state.settings.admin_socket_path()));
    let result = work(&target, &client);
    println!(
        "  (store on disk: {} MiB)",
        client.block_on(state.store.size()).unwrap() >> 20
    );
    // How long `tidings admin backup` holds writes for a store of this size.
    let started = Instant::now();
    let sled = state
        .store
        .as_sled()
        .expect("the bench's service runs on sled");
    let backup = sled
        .backup(&dir.path().join("bench.tidings-backup"))
        .unwrap();
    let took = started.elapsed().as_secs_f64();
    println!(
        "  (backup: {} entries, {:.1} MiB in {took:.2} s = {:.0} MiB/s; writes wait that long)",
        backup.entries,
        backup.bytes as f64 / f64::from(1 << 20),
        backup.bytes as f64 / f64::from(1 << 20) / took,
    );
    shutdown.cancel();
    server.block_on(task).unwrap().unwrap();
    result
}

async fn provision(addr: &str, admin: &std::path::Path) -> Target {
    let mut client = loop {
        if let Ok(client) = Client::connect(admin).await {
            break client;
        }
        tokio::task::yield_now().await;
    };
    client
        .call("user.add", json!({"name": "bench", "password": "bench-pw"}))
        .await
        .unwrap();
    let app = client
        .call("app.add", json!({"hostname": "bench.example.com"}))
        .await
        .unwrap();
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        app["clientId"].as_str().unwrap(),
        app["clientSecret"].as_str().unwrap()
    );
    let mut conn = Http::connect(addr).await;
    let app_token = conn
        .request(
            "POST",
            "/oauth2/v2.0/token",
            &[],
            "application/x-www-form-urlencoded",
            &form,
        )
        .await
        .1["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let signed_in = conn
        .request(
            "POST",
            "/oauth2/v2.0/token",
            &[],
            "application/x-www-form-urlencoded",
            "grant_type=password&username=bench&password=bench-pw&platform=linux",
        )
        .await
        .1;
    let device_token = signed_in["access_token"].as_str().unwrap().to_owned();
    let auth = format!("Bearer {device_token}");
    let sub = conn
        .request(
            "POST",
            "/v1/me/subscriptions",
            &[("Authorization", &auth)],
            "application/json",
            r#"{"targetHostName":"bench.example.com"}"#,
        )
        .await
        .1;
    Target {
        addr: addr.to_owned(),
        app_token,
        device_token,
        unsid: sub["id"].as_str().unwrap().to_owned(),
    }
}
