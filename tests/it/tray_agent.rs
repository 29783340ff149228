//! The agent's panel icon, end to end on a real private D-Bus session bus: a real agent
//! against a real service, the test playing the panel's watcher (the item registers
//! with it) and the panel (it reads the item and clicks its menu over the same calls a
//! panel makes). Checked: a watcher that appears after the agent gets the icon, the
//! count follows a read made on another device within a second, and the menu's clicks
//! reach the service (an item opened as a toast click opens it, "Mark all read"), pause
//! an app's toasts, set do-not-disturb and "Quit" the agent.

use std::time::{Duration, Instant};

use serde_json::Value;
use tidings::agent::tray::Bus;
use tidings::agent::tray::sni::ToolTip;
use tokio::sync::mpsc;
use zbus::Connection;

use crate::desktop::{Display, Session};
use crate::helpers::{App, DEADLINE, Device, TestService, note, wait_until};
use crate::test_agent::TestAgent;
use crate::tray::{click, connect, id_of, menu, property, text};
use tidings::protocol::Notification;

/// The panel's registry of items, played by the test: it hands each registered item's
/// bus name to the test.
struct Watcher {
    registered: mpsc::UnboundedSender<String>,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    fn register_status_notifier_item(&self, service: &str) {
        let _ = self.registered.send(service.to_owned());
    }
}

/// Starts the watcher on its own connection; items registered come out of the receiver.
async fn start_watcher(session: &Session) -> (Connection, mpsc::UnboundedReceiver<String>) {
    let (registered, items) = mpsc::unbounded_channel();
    let connection = connect(session).await;
    connection
        .object_server()
        .at("/StatusNotifierWatcher", Watcher { registered })
        .await
        .unwrap();
    connection
        .request_name("org.kde.StatusNotifierWatcher")
        .await
        .unwrap();
    (connection, items)
}

async fn tooltip(panel: &Connection, item: &str) -> String {
    let (_, _, _, text): ToolTip = property(panel, item, "ToolTip").await.try_into().unwrap();
    text
}

/// Polls the tooltip until it is `want`, for at most `within`; how long it took.
async fn tooltip_becomes(panel: &Connection, item: &str, want: &str, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let now = tooltip(panel, item).await;
        if now == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "the tooltip still says {now:?}, not {want:?}, after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// (`readState`, `userActionState`) of `id`'s latest change in `feed`.
pub(crate) fn state_of(feed: &[Value], id: &str) -> (String, String) {
    let Some(n) = feed.iter().rev().find(|n| n["id"] == id) else {
        return Default::default();
    };
    let text = |key: &str| n[key].as_str().unwrap_or_default().to_owned();
    (text("readState"), text("userActionState"))
}

#[tokio::test]
async fn the_agents_icon_registers_when_a_panel_appears_follows_reads_and_its_menu_acts() {
    let display = Display::start().await;
    let session = Session::without_server(&display).await;
    let Cast {
        service,
        app,
        unsid,
        other,
        mut posted,
        agent,
        _dir,
    } = Cast::start(&session, &["Lunch?", "Build failed"]).await;
    wait_until("the agent has both", || async {
        agent.handle.store().tally().unwrap().unread == 2
    })
    .await;

    // No panel yet: the agent runs as ever. A panel that starts now gets the icon.
    let (_watcher, mut items) = start_watcher(&session).await;
    let item = tokio::time::timeout(DEADLINE, items.recv())
        .await
        .expect("the item registers with a watcher that appears later")
        .unwrap();
    let panel = connect(&session).await;
    tooltip_becomes(&panel, &item, "2 unread — connected to 127.0.0.1", DEADLINE).await;
    assert_eq!(text(&panel, &item, "IconName").await, "mail-unread");
    let (_, entries) = menu(&panel, &item).await;
    assert!(
        entries
            .iter()
            .any(|(_, l)| l == "Build failed — contoso.com"),
        "{entries:?}"
    );

    // Read on another device: the count follows within a second.
    other.mark_read(posted[0].id.as_str()).await;
    let took = tooltip_becomes(
        &panel,
        &item,
        "1 unread — connected to 127.0.0.1",
        Duration::from_secs(1),
    )
    .await;
    eprintln!("the icon followed a read elsewhere in {took:?}");

    // An unread item clicked opens it as a toast click does: read and activated,
    // everywhere.
    let (_, entries) = menu(&panel, &item).await;
    click(&panel, &item, id_of(&entries, "Build failed — contoso.com")).await;
    let build = posted[1].id.as_str().to_owned();
    wait_until("the service has it read and activated", || async {
        state_of(&other.feed(0).await, &build) == ("read".to_owned(), "activated".to_owned())
    })
    .await;
    tooltip_becomes(
        &panel,
        &item,
        "Nothing unread — connected to 127.0.0.1",
        DEADLINE,
    )
    .await;

    // "Mark all read" reads every unread one, everywhere.
    for title in ["One", "Two", "Three"] {
        posted.push(
            service
                .post_ok(&app, &unsid, &note("contoso.com", title))
                .await,
        );
    }
    tooltip_becomes(&panel, &item, "3 unread — connected to 127.0.0.1", DEADLINE).await;

    posted.push(pause_and_resume(&agent, &panel, &item, &service, &app, &unsid).await);

    let (_, entries) = menu(&panel, &item).await;
    click(&panel, &item, id_of(&entries, "Mark all read")).await;
    wait_until("the service has all four read", || async {
        let feed = other.feed(0).await;
        posted[2..]
            .iter()
            .all(|n| state_of(&feed, n.id.as_str()).0 == "read")
    })
    .await;

    // Do not disturb for an hour: the icon says so; then "Quit" stops the agent.
    let (_, entries) = menu(&panel, &item).await;
    click(&panel, &item, id_of(&entries, "For 1 hour")).await;
    wait_until("the icon shows do-not-disturb", || async {
        text(&panel, &item, "IconName").await == "notifications-disabled"
    })
    .await;
    assert!(
        agent
            .handle
            .dnd(tidings::protocol::Timestamp::now())
            .unwrap()
            .on
    );
    let (_, entries) = menu(&panel, &item).await;
    click(&panel, &item, id_of(&entries, "Quit")).await;
    agent.ended().await.unwrap();
}

/// "Pause toasts for" the app: its next notification ("Four", returned) is stored, not
/// shown; a second click resumes it.
async fn pause_and_resume(
    agent: &TestAgent,
    panel: &Connection,
    item: &str,
    service: &TestService,
    app: &App,
    unsid: &str,
) -> Notification {
    let (_, entries) = menu(panel, item).await;
    click(panel, item, id_of(&entries, "contoso.com")).await;
    wait_until("the app is paused", || async {
        agent.handle.store().is_paused("contoso.com").unwrap()
    })
    .await;
    let shown = agent.recorder.shown();
    assert!(
        shown >= 3,
        "One, Two and Three were shown as toasts: {shown}"
    );
    let four = service
        .post_ok(app, unsid, &note("contoso.com", "Four"))
        .await;
    tooltip_becomes(panel, item, "4 unread — connected to 127.0.0.1", DEADLINE).await;
    assert_eq!(
        agent.recorder.shown(),
        shown,
        "a paused app's toast was shown"
    );
    let (_, entries) = menu(panel, item).await;
    click(panel, item, id_of(&entries, "contoso.com")).await;
    wait_until("the app is resumed", || async {
        !agent.handle.store().is_paused("contoso.com").unwrap()
    })
    .await;
    four
}

/// What both icon tests start with: a service, alice's app `contoso.com`, a second
/// device of hers subscribed to it (to see what the service holds), `titles` posted to
/// her first device, whose agent runs with its icon on `session`'s bus.
pub(crate) struct Cast {
    pub service: TestService,
    pub app: App,
    pub unsid: String,
    pub other: Device,
    pub posted: Vec<Notification>,
    pub agent: TestAgent,
    pub _dir: tempfile::TempDir,
}

impl Cast {
    pub async fn start(session: &Session, titles: &[&str]) -> Self {
        let service = TestService::start().await;
        let (app, device, unsid) = service.alice_and_contoso().await;
        let other = service.sign_in("alice", "linux").await;
        other.subscribe("contoso.com").await;
        let mut posted = Vec::new();
        for title in titles {
            posted.push(
                service
                    .post_ok(&app, &unsid, &note("contoso.com", title))
                    .await,
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let bus = Bus::Address(session.address.clone());
        let agent = TestAgent::start_with(&service.url, &device, dir.path(), |settings| {
            settings.tray = Some(bus);
        });
        Self {
            service,
            app,
            unsid,
            other,
            posted,
            agent,
            _dir: dir,
        }
    }
}
