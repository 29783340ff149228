//! The soak's report: what ran, what was done to it, what was found, and the resources
//! over time.

use std::time::Duration;

use super::check::{self, FLAT_BELOW, Sample};
use super::run::Outcome;
use super::settle::{CONVERGE_WITHIN, PURGE_WITHIN};
use super::{Options, Store};

/// Runs shorter than this are too short to judge whether the resources are flat (two
/// minutes holds a handful of a node's restarts).
const JUDGED_FROM: Duration = Duration::from_secs(20 * 60);

/// Prints the report; whether a resource was judged to grow (a failure, as a
/// violation is).
pub fn report(options: &Options, outcome: &Outcome, measuring: bool) -> bool {
    let [posted, refused, unanswered] = outcome.ledger.counts;
    println!(
        "soak: {:.1} min, seed {} (schedule digest {:016x}, {} faults), {} users x {} devices, {}",
        options.length.as_secs_f64() / 60.0,
        options.seed,
        outcome.digest,
        outcome.scheduled,
        options.users,
        options.devices_per_user,
        match options.store {
            Store::Postgres => "two nodes on PostgreSQL (--store postgres)",
            Store::Sled => "one node on sled (--store sled)",
        }
    );
    println!(
        "posts: {posted} answered 201, {refused} refused, {unanswered} unanswered (node killed); at the end the devices hold {} notifications",
        outcome.held
    );
    let [deleted, refused_deletes, unanswered_deletes] = outcome.ledger.group_deletes;
    let gone: usize = outcome
        .ledger
        .gone
        .values()
        .map(std::collections::HashSet::len)
        .sum();
    println!(
        "group deletes: {deleted} answered 204 ({gone} notifications gone with them), {refused_deletes} refused, {unanswered_deletes} unanswered"
    );
    let (frames, connections) = outcome.watched;
    println!(
        "the runner's own device of each user took {frames} change frames over {connections} channel connections, each checked to come once and in seq order"
    );
    let faults: Vec<String> = outcome
        .faults
        .iter()
        .map(|(kind, n)| format!("{kind}: {n}"))
        .collect();
    println!("faults: {}", faults.join("; "));
    match outcome.converged_in {
        Some(took) => println!(
            "converged {:.1} s after the faults stopped",
            took.as_secs_f64()
        ),
        None => println!(
            "NOT CONVERGED (within {} s, or an agent was down)",
            CONVERGE_WITHIN.as_secs()
        ),
    }
    let expiring = outcome.ledger.expires.len();
    match outcome.purged_in {
        Some(took) => println!(
            "expiring posts: {expiring} (3 to 20 s); every agent had purged the expired ones {:.1} s after the last expiry",
            took.as_secs_f64()
        ),
        None => println!(
            "expiring posts: {expiring}; NOT all purged within {} s of the last expiry",
            PURGE_WITHIN.as_secs()
        ),
    }
    if outcome.violations.total() == 0 {
        println!("violations: none");
    }
    for (kind, count, first) in &outcome.violations.by_kind {
        println!(
            "VIOLATION {kind}: {count} (first: {first}; replay with --seed {})",
            options.seed
        );
    }
    let judged = measuring && options.length >= JUDGED_FROM;
    let grew = resources(&outcome.samples, judged);
    match super::plot::plot(&outcome.samples, &options.plot) {
        Ok(()) => println!("resources plotted: {}", options.plot.display()),
        Err(e) => println!(
            "the plot could not be drawn ({}): {e}",
            options.plot.display()
        ),
    }
    grew
}

/// Prints the resources as a table and their growth; whether, `judged`, one grew.
fn resources(samples: &[Sample], judged: bool) -> bool {
    println!("| at | service RSS | fds | threads | store | kept | largest agent RSS | its fds |");
    println!("|---|---|---|---|---|---|---|---|");
    let step = (samples.len() / 8).max(1);
    for s in samples.iter().step_by(step).chain(samples.last()) {
        println!(
            "| {:.0} s | {:.1} MiB | {} | {} | {:.1} MiB | {} | {:.1} MiB | {} |",
            s.at.as_secs_f64(),
            s.service.rss_kib as f64 / 1024.0,
            s.service.fds,
            s.service.threads,
            s.store_bytes as f64 / f64::from(1 << 20),
            s.kept,
            s.agent.rss_kib as f64 / 1024.0,
            s.agent.fds
        );
    }
    let growth = check::growth(samples);
    let shown: Vec<String> = growth
        .iter()
        .map(|(name, pct)| format!("{name} {pct:+.1} %"))
        .collect();
    println!(
        "growth over the last half (the third quarter's peak to the fourth's): {}",
        shown.join(", ")
    );
    if !judged {
        println!(
            "  (not judged: a run of under {} minutes is too short to call flat)",
            JUDGED_FROM.as_secs() / 60
        );
        return false;
    }
    let grew: Vec<_> = growth
        .iter()
        .filter(|(_, pct)| *pct >= FLAT_BELOW)
        .collect();
    for (name, pct) in &grew {
        println!("RESOURCE GREW: {name} {pct:+.1} % (flat is under {FLAT_BELOW} %)");
    }
    if grew.is_empty() {
        println!("resources: flat (each under {FLAT_BELOW} %)");
    }
    !grew.is_empty()
}
