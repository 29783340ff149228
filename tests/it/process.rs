//! The real `tidings` binary as a subprocess: the README's service workflow, SIGTERM
//! shutdown, an agent catching up after the service was killed, and the admin command
//! line (SIGKILL durability is in `crash.rs`).

use std::path::Path;
use std::process::Stdio;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{App, DEADLINE, Device, Event, app_token, post_as_app, sign_in_at};

const BIN: &str = env!("CARGO_BIN_EXE_tidings");

/// A service started as a subprocess.
pub struct Process {
    pub child: Child,
    pub url: String,
    /// What it logged after it began listening.
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Process {
    pub async fn start(data_dir: &Path) -> Self {
        Self::start_on(data_dir, "127.0.0.1:0").await
    }

    pub async fn start_on(data_dir: &Path, listen: &str) -> Self {
        Self::start_with(data_dir, listen, &[]).await
    }

    /// Starts the service on sled whatever the run (a test of sled's own features:
    /// backups, a full disk).
    pub async fn start_sled(data_dir: &Path) -> Self {
        Self::start_with(data_dir, "127.0.0.1:0", &["--store", "sled"]).await
    }

    /// Starts the service with `extra` arguments (limits, for the hostile tests). On the
    /// PostgreSQL run (`TIDINGS_TEST_STORE=postgres`) it keeps its data in a database of
    /// its own (the same one again when started on the same data directory), unless
    /// `extra` names a store.
    pub async fn start_with(data_dir: &Path, listen: &str, extra: &[&str]) -> Self {
        Self::spawn(data_dir, listen, extra, "info").await
    }

    /// Starts the service logging at `level` (`debug`: everything it would say).
    pub async fn start_logging(data_dir: &Path, level: &str) -> Self {
        Self::spawn(data_dir, "127.0.0.1:0", &[], level).await
    }

    async fn spawn(data_dir: &Path, listen: &str, extra: &[&str], level: &str) -> Self {
        let mut store = Vec::new();
        if !extra.contains(&"--store") {
            tidings::config::create_private_dir(data_dir).unwrap();
            if let Some(config) = crate::pg::database_for(data_dir) {
                store = vec!["--store".to_owned(), config.url];
            }
        }
        let mut child = Command::new(BIN)
            .args(["service", "--listen", listen, "--data-dir"])
            .arg(data_dir)
            .args(&store)
            .args(extra)
            .env("TIDINGS_LOG", level)
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        // Kept for `logged` (from the first line), and shown with a failing test's output.
        let log = std::sync::Arc::<std::sync::Mutex<Vec<String>>>::default();
        let kept = log.clone();
        let url = tokio::time::timeout(DEADLINE, async {
            while let Some(line) = lines.next_line().await.unwrap() {
                eprintln!("service: {line}");
                kept.lock().unwrap().push(line.clone());
                if let Some(at) = line.find("listening on http") {
                    let rest = &line[at + "listening on ".len()..];
                    return rest.split_whitespace().next().unwrap().to_owned();
                }
            }
            panic!("the service exited before listening");
        })
        .await
        .expect("the service did not start listening");
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("service: {line}");
                kept.lock().unwrap().push(line);
            }
        });
        Self { child, url, log }
    }
}

impl Process {
    /// Everything it logged so far.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Whether it logged a line containing every one of `parts`.
    pub fn logged(&self, parts: &[&str]) -> bool {
        let log = self.log.lock().unwrap();
        log.iter()
            .any(|line| parts.iter().all(|part| line.contains(part)))
    }

    /// Sends it `signal`.
    pub fn signal(&self, signal: rustix::process::Signal) {
        let pid = i32::try_from(self.child.id().unwrap()).unwrap();
        rustix::process::kill_process(rustix::process::Pid::from_raw(pid).unwrap(), signal)
            .unwrap();
    }
}

/// Runs `tidings admin --data-dir DIR ARGS...`, feeding `stdin`; returns (code, stdout).
pub async fn admin(data_dir: &Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .arg("admin")
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let output = child.wait_with_output().await.unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

pub async fn provision(data_dir: &Path, url: &str) -> (App, Device, String) {
    provision_with(data_dir, url, &crate::helpers::http_client()).await
}

/// [`provision`], talking HTTP(S) with `http`.
pub async fn provision_with(
    data_dir: &Path,
    url: &str,
    http: &reqwest::Client,
) -> (App, Device, String) {
    let (code, _, err) = admin(
        data_dir,
        &["user", "add", "alice", "--password-stdin"],
        "alice-pw\n",
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = admin(data_dir, &["app", "add", "contoso.com", "--json"], "").await;
    assert_eq!(code, 0, "{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    let app = app_token(http, url, &created).await;
    let device = sign_in_at(http, url, "alice", "linux").await;
    let unsid = device.subscribe("contoso.com").await;
    (app, device, unsid)
}

#[tokio::test]
async fn sigterm_closes_channels_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("service");
    let mut service = Process::start(&data).await;
    let (_, device, _) = provision(&data, &service.url).await;
    let mut channel = device.channel(0).await;
    channel.until_synced().await;
    let (code, out, _) = admin(&data, &["device", "list", "--json"], "").await;
    assert_eq!(code, 0);
    let devices: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(devices[0]["connected"], true);
    assert_eq!(devices[0]["user"], "alice");
    let (code, table, _) = admin(&data, &["device", "list"], "").await;
    assert_eq!(code, 0);
    assert!(table.starts_with("ID "), "{table}");
    assert!(table.contains("connected"), "{table}");

    service.signal(rustix::process::Signal::TERM);
    match channel.next_event().await {
        Event::Closed(code) => assert_eq!(code, Some(1001)),
        Event::Frame(frame) => panic!("expected a close frame, got {frame:?}"),
    }
    let status = tokio::time::timeout(DEADLINE, service.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(
        !data.join("admin.sock").exists(),
        "the admin socket is removed"
    );
    let (code, _, err) = admin(&data, &["device", "list"], "").await;
    assert_eq!(code, 3, "not running: {err}");
    assert!(err.contains("tidings service --data-dir"), "{err}");
}

#[tokio::test]
async fn an_agent_catches_up_by_itself_after_the_service_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("service");
    let mut service = Process::start(&data).await;
    let (app, device, unsid) = provision(&data, &service.url).await;
    let agent_dir = dir.path().join("agent");
    let settings =
        tidings::agent::Settings::new(service.url.clone(), device.refresh.clone(), agent_dir);
    let agent = crate::test_agent::TestAgent::launch(settings);
    let handle = agent.handle.clone();
    let http = crate::helpers::http_client();
    for i in 0..50 {
        post_as_app(
            &http,
            &service.url,
            &app.token,
            &unsid,
            &format!("before {i}"),
        )
        .await;
    }
    service.child.kill().await.unwrap();
    let listen = service.url.trim_start_matches("http://").to_owned();
    let service = Process::start_on(&data, &listen).await;
    for i in 0..50 {
        post_as_app(
            &http,
            &service.url,
            &app.token,
            &unsid,
            &format!("after {i}"),
        )
        .await;
    }
    crate::helpers::wait_until("the agent has all 100", || async {
        handle.store().cursor().unwrap().0 == 100
    })
    .await;
    assert_eq!(handle.store().len(), 100);
    agent.stop().await;
    drop(service);
}

#[tokio::test]
async fn a_second_credential_for_a_host_needs_another() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("service");
    let _service = Process::start(&data).await;
    let (code, _, err) = admin(&data, &["app", "add", "contoso.com"], "").await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = admin(&data, &["app", "add", "contoso.com"], "").await;
    assert_eq!(code, 1);
    assert!(err.contains("--another"), "{err}");
    let (code, _, err) = admin(&data, &["app", "add", "contoso.com", "--another"], "").await;
    assert_eq!(code, 0, "{err}");
    let (_, list, _) = admin(&data, &["app", "list", "--json"], "").await;
    let apps: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(apps.as_array().unwrap().len(), 2);
}
