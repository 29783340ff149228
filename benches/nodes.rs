//! The stores side by side (`cargo bench --bench nodes`): sled, PostgreSQL with one
//! node, PostgreSQL with two nodes on one database, in one run, each measured the same
//! three ways:
//!
//! 1. durable posts/s: 16 posters (each its own user), every post answered `201`;
//! 2. POST-to-device latency at 200 posts/s (with two nodes: posted on one node, the
//!    device's channel on the other), and where that time goes: p50 / p99 of each stage
//!    of a post (`tidings::service::stage`, recorded by `support/stages.rs`);
//! 3. fan-out: 50 users with 2 devices each, every channel open (with two nodes: each
//!    user's devices one on each node), 16 posters taking turns over the users:
//!    deliveries (change frames received) per second, until every post's arrived.
//!
//! Beside each measure, what it cost (the capacity model of `docs/capacity.md`): CPU
//! time of the nodes and of the PostgreSQL server and the WAL written, per 1,000 posts
//! and per 1,000 deliveries, and the notifications table's size per 100,000 rows.
//!
//! Then a database outage: the real binary (a subprocess, so its CPU time is its own) on
//! PostgreSQL, the database stopped for 5 s (1 s under `cargo test`): how many
//! reconnect attempts it logged and the CPU it spent meanwhile (target: one log line
//! per attempt and under 0.1 s of CPU; an unpaced loop logged 67,652 lines and burned
//! 4.75 s).
//!
//! The nodes run in-process, on one 2-thread runtime, against a private PostgreSQL
//! cluster the bench starts (`tests/it/pg.rs`; durable settings: fsync and
//! synchronous commit on), the load from a separate thread. `TIDINGS_BENCH_SECS`
//! (default 10) per measure; under `cargo test` one second each, as a smoke test.
//! `TIDINGS_BENCH_STATEMENTS=1` also prints, after each durable-posts measure, the
//! statements PostgreSQL spent its time on (`pg_stat_statements`).
//! `TIDINGS_BENCH_ONLY=TEXT` measures only the set-ups whose name holds `TEXT`.
//! `TIDINGS_BENCH_PG_OPTIONS='-c name=value ...'` starts the cluster with those server
//! settings too, to try one (`-c commit_delay=200 -c commit_siblings=1`, say).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    missing_docs
)]

use std::time::Duration;

use tidings::protocol::{ClientId, Platform, Timestamp, Unsid, UserId};
use tidings::service::auth::Claims;
use tidings::service::store::{AppRecord, PgConfig, UserRecord};
use tidings::service::{self, ServiceState, Settings, State, provision};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

#[path = "support/load.rs"]
mod load;
#[path = "support/meter.rs"]
mod meter;
#[path = "support/mode.rs"]
mod mode;
#[path = "../tests/it/pg.rs"]
#[allow(dead_code)]
mod pg;
#[path = "support/stages.rs"]
mod stages;

use load::{LATENCY_RATE, Listen, POSTERS, Post};

const USERS: usize = 50;
const DEVICES: usize = 2;
const HOST: &str = "bench.example.com";

/// One node: its address, state and stop switch.
struct Node {
    addr: String,
    state: State,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), service::ServiceError>>,
}

/// What the load uses: each user's post target (its first device's UNSID) and every
/// device's channel, spread over the nodes.
struct Cast {
    posts: Vec<Post>,
    listen: Vec<Listen>,
}

fn main() {
    let secs: u64 = std::env::var("TIDINGS_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let measuring = mode::measuring("nodes");
    let stages = stages::Stages::install();
    let duration = Duration::from_secs(if measuring { secs } else { 1 });
    let cluster = pg::Cluster::start_with(|_| meter::server_options());
    let setups: [(&str, Option<String>, usize); 3] = [
        ("sled", None, 1),
        ("PostgreSQL, 1 node", Some(cluster.new_database()), 1),
        ("PostgreSQL, 2 nodes", Some(cluster.new_database()), 2),
    ];
    // `TIDINGS_BENCH_ONLY=2` (a part of a set-up's name) measures only the matching ones.
    let mut rows = Vec::new();
    for (name, database, count) in setups.into_iter().filter(|(n, ..)| mode::wanted(n)) {
        println!("== {name}");
        let server = database.as_ref().and_then(|_| cluster.server_pid());
        rows.push((
            name,
            measure(database.as_deref(), server, count, duration, &stages),
        ));
    }
    println!(
        "\n| store | durable posts/s (16 posters) | POST -> device p50 / p99 at {LATENCY_RATE}/s | fan-out {USERS} users x {DEVICES} devices, deliveries/s |"
    );
    println!("|---|---|---|---|");
    for (name, (row, _)) in &rows {
        println!("| {name} | {row} |");
    }
    println!(
        "\n| store | cost per 1,000 durable posts | cost per 1,000 fan-out deliveries | notifications table |"
    );
    println!("|---|---|---|---|");
    for (name, (_, cost)) in &rows {
        println!("| {name} | {cost} |");
    }
    let down = Duration::from_secs(if measuring { 5 } else { 1 });
    outage(&cluster, down);
}

/// CPU time of process `pid` so far (user + system), from /proc.
fn cpu_of(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime: fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // /proc counts in USER_HZ, 100 a second on Linux whatever the kernel's own tick.
    Duration::from_millis(ticks * 10)
}

/// The binary on a fresh database of `cluster`, the database stopped for `down`.
fn outage(cluster: &pg::Cluster, down: Duration) {
    use std::io::{BufRead, BufReader};
    let url = cluster.new_database();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args([
            "service",
            "--listen",
            "127.0.0.1:0",
            "--store",
            &url,
            "--data-dir",
        ])
        .arg(dir.path())
        .env("TIDINGS_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (seen, said) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let _ = seen.send(line);
        }
    });
    while !said.recv().unwrap().contains("listening on") {}
    let pid = child.id();
    let before = cpu_of(pid);
    let started = std::time::Instant::now();
    cluster.stop_server();
    std::thread::sleep(down.saturating_sub(started.elapsed()));
    let spent = cpu_of(pid).saturating_sub(before);
    let stopped_for = started.elapsed();
    cluster.start_server();
    let _ = child.kill();
    let _ = child.wait();
    let logged = said
        .try_iter()
        .filter(|l| l.contains("reopening the store failed"))
        .count();
    println!(
        "database outage: stopped for {:.1} s (stopping included); the node logged {logged} failed reconnects and spent {:.3} s of CPU (target: one line per attempt, under 0.1 s per 5 s; 67,652 lines and 4.75 s before the attempts were paced)",
        stopped_for.as_secs_f64(),
        spent.as_secs_f64()
    );
}

/// The three measures against `count` fresh nodes of one store (`database`, on the
/// PostgreSQL server whose pid is `db_server`; else sled): the row of figures, and the
/// row of costs.
fn measure(
    database: Option<&str>,
    db_server: Option<u32>,
    count: usize,
    duration: Duration,
    stages: &stages::Stages,
) -> (String, String) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(meter::NODE_THREADS)
        .enable_all()
        .build()
        .unwrap();
    let nodes: Vec<Node> = (0..count)
        .map(|n| start_node(&server, &dir.path().join(format!("node{n}")), database))
        .collect();
    let cast = server.block_on(provision_cast(&nodes));
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let before = meter::read(db_server, database);
    let (posted, took) = client.block_on(load::throughput(&cast.posts[..POSTERS], duration));
    let post_cost =
        meter::since(before, db_server, database).per_thousand(posted, "posts", database.is_some());
    let rate = posted as f64 / took.as_secs_f64();
    if let Some(url) = database.filter(|_| meter::statements_wanted()) {
        meter::print_statements(url);
    }
    println!(
        "  durable posts: {posted} in {:.2} s = {rate:.0}/s; {post_cost}",
        took.as_secs_f64()
    );

    // Posted on the first node, received on the last one's channel.
    let listen = cast.listen[count - 1].clone();
    stages.start();
    let mut latencies = client.block_on(load::latency(&listen, &cast.posts[0], duration));
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)].as_secs_f64()
            * 1e3
    };
    let (p50, p99) = (pct(0.50), pct(0.99));
    println!(
        "  latency: n={} p50={p50:.2} ms p99={p99:.2} ms",
        latencies.len()
    );
    stages.report();

    let before = meter::read(db_server, database);
    let (delivered, posts, took) =
        client.block_on(load::fanout(&cast.listen, &cast.posts, duration));
    let fanout_cost = meter::since(before, db_server, database).per_thousand(
        delivered,
        "deliveries",
        database.is_some(),
    );
    let deliveries = delivered as f64 / took.as_secs_f64();
    if let Some(url) = database.filter(|_| meter::statements_wanted()) {
        meter::print_statements(url);
    }
    println!(
        "  fan-out: {posts} posts, {delivered} deliveries in {:.2} s = {deliveries:.0}/s; {fanout_cost}",
        took.as_secs_f64()
    );
    let table = database.map_or_else(
        || "-".to_owned(),
        |url| {
            let (bytes, rows) = meter::notifications_size(url);
            format!(
                "{:.1} MiB per 100,000 notifications ({rows} rows)",
                bytes as f64 / rows.max(1) as f64 * 1e5 / 1024.0 / 1024.0
            )
        },
    );
    for node in nodes {
        node.shutdown.cancel();
        server.block_on(node.task).unwrap().unwrap();
    }
    (
        format!("{rate:.0} | {p50:.2} / {p99:.2} ms | {deliveries:.0}"),
        format!("{post_cost} | {fanout_cost} | {table}"),
    )
}

fn start_node(server: &Runtime, dir: &std::path::Path, database: Option<&str>) -> Node {
    let mut settings = Settings::new(dir.to_owned());
    settings.database = database.map(PgConfig::new);
    settings.admin_socket = false;
    settings.posts = service::admission::PostLimits::unlimited();
    server.block_on(async {
        let state = ServiceState::open(settings).await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(service::run(listener, state.clone(), shutdown.clone()));
        Node {
            addr,
            state,
            shutdown,
            task,
        }
    })
}

/// Users, devices, subscriptions and tokens, made through the store directly (a
/// hundred password sign-ins would take most of a minute of argon2).
async fn provision_cast(nodes: &[Node]) -> Cast {
    let state = &nodes[0].state;
    let now = Timestamp::now();
    let app = state
        .store
        .add_app(AppRecord {
            client_id: ClientId::random(),
            host: HOST.to_owned(),
            secret_hash: Vec::new(),
            created: now,
        })
        .await
        .unwrap();
    let auth = format!(
        "Bearer {}",
        state.signer.issue(
            Claims::App {
                client_id: app.client_id
            },
            now
        )
    );
    let (mut posts, mut listen) = (Vec::new(), Vec::new());
    for u in 0..USERS {
        let user = state
            .store
            .add_user(UserRecord {
                id: UserId::random(),
                name: format!("user{u}"),
                password_hash: "-".to_owned(),
                created: now,
            })
            .await
            .unwrap();
        for d in 0..DEVICES {
            let device =
                provision::register_device(state, &user.id, format!("d{d}"), Platform::Linux)
                    .await
                    .unwrap()
                    .device;
            let expires = now.plus(Duration::from_secs(30 * 24 * 3600));
            let sub = state
                .store
                .subscribe(
                    &user.id,
                    &device.id,
                    HOST,
                    expires,
                    Unsid::new(format!("bench-{u}-{d}")),
                )
                .await
                .unwrap();
            let claims = Claims::Device {
                device: device.id.clone(),
                user: user.id.clone(),
            };
            let node = &nodes[(u * DEVICES + d) % nodes.len()];
            listen.push(Listen {
                addr: node.addr.clone(),
                token: state.signer.issue(claims, now),
            });
            if d == 0 {
                posts.push(Post {
                    addr: nodes[u % nodes.len()].addr.clone(),
                    auth: auth.clone(),
                    unsid: sub.unsid.to_string(),
                    sealed: None,
                });
            }
        }
    }
    Cast { posts, listen }
}
