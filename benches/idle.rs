//! Idle cost of the agent (`cargo bench --bench idle`): the real binary in local mode
//! (the service embedded, the channel open, no notifications), left alone; its CPU
//! wake-ups are counted from the context switches of every thread
//! (`/proc/PID/task/*/status`, voluntary and involuntary) over 20 s.
//!
//! Target: at most one wake-up a second, apart from the channel's pings. Before
//! sled's periodic flusher was turned off and its IO threads were made to sleep
//! (vendor/PATCHES.md): 15.8 a second, 15 threads; after: 0.7 a second (the
//! tokio worker; sled's threads 0), 13 threads.
//!
//! Then the same with the panel icon on (`--tray true`), served on a private session
//! bus (`dbus-daemon`; no panel on it, so nothing calls the item).
//!
//! Under `cargo test` it samples 2 s, as a smoke test. Linux only.

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

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tidings");

fn main() {
    if !cfg!(target_os = "linux") {
        println!("idle: /proc is Linux's; nothing measured here");
        return;
    }
    let measuring = mode::measuring("idle");
    let window = Duration::from_secs(if measuring { 20 } else { 2 });
    measure("idle agent (local mode, channel open)", window, None);
    match bus::PrivateBus::start() {
        Some(bus) => measure(
            "idle agent with its panel icon (on a private session bus, no panel)",
            window,
            Some(&bus.address),
        ),
        None => println!("idle with the panel icon: not measured, dbus-daemon is missing"),
    }
}

/// Runs the agent in a fresh home, left alone for `window`, and prints its wake-ups
/// and memory; with `bus`, its panel icon is served there.
fn measure(what: &str, window: Duration, bus: Option<&str>) {
    let home = tempfile::tempdir().unwrap();
    let run = home.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let mut command = Command::new(BIN);
    command
        .args(["agent", "--no-toasts"])
        .env_clear()
        .env("HOME", home.path())
        .env("XDG_RUNTIME_DIR", &run)
        .env("USER", "bench")
        .stderr(Stdio::null());
    if let Some(address) = bus {
        command
            .args(["--tray", "true"])
            .env("DBUS_SESSION_BUS_ADDRESS", address);
    }
    let mut agent = command.spawn().unwrap();
    wait_connected(home.path());
    // Start-up work (opening stores, the first sync) is over; let it settle.
    std::thread::sleep(Duration::from_secs(1));
    let pid = agent.id();
    let before = switches(pid);
    let started = Instant::now();
    std::thread::sleep(window);
    let after = switches(pid);
    let seconds = started.elapsed().as_secs_f64();
    let rss = rss_kib(pid);
    agent.kill().unwrap();
    let _ = agent.wait();

    let mut by_name: BTreeMap<String, u64> = BTreeMap::new();
    for (tid, (name, count)) in &after {
        let earlier = before.get(tid).map_or(0, |(_, c)| *c);
        *by_name.entry(name.clone()).or_default() += count - earlier.min(*count);
    }
    let total: u64 = by_name.values().sum();
    println!(
        "{what}: {:.1} wake-ups a second over {seconds:.0} s, {} threads, VmRSS {:.1} MiB (target: at most 1 a second)",
        total as f64 / seconds,
        after.len(),
        rss as f64 / 1024.0
    );
    for (name, count) in by_name {
        println!("  {name:<18} {:.2}/s", count as f64 / seconds);
    }
}

/// The resident memory of `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Context switches of each thread: tid → (name, voluntary + involuntary).
fn switches(pid: u32) -> BTreeMap<u32, (String, u64)> {
    let mut threads = BTreeMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let task = task.unwrap().path();
        let Ok(tid) = task.file_name().unwrap().to_string_lossy().parse() else {
            continue;
        };
        let (Ok(name), Ok(status)) = (
            std::fs::read_to_string(task.join("comm")),
            std::fs::read_to_string(task.join("status")),
        ) else {
            continue; // the thread ended meanwhile
        };
        let count = status
            .lines()
            .filter(|l| {
                l.starts_with("voluntary_ctxt_switches")
                    || l.starts_with("nonvoluntary_ctxt_switches")
            })
            .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
            .sum();
        threads.insert(tid, (name.trim().to_owned(), count));
    }
    threads
}

/// Waits (up to 60 s) until `tidings status` in `home` says the agent is connected.
fn wait_connected(home: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = Command::new(BIN)
            .args(["status", "--json"])
            .env_clear()
            .env("HOME", home)
            .env("XDG_RUNTIME_DIR", home.join("run"))
            .output()
            .unwrap();
        if String::from_utf8_lossy(&status.stdout).contains("\"connected\"") {
            return;
        }
        assert!(Instant::now() < deadline, "the agent did not connect");
        std::thread::sleep(Duration::from_millis(100));
    }
}
