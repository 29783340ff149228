//! What a measure cost, for the capacity model (`docs/capacity.md`): CPU time of the
//! service nodes (the bench's threads named [`NODE_THREADS`]: the nodes run in-process,
//! beside the load), CPU time of the PostgreSQL server (its postmaster and every child,
//! from `/proc`), and the WAL PostgreSQL wrote (`pg_current_wal_lsn`).

use std::time::Duration;

/// The name of the service runtime's threads.
pub const NODE_THREADS: &str = "tidings-node";

/// The cost counters at one moment.
#[derive(Clone, Copy, Default)]
pub struct Reading {
    node: Duration,
    database: Duration,
    wal: u64,
}

/// What one measure spent, and per how many units (posts or deliveries).
pub struct Spent {
    pub node: Duration,
    pub database: Duration,
    pub wal: u64,
}

impl Spent {
    /// "node X ms, PostgreSQL Y ms, WAL Z KiB per 1,000 <unit>".
    pub fn per_thousand(&self, units: u64, unit: &str, with_database: bool) -> String {
        let per = |d: Duration| d.as_secs_f64() * 1e3 * 1000.0 / units.max(1) as f64;
        if !with_database {
            return format!("node {:.0} ms CPU per 1,000 {unit}", per(self.node));
        }
        format!(
            "node {:.0} ms, PostgreSQL {:.0} ms CPU, WAL {:.0} KiB per 1,000 {unit}",
            per(self.node),
            per(self.database),
            self.wal as f64 / 1024.0 * 1000.0 / units.max(1) as f64
        )
    }
}

/// Reads the counters: `server` is the PostgreSQL postmaster's pid and `url` a
/// database of it, when the store is PostgreSQL.
pub fn read(server: Option<u32>, url: Option<&str>) -> Reading {
    Reading {
        node: node_cpu(),
        database: server.map(tree_cpu).unwrap_or_default(),
        wal: url.map(wal_position).unwrap_or_default(),
    }
}

/// What was spent between `before` and now.
pub fn since(before: Reading, server: Option<u32>, url: Option<&str>) -> Spent {
    let now = read(server, url);
    Spent {
        node: now.node.saturating_sub(before.node),
        database: now.database.saturating_sub(before.database),
        wal: now.wal.saturating_sub(before.wal),
    }
}

/// CPU time (user + system) in a `/proc/.../stat` line.
fn cpu_in(stat: &str) -> Option<(u32, Duration)> {
    let after_name = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let parent = fields.get(1)?.parse().ok()?;
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // /proc counts in USER_HZ, 100 a second on Linux.
    Some((parent, Duration::from_millis(ticks * 10)))
}

fn node_cpu() -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|name| name.trim() == NODE_THREADS)
        })
        .filter_map(|task| std::fs::read_to_string(task.path().join("stat")).ok())
        .filter_map(|stat| cpu_in(&stat).map(|(_, cpu)| cpu))
        .sum()
}

/// CPU time of process `root` and its children (PostgreSQL's backends, WAL writer...).
fn tree_cpu(root: u32) -> Duration {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Duration::ZERO;
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let (parent, cpu) = cpu_in(&stat)?;
            (pid == root || parent == root).then_some(cpu)
        })
        .sum()
}

/// The database server's WAL position, in bytes.
fn wal_position(url: &str) -> u64 {
    let mut client = Blocking::connect(url);
    let row = client
        .query_one(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint",
            &[],
        )
        .unwrap();
    u64::try_from(row.get::<_, i64>(0)).unwrap_or_default()
}

/// The size of the `notifications` table with its indexes, and its rows.
pub fn notifications_size(url: &str) -> (u64, u64) {
    let mut client = Blocking::connect(url);
    let row = client
        .query_one(
            "SELECT pg_total_relation_size('notifications'), count(*) FROM notifications",
            &[],
        )
        .unwrap();
    let (bytes, rows): (i64, i64) = (row.get(0), row.get(1));
    (bytes.unsigned_abs(), rows.unsigned_abs())
}

/// The server options that load `pg_stat_statements`.
pub const STATEMENTS_OPTIONS: &str = "-c shared_preload_libraries=pg_stat_statements";

/// The bench cluster's server options: pg_stat_statements when asked for, then
/// whatever `TIDINGS_BENCH_PG_OPTIONS` adds (`-c name=value ...`, to try a setting).
pub fn server_options() -> String {
    let mut options = String::new();
    if statements_wanted() {
        options += STATEMENTS_OPTIONS;
    }
    if let Ok(extra) = std::env::var("TIDINGS_BENCH_PG_OPTIONS") {
        options += " ";
        options += &extra;
    }
    options
}

/// Whether `TIDINGS_BENCH_STATEMENTS` asks for the statements' costs.
pub fn statements_wanted() -> bool {
    std::env::var_os("TIDINGS_BENCH_STATEMENTS").is_some_and(|v| v != "0")
}

/// Prints the statements the database at `url` spent most time on since the last call
/// (calls, time per call, rows), then starts counting afresh.
pub fn print_statements(url: &str) {
    let mut client = Blocking::connect(url);
    client.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
    for row in client.query(
        "SELECT calls, total_exec_time, rows, left(regexp_replace(query, '\\s+', ' ', 'g'), 80)
         FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 8",
    ) {
        let (calls, total, rows, query): (i64, f64, i64, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        println!(
            "    {calls:>7} calls {:>7.1} us each {rows:>7} rows  {query}",
            total * 1e3 / calls.max(1) as f64
        );
    }
    client.execute("SELECT pg_stat_statements_reset()");
}

/// tokio-postgres driven by a small runtime of its own (called between measures).
struct Blocking {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl Blocking {
    fn connect(url: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            client
        });
        Self { runtime, client }
    }

    fn query(&mut self, sql: &str) -> Vec<tokio_postgres::Row> {
        self.runtime.block_on(self.client.query(sql, &[])).unwrap()
    }

    fn execute(&mut self, sql: &str) {
        self.runtime
            .block_on(self.client.batch_execute(sql))
            .unwrap();
    }

    fn query_one(
        &mut self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<tokio_postgres::Row, tokio_postgres::Error> {
        self.runtime.block_on(self.client.query_one(sql, params))
    }
}
