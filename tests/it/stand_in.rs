//! Toasts against a stand-in notification server: a small D-Bus server written with
//! zbus inside this test, on a private session bus, driven by the real agent binary.
//!
//! The stand-in is the server, and only the server: it advertises the capabilities a
//! test gives it, records every `Notify` call, hints and all, and can stop answering.
//! It stands in for servers that behave in ways no packaged one does here (dunst,
//! xfce4-notifyd and notification-daemon all read body markup; none can be made to
//! hang on cue), and lets a test read the exact D-Bus arguments. Everything else
//! (agent, bus, service) is real.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use zbus::OwnedVariant;

use crate::desktop::{Display, Session};
use crate::helpers::wait_until;
use crate::home::{Home, terminate};

/// One `Notify` call, as the server received it.
#[derive(Debug, Clone)]
struct Notified {
    app_name: String,
    app_icon: String,
    summary: String,
    body: String,
    actions: Vec<String>,
    hints: HashMap<String, OwnedVariant>,
    expire_timeout: i32,
}

/// The stand-in `org.freedesktop.Notifications` server.
#[derive(Clone, Default)]
struct StandIn {
    capabilities: Vec<String>,
    notified: Arc<Mutex<Vec<Notified>>>,
    closed: Arc<Mutex<Vec<u32>>>,
    /// While true, `Notify` does not answer (a hung server).
    held: Arc<tokio::sync::watch::Sender<bool>>,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl StandIn {
    fn get_capabilities(&self) -> Vec<String> {
        self.capabilities.clone()
    }

    #[allow(clippy::too_many_arguments)] // the freedesktop method's arguments
    async fn notify(
        &self,
        app_name: String,
        replaces_id: u32,
        app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        hints: HashMap<String, OwnedVariant>,
        expire_timeout: i32,
    ) -> u32 {
        let _ = self.held.subscribe().wait_for(|held| !held).await;
        let mut notified = self.notified.lock().unwrap();
        notified.push(Notified {
            app_name,
            app_icon,
            summary,
            body,
            actions,
            hints,
            expire_timeout,
        });
        if replaces_id == 0 {
            u32::try_from(notified.len()).unwrap()
        } else {
            replaces_id
        }
    }

    fn close_notification(&self, id: u32) {
        self.closed.lock().unwrap().push(id);
    }

    /// `NotificationClosed(id, reason)`: 1 expired, 2 dismissed by the user, 3 closed by
    /// a `CloseNotification` call.
    #[zbus(signal)]
    async fn notification_closed(
        emitter: &zbus::object_server::SignalEmitter<'_>,
        id: u32,
        reason: u32,
    ) -> zbus::Result<()>;

    /// `ActionInvoked(id, action_key)`: `default` is a click.
    #[zbus(signal)]
    async fn action_invoked(
        emitter: &zbus::object_server::SignalEmitter<'_>,
        id: u32,
        action_key: &str,
    ) -> zbus::Result<()>;

    #[allow(clippy::unused_self)] // a D-Bus method of the server object
    fn get_server_information(&self) -> (String, String, String, String) {
        let text = |s: &str| s.to_owned();
        (
            text("stand-in"),
            text("tidings tests"),
            text("1"),
            text("1.2"),
        )
    }
}

impl StandIn {
    /// Serves on the bus at `address`; serving stops when the connection is dropped.
    async fn serve(&self, address: &str) -> zbus::Connection {
        zbus::connection::Builder::address(address)
            .name("org.freedesktop.Notifications")
            .serve_at("/org/freedesktop/Notifications", self.clone())
            .build()
            .await
            .unwrap()
    }

    /// Makes `Notify` hang (`true`) or answer again.
    fn hold(&self, held: bool) {
        self.held.send_replace(held);
    }

    /// The server id of the toast titled `title`, once it was shown.
    async fn id_of(&self, title: &str) -> u32 {
        wait_until(&format!("{title} is shown"), || async {
            self.summaries().iter().any(|s| s == title)
        })
        .await;
        let position = self.summaries().iter().position(|s| s == title).unwrap();
        u32::try_from(position + 1).unwrap()
    }

    fn summaries(&self) -> Vec<String> {
        let notified = self.notified.lock().unwrap();
        notified.iter().map(|n| n.summary.clone()).collect()
    }

    /// Waits for the first `Notify` and returns it.
    async fn first(&self) -> Notified {
        wait_until("the server is notified", || async {
            !self.notified.lock().unwrap().is_empty()
        })
        .await;
        self.notified.lock().unwrap()[0].clone()
    }
}

/// A stand-in server with `capabilities` on a private session bus (on its own X
/// display), and a home whose commands and agent use that bus. Dropped in this order:
/// the home, the server's connection, the bus, the display.
struct Desk {
    home: Home,
    serving: zbus::Connection,
    server: StandIn,
    _session: Session,
    _display: Display,
}

impl Desk {
    /// The desk, with `prepare` applied to the home before anything runs in it.
    async fn start(capabilities: &[&str], prepare: impl FnOnce(&mut Home)) -> Self {
        let display = Display::start().await;
        let session = Session::without_server(&display).await;
        let server = StandIn {
            capabilities: capabilities.iter().map(|c| (*c).to_owned()).collect(),
            ..StandIn::default()
        };
        let serving = server.serve(&session.address).await;
        let mut home = Home::new();
        session.attach(&mut home);
        prepare(&mut home);
        Self {
            home,
            serving,
            server,
            _session: session,
            _display: display,
        }
    }
}

/// Shows one toast with markup in its body on a server with `capabilities`, then
/// reads the notification (which must close the toast); returns what the server
/// received, and the agent's pid.
async fn notify_with(capabilities: &[&str]) -> (Notified, u32) {
    let Desk { home, server, .. } = &Desk::start(capabilities, |_| {}).await;
    let agent = home.serving_agent_with_toasts().await;
    let pid = agent.id().unwrap();
    let sent = home
        .json(&[
            "send",
            "--title",
            "Plain <i>title</i>",
            "--body",
            "<b>3</b> tests & 1 lint",
            "--priority",
            "low",
            "--ttl",
            "7",
        ])
        .await;
    let notified = server.first().await;
    home.json(&["read", sent["id"].as_str().unwrap()]).await;
    wait_until("the toast is closed", || async {
        *server.closed.lock().unwrap() == [1]
    })
    .await;
    terminate(agent).await;
    (notified, pid)
}

#[tokio::test]
async fn a_server_without_body_markup_gets_the_body_as_it_is() {
    let (toast, _) = notify_with(&["actions", "body"]).await;
    assert_eq!(toast.body, "<b>3</b> tests & 1 lint");
    assert_eq!(
        toast.summary, "Plain <i>title</i>",
        "a summary is never markup"
    );
}

#[tokio::test]
async fn a_toast_carries_its_hints_timeout_and_actions() {
    let (toast, pid) = notify_with(&["actions", "body", "body-markup"]).await;
    assert_eq!(toast.body, "&lt;b&gt;3&lt;/b&gt; tests &amp; 1 lint");
    assert_eq!(toast.app_name, "tidings");
    assert_eq!(toast.app_icon, "", "the desktop entry names the icon");
    assert_eq!(toast.expire_timeout, 7_000, "--ttl 7: seven seconds");
    assert_eq!(toast.actions, ["default", "Open", "read", "Mark as read"]);
    assert_eq!(u8::try_from(&toast.hints["urgency"]).unwrap(), 0, "low");
    assert_eq!(
        <&str>::try_from(&toast.hints["desktop-entry"]).unwrap(),
        "tidings"
    );
    assert_eq!(
        i32::try_from(&toast.hints["sender-pid"]).unwrap(),
        i32::try_from(pid).unwrap()
    );
}

#[tokio::test]
async fn a_server_that_stops_answering_costs_a_timeout_not_the_agent() {
    // 25 s by default (libdbus's); a test-sized timeout here.
    let quick = |home: &mut Home| home.set_env("TIDINGS_TOAST_CALL_TIMEOUT", "1s");
    let Desk { home, server, .. } = &Desk::start(&["body"], quick).await;
    let agent = home.serving_agent_with_toasts().await;
    server.hold(true);
    home.json(&["send", "--title", "held"]).await;
    // The agent goes on meanwhile...
    let history = home.json(&["history"]).await;
    assert_eq!(history["items"].as_array().unwrap().len(), 1);
    // ...and once the call times out it says toasts are not shown, instead of holding
    // the call and its connection for ever.
    let said = tokio::time::timeout(crate::helpers::DEADLINE, async {
        loop {
            let toasts = home.json(&["status"]).await["toasts"].clone();
            if toasts.as_str().unwrap().contains("not shown") {
                return toasts;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the hung call times out");
    assert!(
        said.as_str().unwrap().contains("no notification server"),
        "{said}"
    );
    // A server that answers again shows the next toast.
    server.hold(false);
    home.json(&["send", "--title", "after"]).await;
    wait_until("the next toast is shown", || async {
        server.summaries().contains(&"after".to_owned())
    })
    .await;
    terminate(agent).await;
}

/// Sends what a server sends when a toast closes or one of its actions is taken.
async fn emit(connection: &zbus::Connection, id: u32, signal: Signal) {
    let iface = connection
        .object_server()
        .interface::<_, StandIn>("/org/freedesktop/Notifications")
        .await
        .unwrap();
    let emitter = iface.signal_emitter();
    match signal {
        Signal::Closed(reason) => StandIn::notification_closed(emitter, id, reason).await,
        Signal::Action(key) => StandIn::action_invoked(emitter, id, key).await,
    }
    .unwrap();
}

#[derive(Clone, Copy)]
enum Signal {
    Closed(u32),
    Action(&'static str),
}

/// Sends a note titled `title` through the agent; returns its id.
async fn send(home: &Home, title: &str) -> String {
    let sent = home.json(&["send", "--title", title]).await;
    sent["id"].as_str().unwrap().to_owned()
}

/// (readState, userActionState) of a notification, as the agent has it.
async fn state(home: &Home, id: &str) -> (String, String) {
    let shown = home.json(&["show", id]).await;
    let field = |name: &str| shown[name].as_str().unwrap().to_owned();
    (field("readState"), field("userActionState"))
}

fn pair(read: &str, action: &str) -> (String, String) {
    (read.to_owned(), action.to_owned())
}

/// What the user does to a toast reaches the notification: a click, "Mark as read",
/// closing it. (What a toast that expired or was closed by a call means is the table
/// in `desktop.rs`.)
#[tokio::test]
async fn what_the_user_does_to_a_toast_reaches_the_notification() {
    let desk = Desk::start(&["actions", "body"], |_| {}).await;
    let (home, server, serving) = (&desk.home, &desk.server, &desk.serving);
    let agent = home.serving_agent_with_toasts().await;
    let cases = [
        (
            "marked read",
            vec![Signal::Action("read"), Signal::Closed(2)],
            pair("read", "noInteraction"),
        ),
        (
            "clicked",
            vec![Signal::Action("default")],
            pair("read", "activated"),
        ),
        (
            "dismissed",
            vec![Signal::Closed(2)],
            pair("unread", "dismissed"),
        ),
    ];
    for (title, signals, expected) in &cases {
        let id = send(home, title).await;
        let server_id = server.id_of(title).await;
        // The agent starts listening for the toast's answer just after the server
        // answered `Notify`: the first signal is sent until it is taken, as a user
        // would click again. Only then the rest, so that a later one (the close after
        // "Mark as read") cannot be the first the agent hears.
        let (first, rest) = signals.split_first().unwrap();
        let fresh = pair("unread", "noInteraction");
        wait_until(&format!("{title}: the first signal is taken"), || async {
            emit(serving, server_id, *first).await;
            state(home, &id).await != fresh
        })
        .await;
        for signal in rest {
            emit(serving, server_id, *signal).await;
        }
        wait_until(&format!("{title} is handled"), || async {
            state(home, &id).await == *expected
        })
        .await;
    }
    terminate(agent).await;
}

/// With `dismiss_sync = false` for an app, the user closing its toast dismisses nothing
/// (here, and so on no other device); a click on its toasts still counts. The agent's
/// log says when it took the close, so the test knows when to look.
#[tokio::test]
async fn closing_a_toast_of_an_app_with_dismiss_sync_off_dismisses_nothing() {
    let prepare = |home: &mut Home| {
        home.set_env("TIDINGS_LOG", "info,tidings=debug");
        // Notes are the app "localhost".
        std::fs::create_dir_all(home.path("config/tidings")).unwrap();
        let config = "[apps.\"localhost\"]\ndismiss_sync = false\n";
        std::fs::write(home.path("config/tidings/config.toml"), config).unwrap();
    };
    let desk = Desk::start(&["actions", "body"], prepare).await;
    let (home, server, serving) = (&desk.home, &desk.server, &desk.serving);
    let agent = home.serving_agent_with_toasts().await;

    let id = send(home, "Closed here only").await;
    let server_id = server.id_of("Closed here only").await;
    wait_until("the agent takes the close", || async {
        emit(serving, server_id, Signal::Closed(2)).await;
        home.logged(&[&id, "dismiss_sync is off"])
    })
    .await;
    assert_eq!(state(home, &id).await, pair("unread", "noInteraction"));

    let clicked = send(home, "Clicked").await;
    let server_id = server.id_of("Clicked").await;
    wait_until("the click is taken", || async {
        emit(serving, server_id, Signal::Action("default")).await;
        state(home, &clicked).await == pair("read", "activated")
    })
    .await;
    assert_eq!(state(home, &id).await, pair("unread", "noInteraction"));
    terminate(agent).await;
}
