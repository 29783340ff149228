//! Hardening benchmarks (`cargo bench --bench hardening`), on the real binary as a
//! subprocess so that its memory is measured alone (VmRSS / VmHWM from /proc):
//!
//! 1. Memory per idle channel: RSS with N idle WebSocket channels open (10,000 when
//!    measuring), minus RSS before, divided by N. Target: at most 4 KiB; Mosquitto
//!    2.0.11 holds an idle client in about 1.0 KiB on the same machine.
//! 2. A burst of 200 concurrent wrong-password grants: the RSS peak (VmHWM), and the
//!    RSS a moment after, against the RSS before. Without a bound each check took 19 MiB
//!    on its own thread (9.1 GiB for 200 over 30 s).
//!
//!
//! Then the second round (`support/attacks.rs`): slow readers of a large feed, failed
//! sign-ins with huge user names, one host holding its connection cap, and a hostile
//! service against the agent.
//!
//! `TIDINGS_BENCH_BIN` measures another build of the binary (or a wrapper that runs it
//! under a heap profiler), `TIDINGS_BENCH_IDLE_ONLY=1` the idle channels alone.
//!
//! Under `cargo test` it runs small (200 channels, 20 grants, and the second round
//! scaled down) as a smoke test. Linux only.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss,
    missing_docs
)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[path = "support/attacks.rs"]
mod attacks;
#[path = "support/mode.rs"]
mod mode;

const BIN: &str = env!("CARGO_BIN_EXE_tidings");

/// The binary measured: this build's, or the one `TIDINGS_BENCH_BIN` names (another
/// build, for runs that alternate two; or a wrapper script running it under a heap
/// profiler).
fn bin() -> String {
    std::env::var("TIDINGS_BENCH_BIN").unwrap_or_else(|_| BIN.to_owned())
}

fn main() {
    let measuring = mode::measuring("hardening");
    raise_fd_limit();
    tidings::agent::tls::install_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let channels = if measuring { 10_000 } else { 200 };
    let grants = if measuring { 200 } else { 20 };
    // `TIDINGS_BENCH_IDLE_ONLY=1`: the idle channels alone (for heap profiles).
    let idle_only = std::env::var_os("TIDINGS_BENCH_IDLE_ONLY").is_some_and(|v| v != "0");
    runtime.block_on(async {
        idle_channels(channels).await;
        if idle_only {
            return;
        }
        grant_burst(grants).await;
        if measuring {
            attacks::slow_readers(1_000, 40).await;
            attacks::failed_sign_ins(2_000).await;
            attacks::address_cap(10_050, 147, &[]).await;
            attacks::hostile_service_agent(400).await;
        } else {
            attacks::slow_readers(60, 4).await;
            attacks::failed_sign_ins(20).await;
            let small = [
                "--max-connections",
                "100",
                "--max-connections-per-address",
                "20",
            ];
            attacks::address_cap(110, 20, &small).await;
            attacks::hostile_service_agent(10).await;
        }
    });
}

#[cfg(unix)]
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    let _ = setrlimit(Resource::Nofile, limit);
}

#[cfg(not(unix))]
fn raise_fd_limit() {}

/// The service binary on loopback port 0, its data in `dir`.
async fn start(dir: &Path, extra: &[&str]) -> (Child, String) {
    let mut child = Command::new(bin())
        .args(["service", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .args(extra)
        .env("TIDINGS_LOG", "warn,tidings=info")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("the service exited");
        if let Some(at) = line.find("listening on http://") {
            break line[at + "listening on ".len()..].trim().to_owned();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}

/// `tidings admin user add alice` with a known password.
async fn add_alice(dir: &Path) {
    let mut admin = Command::new(bin())
        .args(["admin", "--data-dir"])
        .arg(dir)
        .args(["user", "add", "alice", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = admin.stdin.take().unwrap();
    stdin.write_all(b"alice-pw\n").await.unwrap();
    drop(stdin);
    assert!(admin.wait().await.unwrap().success());
}

/// A field of /proc/PID/status, in KiB.
fn status_kib(child: &Child, field: &str) -> u64 {
    let pid = child.id().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

async fn idle_channels(count: usize) {
    let dir = tempfile::tempdir().unwrap();
    let total = (count + 100).to_string();
    let (child, url) = start(
        dir.path(),
        &[
            "--channels-per-device",
            &total,
            "--max-channels",
            &total,
            "--max-connections",
            &total,
        ],
    )
    .await;
    add_alice(dir.path()).await;
    let token = device_token(&url).await;
    // One channel first, so the runtime's and the hub's fixed costs are paid.
    let mut channels = vec![open_channel(&url, &token).await];
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = status_kib(&child, "VmRSS:");
    while channels.len() < count + 1 {
        channels.push(open_channel(&url, &token).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = status_kib(&child, "VmRSS:");
    let per = (after.saturating_sub(before)) as f64 / count as f64;
    println!(
        "idle channels: {count} open, service VmRSS {before} KiB -> {after} KiB = {per:.2} KiB per channel (target <= 4 KiB; Mosquitto 2.0.11: about 1.0 KiB per idle client)"
    );
    drop(channels);
}

/// Signs a device in; returns its access token.
async fn device_token(url: &str) -> String {
    let body: serde_json::Value = reqwest::Client::new()
        .post(format!("{url}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "alice-pw"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a channel and reads until `synced`.
async fn open_channel(url: &str, token: &str) -> Socket {
    let mut request = format!("{}/v1/me/channel", url.replacen("http", "ws", 1))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    while let Some(Ok(message)) = socket.next().await {
        if let Message::Text(text) = message
            && text.contains("\"synced\"")
        {
            break;
        }
    }
    socket
}

async fn grant_burst(count: usize) {
    let dir = tempfile::tempdir().unwrap();
    let (child, url) = start(dir.path(), &["--free-failures-per-address", "100000"]).await;
    add_alice(dir.path()).await;
    // One good sign-in first: the password pool's threads and arenas exist already.
    device_token(&url).await;
    let before = status_kib(&child, "VmRSS:");
    let http = reqwest::Client::new();
    let burst: Vec<_> = (0..count)
        .map(|n| {
            let http = http.clone();
            let url = url.clone();
            tokio::spawn(async move {
                http.post(format!("{url}/oauth2/v2.0/token"))
                    .form(&[
                        ("grant_type", "password"),
                        ("username", &format!("guess{n}")),
                        ("password", "wrong"),
                    ])
                    .send()
                    .await
                    .map_or(0, |r| r.status().as_u16())
            })
        })
        .collect();
    let mut statuses = std::collections::BTreeMap::new();
    for answer in burst {
        *statuses.entry(answer.await.unwrap()).or_insert(0) += 1;
    }
    let peak = status_kib(&child, "VmHWM:");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = status_kib(&child, "VmRSS:");
    println!(
        "grant burst: {count} concurrent wrong passwords, answers {statuses:?}; service VmRSS before {} MiB, peak {} MiB, 1 s after {} MiB (unbounded before: 9.1 GiB)",
        before / 1024,
        peak / 1024,
        after / 1024
    );
}
