//! Toasts on a real desktop stack: Xvfb, a private D-Bus session bus and dunst (the
//! notification server), driven by the real `tidings agent` binary. Nothing here is a
//! stand-in: dunst shows the toasts, `dunstctl` plays the user.

use std::process::Stdio;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{DEADLINE, TestService, wait_until};
use crate::home::{Home, terminate};

/// A virtual X display.
struct Display {
    _xvfb: Child,
    name: String,
}

impl Display {
    async fn start() -> Self {
        // -displayfd 1: Xvfb picks a free display and prints its number on stdout.
        let mut xvfb = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1280x800x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("Xvfb (apt-get install xvfb; the test command installs it)");
        let number = first_line(xvfb.stdout.take().unwrap()).await;
        Self {
            _xvfb: xvfb,
            name: format!(":{}", number.trim()),
        }
    }
}

/// A D-Bus session bus with dunst on it.
struct Session {
    _bus: Child,
    _dunst: Child,
    address: String,
    display: String,
    /// What `dunst -print` printed: one block per toast shown.
    printed: Arc<Mutex<String>>,
    _home: tempfile::TempDir,
}

impl Session {
    async fn start(display: &Display) -> Self {
        let mut bus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("dbus-daemon (apt-get install dbus-daemon)");
        let address = first_line(bus.stdout.take().unwrap())
            .await
            .trim()
            .to_owned();
        let home = tempfile::tempdir().unwrap();
        let mut dunst = Command::new("dunst")
            .arg("-print")
            .env_clear()
            .env("HOME", home.path())
            .env("DISPLAY", &display.name)
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("dunst (apt-get install dunst)");
        let printed = Arc::new(Mutex::new(String::new()));
        let mut lines = BufReader::new(dunst.stdout.take().unwrap()).lines();
        let sink = printed.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut printed = sink.lock().unwrap();
                printed.push_str(&line);
                printed.push('\n');
            }
        });
        let session = Self {
            _bus: bus,
            _dunst: dunst,
            address,
            display: display.name.clone(),
            printed,
            _home: home,
        };
        wait_until("dunst owns org.freedesktop.Notifications", || async {
            session
                .try_dunstctl(&["count", "displayed"])
                .await
                .is_some()
        })
        .await;
        session
    }

    /// Points `home`'s commands (the agent) at this session.
    fn attach(&self, home: &mut Home) {
        home.set_env("DBUS_SESSION_BUS_ADDRESS", &self.address);
        home.set_env("DISPLAY", &self.display);
    }

    async fn try_dunstctl(&self, args: &[&str]) -> Option<String> {
        let output = Command::new("dunstctl")
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .output()
            .await
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    async fn dunstctl(&self, args: &[&str]) -> String {
        self.try_dunstctl(args)
            .await
            .unwrap_or_else(|| panic!("dunstctl {args:?} failed"))
    }

    async fn displayed(&self) -> usize {
        self.dunstctl(&["count", "displayed"])
            .await
            .parse()
            .unwrap()
    }

    async fn wait_displayed(&self, count: usize) {
        wait_until(&format!("dunst displays {count}"), || async {
            self.displayed().await == count
        })
        .await;
    }

    /// The blocks `dunst -print` printed for toasts with `summary`.
    fn toasts_titled(&self, summary: &str) -> Vec<String> {
        let printed = self.printed.lock().unwrap();
        printed
            .split("\n}")
            .filter(|block| block.contains(&format!("summary: '{summary}'")))
            .map(str::to_owned)
            .collect()
    }
}

async fn first_line(stdout: tokio::process::ChildStdout) -> String {
    let mut line = String::new();
    tokio::time::timeout(DEADLINE, BufReader::new(stdout).read_line(&mut line))
        .await
        .expect("a first line in time")
        .unwrap();
    line
}

/// The field `name` of a `dunst -print` block.
fn field<'a>(block: &'a str, name: &str) -> &'a str {
    block
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {block}"))
}

/// The newest notification in `home`'s history.
async fn newest(home: &Home) -> Value {
    home.json(&["history", "--limit", "1"]).await["items"][0].clone()
}

#[tokio::test]
async fn toasts_show_and_what_the_user_does_comes_back() {
    let display = Display::start().await;
    let session = Session::start(&display).await;
    let mut home = Home::new();
    session.attach(&mut home);
    let agent = home.agent_with_toasts();
    wait_until("the agent serves IPC", || async {
        tidings::ipc::Client::connect(&home.socket()).await.is_ok()
    })
    .await;

    // Shown, with summary, escaped body and urgency.
    let sent = home
        .json(&[
            "send",
            "--title",
            "Build failed",
            "--body",
            "<b>3</b> tests & 1 lint",
            "--priority",
            "high",
        ])
        .await;
    session.wait_displayed(1).await;
    let toast = &session.toasts_titled("Build failed")[0];
    assert_eq!(
        field(toast, "body"),
        "'&lt;b&gt;3&lt;/b&gt; tests &amp; 1 lint'"
    );
    assert_eq!(field(toast, "urgency"), "CRITICAL");
    assert_eq!(field(toast, "appname"), "'tidings'");
    assert_eq!(field(toast, "desktop_entry"), "'tidings'");

    // The user closes it: dismissed (synced through the outbox).
    session.dunstctl(&["close"]).await;
    wait_until("the close becomes dismissed", || async {
        newest(&home).await["userActionState"] == "dismissed"
    })
    .await;
    assert_eq!(newest(&home).await["id"], sent["id"]);

    // The user clicks one: activated and read, and the toast goes (dunst keeps it).
    home.json(&["send", "--title", "Deploy done"]).await;
    session.wait_displayed(1).await;
    session.dunstctl(&["action", "0"]).await;
    wait_until("the click becomes activated + read", || async {
        let n = newest(&home).await;
        n["userActionState"] == "activated" && n["readState"] == "read"
    })
    .await;
    session.wait_displayed(0).await;

    // A replace (same app id) updates the same toast in place.
    home.json(&["send", "--title", "Progress 1", "--app-id", "job-7"])
        .await;
    session.wait_displayed(1).await;
    home.json(&["send", "--title", "Progress 2", "--app-id", "job-7"])
        .await;
    wait_until("the replace reaches dunst", || async {
        !session.toasts_titled("Progress 2").is_empty()
    })
    .await;
    let first = field(&session.toasts_titled("Progress 1")[0], "id").to_owned();
    let second = field(&session.toasts_titled("Progress 2")[0], "id").to_owned();
    assert_eq!(first, second, "the same toast, updated in place");
    assert_eq!(session.displayed().await, 1);

    // Read elsewhere (here: over IPC) closes it.
    let id = newest(&home).await["id"].as_str().unwrap().to_owned();
    home.json(&["read", &id]).await;
    session.wait_displayed(0).await;
    let status = home.json(&["status"]).await;
    assert!(
        status["toasts"].as_str().unwrap().starts_with("desktop"),
        "{status}"
    );
    terminate(agent).await;
}

#[tokio::test]
async fn a_toast_dismissed_on_one_device_closes_on_the_other() {
    let service = TestService::start().await;
    service.add_user("alice").await;
    let display = Display::start().await;
    let (laptop_desk, phone_desk) = (
        Session::start(&display).await,
        Session::start(&display).await,
    );
    let mut laptop = Home::new();
    let mut phone = Home::new();
    laptop_desk.attach(&mut laptop);
    phone_desk.attach(&mut phone);
    laptop.login(&service.url, "alice", "alice-pw").await;
    phone.login(&service.url, "alice", "alice-pw").await;
    let agents = [laptop.agent_with_toasts(), phone.agent_with_toasts()];
    for home in [&laptop, &phone] {
        wait_until("the agent is connected", || async {
            home.run(&["status", "--json"]).await.status.success()
                && home.json(&["status"]).await["state"] == "connected"
        })
        .await;
    }
    laptop
        .json(&["send", "--title", "Meeting in 5 minutes"])
        .await;
    laptop_desk.wait_displayed(1).await;
    phone_desk.wait_displayed(1).await;

    laptop_desk.dunstctl(&["close"]).await;
    wait_until("the phone hears of the dismiss", || async {
        newest(&phone).await["userActionState"] == "dismissed"
    })
    .await;
    phone_desk.wait_displayed(0).await;
    for agent in agents {
        terminate(agent).await;
    }
}
