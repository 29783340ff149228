//! The agent's icon in a real panel: `xfce4-panel` (4.18, from Debian) with only its
//! status tray plugin, which is the session's `org.kde.StatusNotifierWatcher` and hosts
//! StatusNotifierItems, on Xvfb and a private session bus, with its own `xfconfd` for
//! its settings (the private bus activates nothing). The test finds the agent's item
//! registered with the panel's watcher, reads it and walks its menu over D-Bus as the
//! panel does, and clicks "Mark all read" and one unread item with `Event`; the service
//! sees the reads.

use std::path::Path;
use std::process::Stdio;

use tidings::agent::tray::sni::ToolTip;
use tokio::process::{Child, Command};
use zbus::{Connection, OwnedVariant};

use crate::desktop::{Display, Session};
use crate::helpers::wait_until;
use crate::tray::{click, connect, id_of, menu, property, text};
use crate::tray_agent::{Cast, state_of};

/// One panel at the top of the screen holding the status tray plugin alone.
const PANEL_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<channel name="xfce4-panel" version="1.0">
  <property name="configver" type="int" value="2"/>
  <property name="panels" type="array">
    <value type="int" value="1"/>
    <property name="panel-1" type="empty">
      <property name="position" type="string" value="p=6;x=0;y=0"/>
      <property name="length" type="uint" value="100"/>
      <property name="position-locked" type="bool" value="true"/>
      <property name="size" type="uint" value="28"/>
      <property name="plugin-ids" type="array">
        <value type="int" value="1"/>
      </property>
    </property>
  </property>
  <property name="plugins" type="empty">
    <property name="plugin-1" type="string" value="systray"/>
  </property>
</channel>
"#;

/// How the agent's item's bus name begins (then its process id).
const ITEM: &str = "org.kde.StatusNotifierItem-";

/// Where Debian puts the settings daemon the panel reads its layout from.
fn xfconfd() -> String {
    format!(
        "/usr/lib/{}-linux-gnu/xfce4/xfconf/xfconfd",
        std::env::consts::ARCH
    )
}

/// `xfconfd` and `xfce4-panel` (its `_process`), stopped when dropped.
struct Panel {
    _xfconfd: Child,
    _process: Child,
    _home: tempfile::TempDir,
}

impl Panel {
    async fn start(display: &Display, session: &Session) -> Self {
        let home = tempfile::tempdir().unwrap();
        let channels = home.path().join(".config/xfce4/xfconf/xfce-perchannel-xml");
        std::fs::create_dir_all(&channels).unwrap();
        std::fs::write(channels.join("xfce4-panel.xml"), PANEL_XML).unwrap();
        let spawn = |program: &str| {
            desktop_command(program, home.path(), display, session)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("{program}: {e} (apt-get install xfce4-panel; the test command does)")
                })
        };
        let xfconfd = spawn(&xfconfd());
        let panel = connect(session).await;
        wait_until("xfconfd serves", || has_owner(&panel, "org.xfce.Xfconf")).await;
        let xfce4_panel = spawn("xfce4-panel");
        Self {
            _xfconfd: xfconfd,
            _process: xfce4_panel,
            _home: home,
        }
    }
}

fn desktop_command(program: &str, home: &Path, display: &Display, session: &Session) -> Command {
    let mut command = Command::new(program);
    command
        .env_clear()
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("DISPLAY", &display.name)
        .env("DBUS_SESSION_BUS_ADDRESS", &session.address)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    command
}

async fn has_owner(bus: &Connection, name: &str) -> bool {
    let dbus = zbus::fdo::DBusProxy::new(bus).await.unwrap();
    let name = zbus::names::BusName::try_from(name).unwrap();
    dbus.name_has_owner(name).await.unwrap()
}

/// The items the panel's watcher hosts (`NAME/PATH` each, as xfce4-panel keeps them).
async fn hosted(bus: &Connection) -> Vec<String> {
    let reply = bus
        .call_method(
            Some("org.kde.StatusNotifierWatcher"),
            "/StatusNotifierWatcher",
            Some("org.freedesktop.DBus.Properties"),
            "Get",
            &(
                "org.kde.StatusNotifierWatcher",
                "RegisteredStatusNotifierItems",
            ),
        )
        .await;
    let Ok(reply) = reply else {
        return Vec::new();
    };
    let items: OwnedVariant = reply.body().deserialize().unwrap();
    Vec::try_from(items).unwrap_or_default()
}

#[tokio::test]
async fn xfce4_panel_hosts_the_agents_icon_and_its_menu_reads_on_the_service() {
    let display = Display::start().await;
    let session = Session::without_server(&display).await;
    let _panel = Panel::start(&display, &session).await;
    // Bound, not `..`: the service and the agent's directory must outlive the test.
    let Cast {
        service: _service,
        other,
        posted,
        agent,
        _dir,
        ..
    } = Cast::start(&session, &["Build failed", "Lunch?", "Review requested"]).await;

    // The panel may start before or after the agent: either way it hosts the item.
    let test = connect(&session).await;
    wait_until("xfce4-panel hosts the agent's item", || async {
        hosted(&test).await.iter().any(|i| i.starts_with(ITEM))
    })
    .await;
    let hosted_now = hosted(&test).await;
    let entry = hosted_now.iter().find(|i| i.starts_with(ITEM)).unwrap();
    let item = entry.split('/').next().unwrap().to_owned();
    wait_until("the icon shows the three unread", || async {
        text(&test, &item, "IconName").await == "mail-unread"
    })
    .await;
    assert_eq!(text(&test, &item, "Title").await, "tidings");
    assert_eq!(text(&test, &item, "Status").await, "NeedsAttention");
    let (_, _, title, tooltip): ToolTip =
        property(&test, &item, "ToolTip").await.try_into().unwrap();
    assert_eq!(
        (title.as_str(), tooltip.as_str()),
        ("tidings", "3 unread — connected to 127.0.0.1")
    );
    let (_, entries) = menu(&test, &item).await;
    let labels: Vec<&str> = entries.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(
        labels[..4],
        [
            "3 unread",
            "Review requested — contoso.com",
            "Lunch? — contoso.com",
            "Build failed — contoso.com"
        ]
    );

    // One unread item, as a toast click: read and activated on the service.
    click(&test, &item, id_of(&entries, "Lunch? — contoso.com")).await;
    let lunch = posted[1].id.as_str().to_owned();
    wait_until("the service has Lunch? read and activated", || async {
        state_of(&other.feed(0).await, &lunch) == ("read".to_owned(), "activated".to_owned())
    })
    .await;
    // "Mark all read": the other two too.
    let (_, entries) = menu(&test, &item).await;
    click(&test, &item, id_of(&entries, "Mark all read")).await;
    wait_until("the service has all three read", || async {
        let feed = other.feed(0).await;
        posted
            .iter()
            .all(|n| state_of(&feed, n.id.as_str()).0 == "read")
    })
    .await;
    wait_until("the icon shows nothing unread", || async {
        text(&test, &item, "IconName").await == "mail-read"
    })
    .await;
    assert!(
        hosted(&test).await.iter().any(|i| i.starts_with(&item)),
        "the panel still hosts the item"
    );
    agent.stop().await;
}
