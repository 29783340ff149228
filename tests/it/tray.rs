//! The status icon on a real private D-Bus session bus, the test playing the panel: it
//! reads the StatusNotifierItem's properties, walks its `dbusmenu` layout, clicks
//! entries and follows the item's signals, as a panel does over the same calls. (A real
//! panel hosting the item, xfce4-panel under Xvfb, is the next step: `docs/tray.md`.)

use std::collections::HashMap;

use futures_util::StreamExt;
use tidings::agent::tray::menu::{Action, DndLength, Quiet, State, Unread};
use tidings::agent::tray::sni::{ITEM_PATH, MENU_PATH, PanelIcon, ToolTip};
use tidings::protocol::NotificationId;
use tidings::protocol::local::LinkState;
use zbus::{Connection, OwnedVariant, Structure, Variant};

use crate::desktop::{Display, Session};
use crate::helpers::DEADLINE;

fn state(unread: usize) -> State {
    State {
        link: LinkState::Connected,
        service: "notify.example.com".to_owned(),
        unread,
        newest: [("n2", "Build failed"), ("n1", "Lunch?")]
            .into_iter()
            .take(unread)
            .map(|(id, title)| Unread {
                id: NotificationId::new(id),
                title: Some(title.to_owned()),
                app: "chat.example.com".to_owned(),
            })
            .collect(),
        dnd: Quiet::Off,
        paused: Vec::new(),
    }
}

pub(crate) async fn connect(session: &Session) -> Connection {
    zbus::connection::Builder::address(session.address.as_str())
        .build()
        .await
        .unwrap()
}

/// A property of the item, as a panel reads it.
pub(crate) async fn property(panel: &Connection, icon: &str, name: &str) -> OwnedVariant {
    let reply = panel
        .call_method(
            Some(icon),
            ITEM_PATH,
            Some("org.freedesktop.DBus.Properties"),
            "Get",
            &("org.kde.StatusNotifierItem", name),
        )
        .await
        .unwrap();
    reply.body().deserialize().unwrap()
}

pub(crate) async fn text(panel: &Connection, icon: &str, name: &str) -> String {
    String::try_from(property(panel, icon, name).await).unwrap()
}

type Layout = (i32, HashMap<String, OwnedVariant>, Vec<OwnedVariant>);

/// Every labelled item of the menu (depth first): its number and label.
fn labels(layout: &Layout, into: &mut Vec<(i32, String)>) {
    let (id, properties, children) = layout;
    if let Some(label) = properties.get("label") {
        into.push((*id, String::try_from(label.clone()).unwrap()));
    }
    for child in children {
        let fields = Structure::try_from(Variant::from(child.clone()))
            .unwrap()
            .into_fields();
        let [id, properties, children]: [Variant; 3] = fields.try_into().unwrap();
        let child: Layout = (
            i32::try_from(id).unwrap(),
            HashMap::try_from(properties).unwrap(),
            Vec::try_from(children).unwrap(),
        );
        labels(&child, into);
    }
}

/// The menu's labelled items, fetched as a panel fetches them.
pub(crate) async fn menu(panel: &Connection, icon: &str) -> (u32, Vec<(i32, String)>) {
    let reply = panel
        .call_method(
            Some(icon),
            MENU_PATH,
            Some("com.canonical.dbusmenu"),
            "GetLayout",
            &(0_i32, -1_i32, Vec::<&str>::new()),
        )
        .await
        .unwrap();
    let (revision, layout): (u32, Layout) = reply.body().deserialize().unwrap();
    let mut found = Vec::new();
    labels(&layout, &mut found);
    (revision, found)
}

pub(crate) async fn click(panel: &Connection, icon: &str, id: i32) {
    panel
        .call_method(
            Some(icon),
            MENU_PATH,
            Some("com.canonical.dbusmenu"),
            "Event",
            &(id, "clicked", Variant::from(0_i32), 0_u32),
        )
        .await
        .unwrap();
}

pub(crate) fn id_of(items: &[(i32, String)], label: &str) -> i32 {
    items
        .iter()
        .find(|(_, l)| l == label)
        .unwrap_or_else(|| panic!("no {label:?} in {items:?}"))
        .0
}

#[tokio::test]
async fn a_panel_reads_the_icon_walks_its_menu_and_its_clicks_come_back_as_actions() {
    let display = Display::start().await;
    let session = Session::without_server(&display).await;
    let served = connect(&session).await;
    let (icon, mut clicks) = PanelIcon::serve(&served, &state(2)).await.unwrap();
    // No panel on this bus: the item serves all the same, and says it is not hosted.
    assert!(!icon.register().await.unwrap());
    let panel = connect(&session).await;
    let name = icon.name();

    assert_eq!(text(&panel, name, "IconName").await, "mail-unread");
    assert_eq!(text(&panel, name, "Status").await, "NeedsAttention");
    let (_, _, title, tooltip): ToolTip =
        property(&panel, name, "ToolTip").await.try_into().unwrap();
    assert_eq!(
        (title.as_str(), tooltip.as_str()),
        ("tidings", "2 unread — connected to notify.example.com")
    );

    let (revision, items) = menu(&panel, name).await;
    let lunch = id_of(&items, "Lunch? — chat.example.com");
    click(&panel, name, id_of(&items, "Mark all read")).await;
    click(&panel, name, lunch).await;
    click(&panel, name, id_of(&items, "For 1 hour")).await;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(
            tokio::time::timeout(DEADLINE, clicks.recv())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    assert_eq!(
        got,
        [
            Action::MarkAllRead,
            Action::Open(NotificationId::new("n1")),
            Action::DndOn(DndLength::Minutes(60)),
        ]
    );

    // Read elsewhere: the icon redraws, and the panel hears of it.
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface("com.canonical.dbusmenu")
        .member("LayoutUpdated")
        .build()
        .unwrap();
    let mut updates = zbus::MessageStream::for_match_rule(rule, &panel, None)
        .await
        .unwrap();
    icon.show(&state(0)).await.unwrap();
    let update = tokio::time::timeout(DEADLINE, updates.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let (new_revision, parent): (u32, i32) = update.body().deserialize().unwrap();
    assert_eq!((new_revision, parent), (revision + 1, 0));
    assert_eq!(text(&panel, name, "IconName").await, "mail-read");
    assert_eq!(text(&panel, name, "Status").await, "Active");
    let (_, items) = menu(&panel, name).await;
    assert!(
        !items.iter().any(|(_, l)| l.contains("Lunch?")),
        "{items:?}"
    );
    // A click on an entry that has gone (from a panel that had not fetched the new
    // layout yet) does nothing.
    click(&panel, name, lunch).await;
    assert!(clicks.try_recv().is_err());

    // Any process on the bus may send clicks: a flood queues 16 at most, and the
    // numbers it did not know come back.
    let (_, items) = menu(&panel, name).await;
    let quit = id_of(&items, "Quit");
    let flood: Vec<_> = (0..1_000)
        .map(|i| {
            (
                if i % 2 == 0 { quit } else { 9_999 },
                "clicked",
                Variant::from(0_i32),
                0_u32,
            )
        })
        .collect();
    let reply = panel
        .call_method(
            Some(name),
            MENU_PATH,
            Some("com.canonical.dbusmenu"),
            "EventGroup",
            &(flood,),
        )
        .await
        .unwrap();
    let unknown: Vec<i32> = reply.body().deserialize().unwrap();
    assert_eq!((unknown.len(), unknown[0]), (500, 9_999));
    let mut queued = 0;
    while clicks.try_recv().is_ok() {
        queued += 1;
    }
    assert_eq!(queued, 16);
}
