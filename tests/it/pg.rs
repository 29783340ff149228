//! A private PostgreSQL cluster for the tests: `initdb` in a temp dir, the server on
//! 127.0.0.1 on a free port, its socket in the same dir. Nothing is set up by hand, and
//! no server of the machine is touched.
//!
//! PostgreSQL refuses to run as root; as root (CI) the cluster runs as the `postgres`
//! user that Debian's package makes (`runuser`). Without PostgreSQL installed the tests
//! that need it fail and say how to install it: they never pass silently.
//!
//! The server must not outlive the test process, even when it is killed: a keeper
//! shell reads the test process's end of a pipe and stops the server when it closes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// Environment variable that runs the in-process service of every test on PostgreSQL
/// (`TIDINGS_TEST_STORE=postgres`; the test command runs the suite both ways).
pub const STORE_VAR: &str = "TIDINGS_TEST_STORE";

/// Whether this run's services use PostgreSQL.
pub fn enabled() -> bool {
    std::env::var(STORE_VAR).is_ok_and(|v| v == "postgres")
}

/// With `TIDINGS_TEST_STORE=postgres`: the database of the test service whose files are
/// in `dir` (made on its first start, and written down there, so a restarted service
/// finds the same one). `None`: sled.
pub fn database_for(dir: &Path) -> Option<tidings::service::store::PgConfig> {
    if !enabled() {
        return None;
    }
    let file = dir.join("database-url");
    let url = std::fs::read_to_string(&file).unwrap_or_else(|_| {
        let url = shared().new_database();
        std::fs::write(&file, &url).unwrap();
        url
    });
    let mut config = tidings::service::store::PgConfig::new(url);
    config.pool_size = 4;
    Some(config)
}

/// A running private cluster; stopped and removed when dropped (and by its keeper at
/// exit).
pub struct Cluster {
    pub dir: tempfile::TempDir,
    /// Server options beyond the port, socket and address (e.g. TLS).
    extra: String,
    pub port: u16,
    keeper: Option<Child>,
    databases: AtomicU32,
}

/// The cluster shared by every test of this process.
pub fn shared() -> &'static Cluster {
    static SHARED: OnceLock<Cluster> = OnceLock::new();
    SHARED.get_or_init(Cluster::start)
}

impl Cluster {
    /// `initdb` and start a new cluster.
    pub fn start() -> Self {
        Self::start_with(|_| String::new())
    }

    /// `initdb` and start a new cluster with the server options `extra` gives, which
    /// may put files in the cluster's directory first (owned by the server's user).
    pub fn start_with(extra: impl FnOnce(&Path) -> String) -> Self {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("tidings-pg-")
            .tempdir()
            .unwrap();
        let as_root = is_root();
        let extra = extra(dir.path());
        if as_root {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path()));
        }
        let data = dir.path().join("data");
        run(postgres_cmd(as_root, &bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
            .arg("-D")
            .arg(&data));
        let port = free_port();
        let mut cluster = Self {
            dir,
            extra,
            port,
            keeper: None,
            databases: AtomicU32::new(0),
        };
        cluster.start_server();
        cluster.keeper = Some(keeper(as_root, &bin, cluster.dir.path()));
        cluster
    }

    /// The cluster's data directory.
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the server (again) and waits until it takes connections.
    pub fn start_server(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=400 -c shared_buffers=32MB {}",
            self.port,
            self.dir.path().display(),
            self.extra
        );
        run(postgres_cmd(is_root(), &bin_dir().join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-o", &options, "-w", "-t", "30", "start"]));
    }

    /// Stops the server (fast: sessions are ended, as an administrator's restart does).
    pub fn stop_server(&self) {
        run(postgres_cmd(is_root(), &bin_dir().join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w", "stop"]));
    }

    /// The server's process id (its postmaster), while it runs.
    #[allow(dead_code)] // the nodes bench's capacity measures
    pub fn server_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.data().join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// The connection URL of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{name}?sslmode=disable",
            self.port
        )
    }

    /// Creates a new, empty database and returns its URL.
    pub fn new_database(&self) -> String {
        let n = self.databases.fetch_add(1, Ordering::SeqCst);
        let name = format!("t{}_{n}", std::process::id());
        run(Command::new(bin_dir().join("createdb"))
            .args(["-h", "127.0.0.1", "-U", "postgres", "-p"])
            .arg(self.port.to_string())
            .arg(&name));
        self.url(&name)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Closing the keeper's stdin stops the server.
        if let Some(mut keeper) = self.keeper.take() {
            drop(keeper.stdin.take());
            let _ = keeper.wait();
        }
    }
}

/// The directory of Debian's PostgreSQL programs (the newest version installed).
fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path().join("bin"))
                .filter(|bin| bin.join("initdb").exists())
                .collect()
        })
        .unwrap_or_default();
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or_default()
    });
    versions.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): these tests need it; `apt-get install postgresql`, or run ./scripts/test.sh as root, which installs it"
        )
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A command that runs `program` as the `postgres` user when we are root.
fn postgres_cmd(as_root: bool, program: &Path) -> Command {
    if as_root {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// Runs a command to completion; a failure fails the test with its output.
fn run(cmd: &mut Command) {
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        output.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A shell that stops the server once its stdin (held by this process) closes, then
/// removes the cluster's directory: the shared cluster is a static, never dropped, so
/// its `TempDir` never removes it (each run of the suite left about 1.5 GB in /tmp).
fn keeper(as_root: bool, bin: &Path, dir: &Path) -> Child {
    let script = format!(
        "read _; {} -D {} -m immediate stop >/dev/null 2>&1; rm -rf {}",
        bin.join("pg_ctl").display(),
        dir.join("data").display(),
        dir.display()
    );
    let mut cmd = postgres_cmd(as_root, Path::new("/bin/sh"));
    cmd.args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
