//! The deployment a soak runs against, as a user runs it: `tidings service` nodes (on
//! sled in their data directory, or sharing a PostgreSQL database), and `tidings agent`
//! processes, each in its own private HOME (XDG directories), signed in with `tidings
//! login` (given the list of nodes). Every process is the release binary; each can be
//! SIGKILLed and started again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

use tidings::ipc::Client;
use tokio_util::sync::CancellationToken;

use super::check::{Held, state_of};
use super::disk::Disk;
use super::pg::Cluster;
use super::proxy::Proxy;
use super::{Options, Store};

const BIN: &str = env!("CARGO_BIN_EXE_tidings");
/// How long starting a process may take.
const START_WITHIN: Duration = Duration::from_secs(30);

/// Runs `tidings` with `args` in `home` (or in none), its output kept for errors.
fn command(home: Option<&Path>, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env("TIDINGS_LOG", "warn")
        .kill_on_drop(true);
    if let Some(home) = home {
        command
            .env("HOME", home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_RUNTIME_DIR", home.join("run"));
    }
    command
}

/// Runs a command to its end; its standard output, or what went wrong.
async fn run(mut command: Command, input: Option<&str>) -> Result<String, String> {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| format!("starting tidings: {e}"))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
    }
    let output = child.wait_with_output().await.map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// A log file, opened to append to.
fn append_to(path: &Path) -> Result<std::fs::File, String> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The last line of a log file.
fn last_line(path: &Path) -> String {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.lines().last().map(str::to_owned))
        .unwrap_or_default()
}

/// Starts `process` (its standard error appended to `log`) and polls `ready` until it
/// holds; fails at once when the process exits first, or after [`START_WITHIN`], with
/// the last line it logged.
async fn start_until<F, Fut>(
    mut process: Command,
    what: &str,
    log: &Path,
    mut ready: F,
) -> Result<Child, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    process.stdout(Stdio::null()).stderr(append_to(log)?);
    let mut child = process
        .spawn()
        .map_err(|e| format!("starting {what}: {e}"))?;
    let deadline = Instant::now() + START_WITHIN;
    loop {
        if ready().await {
            return Ok(child);
        }
        let exited = child.try_wait().ok().flatten();
        if exited.is_some() || Instant::now() > deadline {
            let _ = child.kill().await;
            let why = exited.map_or_else(|| "not ready in time".to_owned(), |s| s.to_string());
            return Err(format!("{what} did not start ({why}): {}", last_line(log)));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A process of the deployment: running, or killed and not started again yet.
#[derive(Default)]
pub struct Process(Option<Child>);

impl Process {
    pub fn is_running(&self) -> bool {
        self.0.is_some()
    }

    /// SIGKILLs it (nothing when it is not running).
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill().await;
        }
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.0.as_ref().and_then(Child::id)
    }
}

/// A service node.
pub struct Service {
    pub url: String,
    /// Where it listens, `host:port`.
    pub listen: String,
    pub data_dir: PathBuf,
    /// The PostgreSQL database it shares (`None`: sled, in `data_dir`).
    store: Option<String>,
    /// Where its standard error goes.
    log: PathBuf,
    pub process: Process,
}

impl Service {
    /// Starts a node on a free loopback port, its admin socket (and its sled store when
    /// `store` is `None`) in `data_dir`, its log in `log`.
    pub async fn start(
        data_dir: PathBuf,
        store: Option<String>,
        log: PathBuf,
    ) -> Result<Self, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let listen = format!("127.0.0.1:{port}");
        let mut service = Self {
            url: format!("http://{listen}"),
            listen,
            data_dir,
            store,
            log,
            process: Process::default(),
        };
        service.restart().await?;
        Ok(service)
    }

    /// Starts the node again (after a kill) on the same port and data directory.
    pub async fn restart(&mut self) -> Result<(), String> {
        let dir = self.data_dir.to_string_lossy().into_owned();
        let mut args = vec!["service", "--listen", &self.listen, "--data-dir", &dir];
        if let Some(store) = &self.store {
            args.extend(["--store", store]);
        }
        let health = format!("{}/healthz", self.url);
        let http = reqwest::Client::new();
        let child = start_until(command(None, &args), "the service", &self.log, || {
            let (http, health) = (http.clone(), health.clone());
            async move {
                let answer = http.get(&health).send().await;
                answer.is_ok_and(|r| r.status().is_success())
            }
        })
        .await?;
        self.process.0 = Some(child);
        Ok(())
    }

    /// `tidings admin ... --json` against this node.
    pub async fn admin(&self, args: &[&str], input: Option<&str>) -> Result<Value, String> {
        let dir = self.data_dir.to_string_lossy().into_owned();
        let mut all = vec!["admin"];
        all.extend_from_slice(args);
        all.extend(["--data-dir", dir.as_str(), "--json"]);
        let text = run(command(None, &all), input).await?;
        serde_json::from_str(&text).map_err(|e| format!("admin {args:?}: {e}: {text}"))
    }
}

/// One device: a private HOME, signed in as `user`, and its agent.
pub struct Device {
    pub user: String,
    pub home: PathBuf,
    /// The nodes it signs in to, as `tidings login` takes them.
    service: String,
    /// The app it subscribes to.
    host: String,
    pub unsid: String,
    pub process: Process,
    /// Revoked, and not signed in again yet.
    pub revoked: bool,
}

impl Device {
    /// Signs a device of `user` in to `service` (a list of nodes; in `home`), starts
    /// its agent and subscribes it to `host`.
    pub async fn start(
        user: &str,
        home: PathBuf,
        service: &str,
        host: &str,
    ) -> Result<Self, String> {
        std::fs::create_dir_all(home.join("run")).map_err(|e| e.to_string())?;
        let private = std::os::unix::fs::PermissionsExt::from_mode(0o700);
        std::fs::set_permissions(home.join("run"), private).map_err(|e| e.to_string())?;
        let mut device = Self {
            user: user.to_owned(),
            home,
            service: service.to_owned(),
            host: host.to_owned(),
            unsid: String::new(),
            process: Process::default(),
            revoked: false,
        };
        device.sign_in().await?;
        Ok(device)
    }

    /// Signs in with `tidings login` (again, after a revoke), starts the agent and
    /// subscribes it: a new device of the same user, with a new UNSID.
    pub async fn sign_in(&mut self) -> Result<(), String> {
        let login = command(
            Some(&self.home),
            &[
                "login",
                &self.service,
                "--user",
                &self.user,
                "--password-stdin",
            ],
        );
        run(login, Some(&format!("{}-pw\n", self.user))).await?;
        self.restart().await?;
        let subscribed = self
            .call("subscribe", json!({"targetHostName": self.host}))
            .await?;
        subscribed["unsid"]
            .as_str()
            .unwrap_or_default()
            .clone_into(&mut self.unsid);
        Ok(())
    }

    fn socket(&self) -> PathBuf {
        self.home.join("run/tidings/agent.sock")
    }

    /// Starts the agent again (after a kill); on failure, says why with the end of its
    /// log (`agent.log` in its home).
    pub async fn restart(&mut self) -> Result<(), String> {
        let agent = command(Some(&self.home), &["agent", "--no-toasts"]);
        let what = format!("the agent of {}", self.user);
        let socket = self.socket();
        let log = self.home.join("agent.log");
        let child = start_until(agent, &what, &log, || {
            let socket = socket.clone();
            async move { Client::connect(&socket).await.is_ok() }
        })
        .await?;
        self.process.0 = Some(child);
        Ok(())
    }

    /// Runs `tidings` with `args` as this device's user would (the CLI talks to its
    /// agent); its standard output, or what went wrong.
    pub async fn cli(&self, args: &[&str]) -> Result<String, String> {
        run(command(Some(&self.home), args), None).await
    }

    /// One IPC call to the agent.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, String> {
        let mut client = Client::connect(&self.socket())
            .await
            .map_err(|e| e.to_string())?;
        client.call(method, params).await.map_err(|e| e.to_string())
    }

    /// Every notification the agent holds, by its `appNotificationId`: (id, state).
    pub async fn history(&self) -> Result<Held, String> {
        let mut all = HashMap::new();
        let mut before: Option<u64> = None;
        loop {
            let mut params = json!({"limit": 1000});
            if let Some(before) = before {
                params["before"] = before.into();
            }
            let page = self.call("list", params).await?;
            for n in page["items"].as_array().into_iter().flatten() {
                let text = |key: &str| n[key].as_str().unwrap_or_default().to_owned();
                all.insert(text("appNotificationId"), (text("id"), state_of(n)));
            }
            match page["next"].as_u64() {
                Some(next) => before = Some(next),
                None => return Ok(all),
            }
        }
    }
}

/// What a run deploys.
pub struct Deployment {
    pub nodes: Vec<Service>,
    /// The proxy in front of each node, through which the devices reach it.
    pub proxies: Vec<Arc<Proxy>>,
    pub cluster: Option<Arc<Cluster>>,
    /// The sled node's own disk (none on PostgreSQL, or when it could not be mounted).
    pub disk: Option<Arc<Disk>>,
    /// The app, as `app add` answered.
    pub app: serde_json::Value,
    /// The user of each device.
    pub users: Vec<String>,
    pub devices: Vec<Device>,
}

/// The nodes (and their database, and a proxy in front of each until `stop`), the app,
/// and each device with its user. A device is given every node (through its proxy),
/// its own first: device `d` of a user starts on node `d`.
pub async fn deploy(
    options: &Options,
    dir: &Path,
    stop: &CancellationToken,
) -> Result<Deployment, String> {
    let cluster = match options.store {
        Store::Postgres => Some(Arc::new(
            tokio::task::spawn_blocking(Cluster::start)
                .await
                .map_err(|e| format!("starting PostgreSQL: {e}"))?,
        )),
        Store::Sled => None,
    };
    let database = match &cluster {
        Some(cluster) => {
            let cluster = cluster.clone();
            Some(
                tokio::task::spawn_blocking(move || cluster.new_database())
                    .await
                    .map_err(|e| e.to_string())?,
            )
        }
        None => None,
    };
    let disk = match options.store {
        Store::Sled => Disk::mount(&dir.join("disk"))?.map(Arc::new),
        Store::Postgres => None,
    };
    // The sled node's store goes on its own disk; the ballast that fills it goes beside
    // the store, not in it, and the logs stay off it.
    let base = disk
        .as_ref()
        .map_or_else(|| dir.to_owned(), |disk| disk.path().to_owned());
    let mut nodes = Vec::new();
    for n in 0..options.store.nodes() {
        let (data, log) = (
            base.join(format!("node{n}")),
            dir.join(format!("node{n}.log")),
        );
        nodes.push(Service::start(data, database.clone(), log).await?);
    }
    let mut proxies = Vec::new();
    for node in &nodes {
        proxies.push(Proxy::start(node.listen.clone(), stop.clone()).await?);
    }
    let urls: Vec<&str> = proxies.iter().map(|proxy| proxy.url.as_str()).collect();
    let app = nodes[0].admin(&["app", "add", "contoso.com"], None).await?;
    let mut users = Vec::new();
    let mut devices = Vec::new();
    for user in super::run::users(options) {
        let password = format!("{user}-pw\n");
        nodes[0]
            .admin(&["user", "add", &user, "--password-stdin"], Some(&password))
            .await?;
        for d in 0..options.devices_per_user {
            let home = dir.join(format!("{user}-device{d}"));
            let mut list = urls.clone();
            list.rotate_left(d % urls.len());
            let list = list.join(",");
            devices.push(Device::start(&user, home, &list, "contoso.com").await?);
            users.push(user.clone());
        }
    }
    Ok(Deployment {
        nodes,
        proxies,
        cluster,
        disk,
        app,
        users,
        devices,
    })
}
