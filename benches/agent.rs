//! Agent benchmarks (`cargo bench --bench agent`).
//!
//! 1. Catch-up: a service holds a backlog of N notes for a user (100,000 and 10,000);
//!    a fresh agent of a device of that user connects; the time until it has stored
//!    (and acked) all of them.
//! 2. IPC: with the 100,000 cached (agent still connected), the latency of `list` of
//!    the newest 50 over the agent's socket, one client calling in a loop (p50 / p99),
//!    and of `status` (which counts every record).
//! 3. Idle memory: the real `tidings agent` binary, signed in with 10,000 notifications
//!    cached, idle and connected: its resident set (VmRSS) after it caught up, and
//!    after a restart with them cached; then the same with its panel icon on, served on
//!    a private session bus (`support/bus.rs`; no panel calls it).
//!
//! The service runs in-process on its own 2-thread runtime, store on disk under
//! `target/`. Under `cargo test` (no `--bench`) the sizes shrink to a smoke run.
//! `TIDINGS_BENCH_ONLY=catch-up` (or `memory`) measures only that part (the IPC
//! latencies come with the catch-up).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss,
    missing_docs
)]

#[path = "support/bus.rs"]
mod bus;
#[path = "support/mode.rs"]
mod mode;

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tidings::agent::credentials::Credentials;
use tidings::agent::toast::Presenter;
use tidings::agent::{Agent, Settings};
use tidings::protocol::{Notification, NotificationId, NotificationInput, Timestamp, UserId};
use tidings::service::{self, ServiceState, provision};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

struct Quiet;

impl Presenter for Quiet {
    fn show(&self, _: &Notification) {}
    fn close(&self, _: &NotificationId) {}
}

struct Service {
    runtime: tokio::runtime::Runtime,
    state: service::State,
    url: String,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

fn start_service() -> Service {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let shutdown = CancellationToken::new();
    let (state, url) = runtime.block_on(async {
        let mut settings = service::Settings::new(dir.path().to_owned());
        settings.posts = service::admission::PostLimits::unlimited();
        let state = ServiceState::open(settings).await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(service::run(listener, state.clone(), shutdown.clone()));
        (state, url)
    });
    Service {
        runtime,
        state,
        url,
        shutdown,
        _dir: dir,
    }
}

/// A user with `count` notes in the service; returns a fresh device's refresh token.
fn backlog(service: &Service, user: &str, count: usize) -> (String, String) {
    service.runtime.block_on(async {
        let first = provision::local_device(&service.state, user, "loader".to_owned()).await.unwrap();
        let user_id: UserId = first.device.user.clone();
        let body = br#"{"targetHostName":"localhost","payload":{"visualContent":{"title":"A backlog notification","body":"Of a typical length: about eighty bytes of body text here."}}}"#;
        let mut tasks = Vec::new();
        for worker in 0..64 {
            let (state, user_id) = (service.state.clone(), user_id.clone());
            tasks.push(tokio::spawn(async move {
                for _ in (worker..count).step_by(64) {
                    let content = NotificationInput::from_json(body).unwrap().validate(Timestamp::now()).unwrap();
                    state.store.upsert(&user_id, content, Timestamp::now()).await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let device = provision::local_device(&service.state, user, "bench".to_owned()).await.unwrap();
        (device.refresh_token, device.device.id.to_string())
    })
}

/// Catch-up time; with `ipc`, also the IPC latencies measured after it.
fn catch_up(service: &Service, count: usize, ipc: bool) -> Duration {
    let (refresh, _) = backlog(service, &format!("catchup{count}"), count);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    client.block_on(async {
        let mut settings = Settings::new(service.url.clone(), refresh, dir.path().to_owned());
        let socket = dir.path().join("agent.sock");
        settings.ipc_socket = ipc.then(|| socket.clone());
        let agent = Agent::open(settings, Arc::new(Quiet)).unwrap();
        let handle = agent.handle();
        let shutdown = CancellationToken::new();
        let started = Instant::now();
        let task = tokio::spawn(agent.run(shutdown.clone()));
        while handle.store().cursor().unwrap().0 < count as u64 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let elapsed = started.elapsed();
        assert_eq!(handle.store().len(), count);
        if ipc {
            ipc_latency(&socket, count).await;
        }
        shutdown.cancel();
        task.await.unwrap().unwrap();
        elapsed
    })
}

/// Starts the real agent binary in `home` (signed in through its credential file).
/// With `bus`, its panel icon is served on that session bus.
fn spawn_agent(home: &std::path::Path, bus: Option<&str>) -> std::process::Child {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tidings"));
    command
        .args(["agent", "--no-toasts"])
        .env_clear()
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_RUNTIME_DIR", home)
        .env("TIDINGS_LOG", "warn")
        .stderr(Stdio::null());
    if let Some(address) = bus {
        command
            .args(["--tray", "true"])
            .env("DBUS_SESSION_BUS_ADDRESS", address);
    }
    command.spawn().unwrap()
}

/// The child's VmRSS (KiB), with its anonymous / file-backed split printed.
fn rss_kib(child: &std::process::Child) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    };
    println!(
        "  (VmRSS {} KiB = anonymous {} + file-backed {} + shared {})",
        field("VmRSS:"),
        field("RssAnon:"),
        field("RssFile:"),
        field("RssShmem:")
    );
    field("VmRSS:")
}

/// The idle agent's VmRSS (KiB) right after catching up with `count` notifications, and
/// after a restart with them cached; with `bus`, its panel icon on.
fn idle_rss(
    service: &Service,
    user: &str,
    count: usize,
    settle: Duration,
    bus: Option<&str>,
) -> (u64, u64) {
    let (refresh, device) = backlog(service, user, count);
    let home = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let creds = Credentials {
        service: Some(service.url.clone()),
        user: user.to_owned(),
        device_id: device.clone(),
        refresh_token: refresh,
        ca_file: None,
    };
    creds.save(&home.path().join("data/tidings/agent")).unwrap();
    let mut child = spawn_agent(home.path(), bus);
    let id = tidings::protocol::DeviceId::new(device);
    let acked = || {
        let device = service.runtime.block_on(service.state.store.device(&id));
        device.unwrap().unwrap().acked_seq.0
    };
    while acked() < count as u64 {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(settle);
    let caught_up = rss_kib(&child);
    let _ = child.kill();
    let _ = child.wait();
    let mut child = spawn_agent(home.path(), bus);
    std::thread::sleep(settle);
    let restarted = rss_kib(&child);
    let _ = child.kill();
    let _ = child.wait();
    (caught_up, restarted)
}

/// Prints p50 / p99 of `list` (newest 50) and of `status` over the socket.
async fn ipc_latency(socket: &std::path::Path, cached: usize) {
    let mut client = tidings::ipc::Client::connect(socket).await.unwrap();
    let params = serde_json::json!({"limit": 50});
    let mut lists = Vec::new();
    for _ in 0..2_000 {
        let started = Instant::now();
        let page = client.call("list", params.clone()).await.unwrap();
        lists.push(started.elapsed());
        assert_eq!(page["items"].as_array().unwrap().len(), 50);
    }
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        client.call("status", serde_json::json!({})).await.unwrap();
        statuses.push(started.elapsed());
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (lists, statuses) = (percentiles(lists), percentiles(statuses));
    println!(
        "IPC with {cached} cached: list newest 50 p50 {:.3} ms, p99 {:.3} ms (2,000 calls); status p50 {:.1} ms, p99 {:.1} ms (20 calls)",
        ms(lists.0),
        ms(lists.1),
        ms(statuses.0),
        ms(statuses.1)
    );
}

/// (p50, p99) of `samples`.
fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |percent: usize| samples[(samples.len() - 1) * percent / 100];
    (at(50), at(99))
}

fn main() {
    let measuring = mode::measuring("agent");
    let (big, small, settle) = if measuring {
        (100_000, 10_000, Duration::from_secs(5))
    } else {
        (2_000, 500, Duration::from_millis(200))
    };
    let service = start_service();
    for count in [small, big]
        .into_iter()
        .filter(|_| mode::wanted("catch-up"))
    {
        let elapsed = catch_up(&service, count, count == big);
        println!(
            "catch-up: {count} notifications stored and acked in {:.3} s = {:.0} notifications/s",
            elapsed.as_secs_f64(),
            count as f64 / elapsed.as_secs_f64()
        );
    }
    if mode::wanted("memory") {
        let (caught_up, restarted) = idle_rss(&service, "idle", small, settle, None);
        println!(
            "idle agent binary, connected, {small} cached: VmRSS {:.1} MiB after catching up, {:.1} MiB after a restart",
            caught_up as f64 / 1024.0,
            restarted as f64 / 1024.0
        );
        match bus::PrivateBus::start() {
            Some(bus) => {
                let (caught_up, restarted) =
                    idle_rss(&service, "icon", small, settle, Some(&bus.address));
                println!(
                    "the same with its panel icon (a private session bus, no panel): VmRSS {:.1} MiB after catching up, {:.1} MiB after a restart",
                    caught_up as f64 / 1024.0,
                    restarted as f64 / 1024.0
                );
            }
            None => println!("with the panel icon: not measured, dbus-daemon is missing"),
        }
    }
    service.shutdown.cancel();
}
