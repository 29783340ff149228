//! The real binary under a stand-in for systemd: a datagram socket given as
//! `NOTIFY_SOCKET` reads what a `Type=notify` unit would send: `READY=1` once it
//! serves, `STATUS=` lines as the link changes, and `WATCHDOG=1` every half of
//! `WATCHDOG_USEC`, which stop when the agent's loop hangs (its test-only switch).

use std::path::Path;
use std::time::Duration;

use tokio::net::UnixDatagram;

use crate::helpers::{DEADLINE, wait_until};
use crate::home::{Home, terminate};

/// The stand-in for systemd's notify socket.
struct Manager {
    socket: UnixDatagram,
    heard: Vec<String>,
}

impl Manager {
    fn bind(path: &Path) -> Self {
        Self {
            socket: UnixDatagram::bind(path).unwrap(),
            heard: Vec::new(),
        }
    }

    /// The next message, or `None` after `wait`.
    async fn next_within(&mut self, wait: Duration) -> Option<String> {
        let mut buffer = vec![0; 4096];
        let received = tokio::time::timeout(wait, self.socket.recv(&mut buffer)).await;
        let length = received.ok()?.unwrap();
        let message = String::from_utf8_lossy(&buffer[..length])
            .trim_end()
            .to_owned();
        self.heard.push(message.clone());
        Some(message)
    }

    /// Reads messages until one satisfies `wanted`; fails after the deadline.
    async fn until(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_within(left).await {
                Some(message) if wanted(&message) => return message,
                Some(_) => {}
                None => panic!("no {what} within the deadline; heard {:?}", self.heard),
            }
        }
    }
}

/// A home whose agent reports to a stand-in manager, with a 200 ms watchdog.
fn supervised_home() -> (Home, Manager) {
    let mut home = Home::new();
    let socket = home.path("notify.sock");
    let manager = Manager::bind(&socket);
    home.set_env("NOTIFY_SOCKET", socket.to_str().unwrap());
    home.set_env("WATCHDOG_USEC", "200000");
    (home, manager)
}

#[tokio::test]
async fn the_agent_says_when_it_is_ready_how_its_link_is_and_pings_its_watchdog() {
    let (home, mut manager) = supervised_home();
    let agent = home.agent();
    manager.until("READY=1", |m| m == "READY=1").await;
    // Ready means served: the IPC socket answers at once.
    assert!(tidings::ipc::Client::connect(&home.socket()).await.is_ok());
    manager
        .until("the link's status", |m| m.starts_with("STATUS=connected"))
        .await;
    for _ in 0..3 {
        manager
            .until("a watchdog ping", |m| m == "WATCHDOG=1")
            .await;
    }
    terminate(agent).await;
    manager.until("STOPPING=1", |m| m == "STOPPING=1").await;
}

#[tokio::test]
#[cfg_attr(
    not(feature = "test-hooks"),
    ignore = "the hang switch is built with --features test-hooks only (scripts/test.sh)"
)]
async fn a_hung_agent_loop_stops_the_watchdog_pings() {
    let (mut home, mut manager) = supervised_home();
    home.set_env("TIDINGS_TEST_HANG_SYNC_LOOP", "300ms");
    let mut agent = home.agent();
    manager
        .until("a watchdog ping", |m| m == "WATCHDOG=1")
        .await;
    wait_until("the loop hangs", || async {
        home.logged(&["the sync loop hangs now"])
    })
    .await;
    // Every ping came from the loop's own task before it logged that line: drop what
    // is queued, then nothing may come for ten times the 100 ms interval.
    let mut buffer = [0; 4096];
    while manager.socket.try_recv(&mut buffer).is_ok() {}
    if let Some(message) = manager.next_within(Duration::from_secs(1)).await {
        assert_ne!(
            message, "WATCHDOG=1",
            "the pings go on: {:?}",
            manager.heard
        );
    }
    agent.kill().await.unwrap();
}

#[tokio::test]
async fn the_service_says_when_it_is_ready_and_pings_its_watchdog() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("notify.sock");
    let mut manager = Manager::bind(&socket);
    let data = dir.path().join("data");
    let mut service = tokio::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args(["service", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("NOTIFY_SOCKET", &socket)
        .env("WATCHDOG_USEC", "200000")
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let status = manager
        .until("the status", |m| {
            m.starts_with("STATUS=listening on http://127.0.0.1:")
        })
        .await;
    manager.until("READY=1", |m| m == "READY=1").await;
    let url = status.trim_start_matches("STATUS=listening on ");
    let health = crate::helpers::http_client()
        .get(format!("{url}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "ready means served");
    manager
        .until("a watchdog ping", |m| m == "WATCHDOG=1")
        .await;
    service.kill().await.unwrap();
}
