//! A soak under faults: the release binary run as a user runs it (two `tidings service`
//! nodes on a private PostgreSQL cluster, or one on sled; `tidings agent` processes of
//! several users reaching the nodes through proxies; the runner's own device of each
//! user, some of them web sessions; an app backend posting at a steady rate with
//! bursts, replacements, group deletes and expiring posts), while a seeded schedule
//! SIGKILLs and restarts nodes and agents, restarts PostgreSQL, cuts, stalls and slows
//! links, revokes devices, fills the sled node's disk, and reads, dismisses and deletes
//! from agents, the CLI and web sessions. At the end every device is compared with what
//! the backend was told: nothing answered `201` is missing, nothing is there that was
//! never posted, every read and dismiss reached every device, a user's devices agree,
//! what expired is purged; every change came once and in `seq` order on the runner's
//! channels; the processes' memory, descriptors, threads and the store's size are
//! sampled throughout and, on a long run, judged flat. It prints a report and fails on
//! any violation.
//!
//! `cargo bench --bench soak -- --minutes 2 --seed 42` (also `--store sled`, `--users
//! N`, `--rate POSTS_PER_S`, `--plot PATH`); without `--seed` one is drawn and printed,
//! and the same seed replays the same schedule of faults (the report prints its
//! digest). Under `cargo test` it runs for a few seconds, as a smoke test.
//! `docs/soak.md` says what it checks and what not yet.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    missing_docs
)]

#[path = "support/soak/check.rs"]
mod check;
#[path = "support/soak/deploy.rs"]
mod deploy;
#[path = "support/soak/disk.rs"]
mod disk;
#[path = "support/soak/load.rs"]
mod load;
#[path = "support/mode.rs"]
mod mode;
#[path = "../tests/it/pg.rs"]
#[allow(dead_code)]
mod pg;
#[path = "support/soak/plan.rs"]
mod plan;
#[path = "support/soak/plot.rs"]
mod plot;
#[path = "support/soak/proxy.rs"]
mod proxy;
#[path = "support/soak/report.rs"]
mod report;
#[path = "support/soak/run.rs"]
mod run;
#[path = "support/soak/settle.rs"]
mod settle;
#[path = "support/soak/watch.rs"]
mod watch;
#[path = "support/soak/web.rs"]
mod web;

use std::time::Duration;

/// Where the service keeps its data.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Store {
    /// Two nodes on a private PostgreSQL cluster (the default).
    Postgres,
    /// One node on sled.
    Sled,
}

impl Store {
    /// The nodes a run deploys.
    pub fn nodes(self) -> usize {
        match self {
            Store::Postgres => 2,
            Store::Sled => 1,
        }
    }
}

/// How a run is set up.
pub struct Options {
    pub store: Store,
    pub length: Duration,
    pub seed: u64,
    pub users: usize,
    pub devices_per_user: usize,
    pub rate: u32,
    pub sample_every: Duration,
    /// Where the resources' plot (SVG) is written.
    pub plot: std::path::PathBuf,
}

fn options(measuring: bool) -> Options {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let minutes: f64 = value("--minutes").map_or(if measuring { 2.0 } else { 0.1 }, |m| {
        m.parse().expect("--minutes takes a number")
    });
    let seed = value("--seed").map_or_else(
        || u64::from(std::process::id()) ^ std::time::UNIX_EPOCH.elapsed().unwrap().as_secs(),
        |s| s.parse().expect("--seed takes a whole number"),
    );
    let store = match value("--store").as_deref() {
        None | Some("postgres") => Store::Postgres,
        Some("sled") => Store::Sled,
        Some(other) => panic!("--store takes postgres or sled, not {other}"),
    };
    Options {
        store,
        length: Duration::from_secs_f64(minutes * 60.0),
        seed,
        users: value("--users").map_or(if measuring { 10 } else { 2 }, |u| {
            u.parse().expect("--users takes a whole number")
        }),
        devices_per_user: 2,
        rate: value("--rate").map_or(20, |r| r.parse().expect("--rate takes a whole number")),
        sample_every: if measuring {
            Duration::from_secs(5)
        } else {
            Duration::from_secs(1)
        },
        plot: value("--plot").map_or_else(
            || std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("soak-{seed}.svg")),
            std::path::PathBuf::from,
        ),
    }
}

fn main() {
    let measuring = mode::measuring("soak");
    tidings::tls::install_provider();
    let options = options(measuring);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let outcome = runtime.block_on(run::soak(&options));
    match outcome {
        Ok(outcome) => {
            let grew = report::report(&options, &outcome, measuring);
            if outcome.violations.total() > 0 || grew {
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("soak: the run itself failed: {e}");
            std::process::exit(2);
        }
    }
}
