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
pub(crate) struct Display {
    _xvfb: Child,
    pub(crate) name: String,
}

impl Display {
    pub(crate) async fn start() -> Self {
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

/// A private session bus: anyone may own names and talk; no activation.
const BUS_CONFIG: &str = include_str!("session-bus.conf");

/// A D-Bus session bus with dunst on it (or, until [`Session::start_dunst`], none).
pub(crate) struct Session {
    _bus: Child,
    dunst: Option<Child>,
    pub(crate) address: String,
    display: String,
    /// What `dunst -print` printed: one block per toast shown.
    printed: Arc<Mutex<String>>,
    home: tempfile::TempDir,
}

impl Session {
    async fn start(display: &Display) -> Self {
        let mut session = Self::without_server(display).await;
        session.start_dunst().await;
        session
    }

    /// A session bus with no notification server on it. The bus has no service
    /// directories, so nothing is started on demand (the system's dunst.service would
    /// otherwise be activated by the first toast).
    pub(crate) async fn without_server(display: &Display) -> Self {
        let home = tempfile::tempdir().unwrap();
        let config = home.path().join("bus.conf");
        std::fs::write(&config, BUS_CONFIG).unwrap();
        let mut bus = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("dbus-daemon (apt-get install dbus-daemon)");
        // Passed on, but for its notice that it may not raise its own open-file limit
        // (harmless here, and it looked like an error in the test output).
        let mut said = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
            bus.stderr.take().unwrap(),
        ));
        tokio::spawn(async move {
            while let Ok(Some(line)) = said.next_line().await {
                if !line.contains("Failed to set fd limit") {
                    eprintln!("dbus-daemon: {line}");
                }
            }
        });
        let address = first_line(bus.stdout.take().unwrap()).await;
        Self {
            _bus: bus,
            dunst: None,
            address: address.trim().to_owned(),
            display: display.name.clone(),
            printed: Arc::default(),
            home,
        }
    }

    /// Starts dunst on the bus and waits until it serves.
    async fn start_dunst(&mut self) {
        let mut dunst = Command::new("dunst")
            .arg("-print")
            .env_clear()
            .env("HOME", self.home.path())
            .env("DISPLAY", &self.display)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("dunst (apt-get install dunst)");
        let mut lines = BufReader::new(dunst.stdout.take().unwrap()).lines();
        let sink = self.printed.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut printed = sink.lock().unwrap();
                printed.push_str(&line);
                printed.push('\n');
            }
        });
        self.dunst = Some(dunst);
        wait_until("dunst owns org.freedesktop.Notifications", || async {
            self.try_dunstctl(&["count", "displayed"]).await.is_some()
        })
        .await;
    }

    /// Points `home`'s commands (the agent) at this session.
    pub(crate) fn attach(&self, home: &mut Home) {
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
    let agent = home.serving_agent_with_toasts().await;

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

/// Starts `home`'s agent with toasts and waits until it is connected.
async fn connected_agent(home: &Home) -> Child {
    let agent = home.agent_with_toasts();
    wait_until("the agent is connected", || async {
        home.run(&["status", "--json"]).await.status.success()
            && home.json(&["status"]).await["state"] == "connected"
    })
    .await;
    agent
}

#[tokio::test]
async fn do_not_disturb_and_an_app_with_toasts_off_show_nothing_but_store_everything() {
    let display = Display::start().await;
    let session = Session::start(&display).await;
    let mut home = Home::new();
    session.attach(&mut home);
    let agent = connected_agent(&home).await;

    let on = home.json(&["dnd", "on"]).await;
    assert_eq!(on["on"], true);
    let quiet = home.json(&["send", "--title", "Quiet please"]).await;
    wait_until("stored while DND is on", || async {
        newest(&home).await["id"] == quiet["id"]
    })
    .await;
    assert_eq!(home.json(&["status"]).await["doNotDisturb"]["on"], true);
    home.json(&["dnd", "off"]).await;
    home.json(&["send", "--title", "Loud again"]).await;
    session.wait_displayed(1).await;
    assert!(
        session.toasts_titled("Quiet please").is_empty(),
        "nothing popped up under DND"
    );
    let until = home.json(&["dnd", "until", "2h"]).await;
    assert!(until["until"].is_string(), "{until}");
    assert_eq!(home.run(&["dnd", "until"]).await.status.code(), Some(2));
    assert_eq!(
        home.run(&["dnd", "until", "soon"]).await.status.code(),
        Some(2)
    );
    home.json(&["dnd", "off"]).await;
    terminate(agent).await;

    // Notes are the app "localhost": turn its toasts off in the config file.
    std::fs::create_dir_all(home.path("config/tidings")).unwrap();
    let config = "[apps.\"localhost\"]\ntoasts = false\n";
    std::fs::write(home.path("config/tidings/config.toml"), config).unwrap();
    let agent = connected_agent(&home).await;
    home.json(&["send", "--title", "Muted app"]).await;
    home.json(&["send", "--title", "Still muted"]).await;
    // Another app's toast, sent after them, is shown; the agent plans each change in
    // order, so by the time it shows, the muted two were planned and not shown.
    home.send_as_app("contoso.com", "Another app").await;
    wait_until("the other app's toast shows", || async {
        !session.toasts_titled("Another app").is_empty()
    })
    .await;
    assert!(session.toasts_titled("Muted app").is_empty());
    assert!(session.toasts_titled("Still muted").is_empty());
    terminate(agent).await;
}

#[tokio::test]
async fn a_backlog_after_being_offline_is_one_summary_toast() {
    let service = TestService::start().await;
    service.add_user("alice").await;
    let display = Display::start().await;
    let session = Session::start(&display).await;
    let (mut phone, laptop) = (Home::new(), Home::new());
    session.attach(&mut phone);
    phone.login(&service.url, "alice", "alice-pw").await;
    laptop.login(&service.url, "alice", "alice-pw").await;
    terminate(connected_agent(&phone).await).await;
    let sender = laptop.serving_agent().await;
    for i in 1..=5 {
        laptop
            .json(&["send", "--title", &format!("While away {i}")])
            .await;
    }
    read_the_oldest_of_five(&laptop).await;

    // Five arrived while the phone was off, one of them read since: four to announce.
    let agent = connected_agent(&phone).await;
    wait_until("the summary toast", || async {
        !session.toasts_titled("4 new notifications").is_empty()
    })
    .await;
    assert_eq!(session.displayed().await, 1, "one summary, not a burst");
    assert!(session.toasts_titled("While away 2").is_empty());
    let history = phone.json(&["history"]).await;
    assert_eq!(
        history["items"].as_array().unwrap().len(),
        5,
        "all kept in history"
    );
    terminate(agent).await;
    terminate(sender).await;
}

/// Waits for five notes in `home`'s history and marks the oldest read.
async fn read_the_oldest_of_five(home: &Home) {
    wait_until("five stored", || async {
        home.json(&["history"]).await["items"]
            .as_array()
            .unwrap()
            .len()
            == 5
    })
    .await;
    let items = home.json(&["history"]).await["items"].clone();
    let oldest = items[4]["id"].as_str().unwrap().to_owned();
    home.json(&["read", &oldest]).await;
}

#[tokio::test]
async fn without_a_notification_server_the_agent_works_and_shows_toasts_once_one_appears() {
    let display = Display::start().await;
    let mut session = Session::without_server(&display).await;
    let mut home = Home::new();
    session.attach(&mut home);
    let agent = connected_agent(&home).await;
    let first = home.json(&["send", "--title", "Nobody to show this"]).await;
    wait_until("stored without a server", || async {
        newest(&home).await["id"] == first["id"]
    })
    .await;
    wait_until("status says there is no server", || async {
        home.json(&["status"]).await["toasts"]
            .as_str()
            .unwrap()
            .contains("no notification server")
    })
    .await;

    session.start_dunst().await;
    home.json(&["send", "--title", "Now with a server"]).await;
    session.wait_displayed(1).await;
    assert!(!session.toasts_titled("Now with a server").is_empty());
    let status = home.json(&["status"]).await;
    assert!(
        !status["toasts"]
            .as_str()
            .unwrap()
            .contains("no notification server"),
        "{status}"
    );
    terminate(agent).await;
}

#[tokio::test]
async fn at_most_twenty_toasts_stay_on_screen() {
    let display = Display::start().await;
    let session = Session::start(&display).await;
    let mut home = Home::new();
    session.attach(&mut home);
    let agent = connected_agent(&home).await;
    let mut client = tidings::ipc::Client::connect(&home.socket()).await.unwrap();
    for i in 1..=22 {
        let body =
            serde_json::json!({"payload": {"visualContent": {"title": format!("Toast {i}")}}});
        client.call("send", body).await.unwrap();
    }
    // The agent closes the two oldest itself (dunst moves closed toasts to its history).
    wait_until("the two oldest toasts are closed", || async {
        session.dunstctl(&["count", "history"]).await == "2"
    })
    .await;
    let on_screen: usize = session
        .dunstctl(&["count", "displayed"])
        .await
        .parse()
        .unwrap();
    let waiting: usize = session
        .dunstctl(&["count", "waiting"])
        .await
        .parse()
        .unwrap();
    assert_eq!(on_screen + waiting, 20);
    let history = home.json(&["history", "--limit", "100"]).await;
    assert_eq!(
        history["items"].as_array().unwrap().len(),
        22,
        "all kept in history"
    );
    terminate(agent).await;
}

#[tokio::test]
async fn a_restarted_agent_takes_over_the_toasts_on_screen() {
    let display = Display::start().await;
    let session = Session::start(&display).await;
    let mut home = Home::new();
    session.attach(&mut home);
    let agent = connected_agent(&home).await;
    let first = home.json(&["send", "--title", "Sticky one"]).await;
    home.json(&["send", "--title", "Sticky two"]).await;
    session.wait_displayed(2).await;
    terminate(agent).await;
    assert_eq!(session.displayed().await, 2, "toasts outlive the agent");

    // The new agent re-shows them in place (same dunst ids), so it hears about them.
    let agent = connected_agent(&home).await;
    wait_until("both toasts are shown again in place", || async {
        session.toasts_titled("Sticky one").len() == 2
            && session.toasts_titled("Sticky two").len() == 2
    })
    .await;
    let ids = |title| {
        session
            .toasts_titled(title)
            .iter()
            .map(|block| field(block, "id").to_owned())
            .collect::<Vec<_>>()
    };
    let (one, two) = (ids("Sticky one"), ids("Sticky two"));
    assert_eq!(
        (one[0] == one[1], two[0] == two[1]),
        (true, true),
        "{one:?} {two:?}"
    );
    assert_eq!(session.displayed().await, 2);

    // Read elsewhere closes an adopted toast; closing the other by hand dismisses it.
    home.json(&["read", first["id"].as_str().unwrap()]).await;
    session.wait_displayed(1).await;
    session.dunstctl(&["close"]).await;
    wait_until("the adopted toast's close becomes dismissed", || async {
        let items = home.json(&["history"]).await["items"].clone();
        items.as_array().unwrap().iter().any(|n| {
            n["payload"]["visualContent"]["title"] == "Sticky two"
                && n["userActionState"] == "dismissed"
        })
    })
    .await;
    session.wait_displayed(0).await;
    terminate(agent).await;
}
