//! Service benchmarks (`cargo bench --bench service`).
//!
//! 1. Latency: one device holds its WebSocket channel open while an app posts at a
//!    steady 200 posts/s; for each post, the time from sending the POST to receiving
//!    its `change` frame.
//! 2. Durable throughput: 16 concurrent posters, each on its own keep-alive HTTP/1.1
//!    connection, post for a fixed time; every counted post got a `201` (on disk).
//! 3. After each: a backup of the store it left (how long writes wait for one).
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

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tidings::ipc::Client;
use tidings::service::{self, ServiceState, Settings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;

const POSTERS: usize = 16;
const LATENCY_RATE: u64 = 200;

struct Target {
    addr: String,
    app_token: String,
    device_token: String,
    unsid: String,
}

fn main() {
    let secs: u64 = std::env::var("TIDINGS_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    // `cargo test --all-targets` runs this too, without `--bench`: a one-second smoke run.
    let measuring = std::env::args().any(|a| a == "--bench");
    let duration = Duration::from_secs(if measuring { secs } else { 1 });

    let mut latencies = with_service(|target, client| client.block_on(latency(target, duration)));
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "latency POST -> change frame at {LATENCY_RATE}/s: n={} p50={:.3} ms p99={:.3} ms max={:.3} ms",
        latencies.len(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
    );

    let (posts, elapsed) =
        with_service(|target, client| client.block_on(throughput(target, duration)));
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
        let state = ServiceState::open(Settings::new(dir.path().to_owned()))
            .await
            .unwrap();
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

fn body(title: &str) -> String {
    json!({
        "targetHostName": "bench.example.com",
        "payload": {"visualContent": {"title": title, "body": "A notification body of a typical length, about eighty bytes long."}},
        "priority": "High",
        "displayTimeToLive": "60"
    })
    .to_string()
}

async fn throughput(target: &Target, duration: Duration) -> (u64, Duration) {
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for poster in 0..POSTERS {
        let (count, stop) = (count.clone(), stop.clone());
        let (addr, token, unsid) = (
            target.addr.clone(),
            target.app_token.clone(),
            target.unsid.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut conn = Http::connect(&addr).await;
            let auth = format!("Bearer {token}");
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                conn.post_notification(&auth, &unsid, &format!("{poster}-{i}"))
                    .await;
                count.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    (count.load(Ordering::Relaxed), start.elapsed())
}

async fn latency(target: &Target, duration: Duration) -> Vec<Duration> {
    let url = format!("ws://{}/v1/me/channel?cursor=999999999", target.addr);
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "Authorization",
        format!("Bearer {}", target.device_token).parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    loop {
        if let Some(Ok(Message::Text(text))) = socket.next().await
            && text.as_str().contains("\"synced\"")
        {
            break;
        }
    }
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let total = duration.as_secs() * LATENCY_RATE;
    let poster = {
        let sent = sent.clone();
        let (addr, auth, unsid) = (
            target.addr.clone(),
            format!("Bearer {}", target.app_token),
            target.unsid.clone(),
        );
        tokio::spawn(async move {
            let mut conns = Vec::new();
            for _ in 0..4 {
                conns.push(Arc::new(Mutex::new(Http::connect(&addr).await)));
            }
            let mut tick =
                tokio::time::interval(Duration::from_nanos(1_000_000_000 / LATENCY_RATE));
            for i in 0..total {
                tick.tick().await;
                let title = format!("lat-{i}");
                let conn = conns[usize::try_from(i).unwrap() % conns.len()].clone();
                let (sent, auth, unsid) = (sent.clone(), auth.clone(), unsid.clone());
                tokio::spawn(async move {
                    let mut conn = conn.lock().await;
                    sent.lock().await.insert(title.clone(), Instant::now());
                    conn.post_notification(&auth, &unsid, &title).await;
                });
            }
        })
    };
    let mut latencies = Vec::new();
    while latencies.len() < usize::try_from(total).unwrap() {
        let Some(Ok(Message::Text(text))) = socket.next().await else {
            panic!("channel closed")
        };
        let received = Instant::now();
        let frame: Value = serde_json::from_str(text.as_str()).unwrap();
        let title = frame["notification"]["payload"]["visualContent"]["title"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if let Some(at) = sent.lock().await.remove(&title) {
            latencies.push(received - at);
        }
    }
    poster.await.unwrap();
    latencies
}

/// A minimal HTTP/1.1 keep-alive client: the cheapest possible load generator.
struct Http {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Http {
    /// Posts a notification titled `title` and checks it was stored (201).
    async fn post_notification(&mut self, auth: &str, unsid: &str, title: &str) {
        let headers = [("Authorization", auth), ("X-UNS-ID", unsid)];
        let path = "/beta/me/notifications";
        let (status, _) = self
            .request("POST", path, &headers, "application/json", &body(title))
            .await;
        assert_eq!(status, 201);
    }

    async fn connect(addr: &str) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            buf: Vec::with_capacity(4096),
        }
    }

    async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        content_type: &str,
        body: &str,
    ) -> (u16, Value) {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        head.push_str("\r\n");
        head.push_str(body);
        self.stream.write_all(head.as_bytes()).await.unwrap();
        self.buf.clear();
        let header_end = loop {
            if let Some(at) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed");
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&self.buf[..header_end]).into_owned();
        let status: u16 = head[9..12].parse().unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        while self.buf.len() < header_end + length {
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
        let body = &self.buf[header_end..header_end + length];
        (status, serde_json::from_slice(body).unwrap_or(Value::Null))
    }
}
