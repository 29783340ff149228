//! The status icon on Linux: a StatusNotifierItem (the panel-icon protocol of KDE,
//! GNOME's AppIndicator extension, XFCE, waybar) and its menu over `dbusmenu`, served on
//! the session bus with zbus (already the toast layer's D-Bus library, so no second
//! D-Bus stack). It draws what [`super::menu::tray`] returns and hands every click on
//! the menu back as an [`Action`]; [`PanelIcon::show`] redraws it for a new state and
//! tells the panel (the `NewIcon`, `NewToolTip`, `NewStatus` and `LayoutUpdated`
//! signals).
//!
//! The item registers with the panel's `org.kde.StatusNotifierWatcher`; with no watcher
//! on the bus it still serves, and [`PanelIcon::register`] says so, so that the caller
//! can try again when one appears.

// zbus's `interface` macro passes every argument on, those the method ignores too.
#![allow(clippy::used_underscore_binding)]

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;
use zbus::OwnedObjectPath;
use zbus::object_server::SignalEmitter;

use super::dbusmenu::MenuIface;
use super::layout::{self, Ids, Layout};
use super::menu::{self, Action, State, Tray};

/// Where the item is served.
pub const ITEM_PATH: &str = "/StatusNotifierItem";
/// Where its menu is served.
pub const MENU_PATH: &str = "/MenuBar";
/// The panel's registry of items.
pub const WATCHER: &str = "org.kde.StatusNotifierWatcher";
/// Clicks waiting for the agent at most; more are dropped (no one clicks faster than
/// the agent acts, and any process on the session bus may send `Event`s).
const CLICKS: usize = 16;

/// What the panel is shown now.
pub(super) struct Shown {
    tray: Tray,
    pub(super) layout: Layout,
    ids: Ids,
    pub(super) revision: u32,
}

impl Shown {
    fn new(state: &State) -> Self {
        let mut ids = Ids::default();
        let tray = menu::tray(state);
        let layout = layout::layout(&tray.menu, &mut ids);
        Self {
            tray,
            layout,
            ids,
            revision: 1,
        }
    }

    fn redraw(&mut self, state: &State) {
        self.tray = menu::tray(state);
        self.layout = layout::layout(&self.tray.menu, &mut self.ids);
        self.revision = self.revision.wrapping_add(1);
    }
}

/// What the item and its menu draw from.
pub(super) type Shared = Arc<Mutex<Shown>>;

pub(super) fn lock(shown: &Shared) -> MutexGuard<'_, Shown> {
    crate::sync::lock(shown)
}

/// The icon served on a connection.
pub struct PanelIcon {
    connection: zbus::Connection,
    shown: Shared,
    name: String,
}

impl PanelIcon {
    /// Serves the icon for `state` on `connection` under a name of its own; clicks come
    /// out of the returned receiver. Not yet registered with a panel: [`Self::register`].
    pub async fn serve(
        connection: &zbus::Connection,
        state: &State,
    ) -> zbus::Result<(Self, mpsc::Receiver<Action>)> {
        let shown = Arc::new(Mutex::new(Shown::new(state)));
        let (clicks, clicked) = mpsc::channel(CLICKS);
        let server = connection.object_server();
        server
            .at(
                ITEM_PATH,
                ItemIface {
                    shown: shown.clone(),
                    clicks: clicks.clone(),
                },
            )
            .await?;
        server
            .at(
                MENU_PATH,
                MenuIface {
                    shown: shown.clone(),
                    clicks,
                },
            )
            .await?;
        // The naming convention of the protocol: one item per process here.
        let name = format!("org.kde.StatusNotifierItem-{}-1", std::process::id());
        connection.request_name(name.as_str()).await?;
        let icon = Self {
            connection: connection.clone(),
            shown,
            name,
        };
        Ok((icon, clicked))
    }

    /// Registers the item with the panel's watcher: `false` when no watcher is on the
    /// bus (no panel hosts status icons now).
    pub async fn register(&self) -> zbus::Result<bool> {
        let called = self
            .connection
            .call_method(
                Some(WATCHER),
                "/StatusNotifierWatcher",
                Some(WATCHER),
                "RegisterStatusNotifierItem",
                &(self.name.as_str(),),
            )
            .await;
        match called {
            Ok(_) => Ok(true),
            Err(e) if no_owner(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The bus name the item is served under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Redraws the icon for `state` and tells the panel what changed.
    pub async fn show(&self, state: &State) -> zbus::Result<()> {
        let (before, now, revision) = {
            let mut shown = lock(&self.shown);
            let look = |tray: &Tray| (tray.icon, tray.attention, tray.tooltip.clone());
            let before = look(&shown.tray);
            shown.redraw(state);
            (before, look(&shown.tray), shown.revision)
        };
        let item = SignalEmitter::new(&self.connection, ITEM_PATH)?;
        if now.0 != before.0 {
            ItemIface::new_icon(&item).await?;
            ItemIface::new_attention_icon(&item).await?;
        }
        if now.1 != before.1 {
            ItemIface::new_status(&item, now.1.as_str()).await?;
        }
        if now.2 != before.2 {
            ItemIface::new_tool_tip(&item).await?;
        }
        let menu = SignalEmitter::new(&self.connection, MENU_PATH)?;
        MenuIface::layout_updated(&menu, revision, layout::ROOT).await
    }
}

/// Whether a call failed because no one owns the name it was sent to.
fn no_owner(error: &zbus::Error) -> bool {
    const UNKNOWN: &str = "org.freedesktop.DBus.Error.ServiceUnknown";
    match error {
        zbus::Error::FDO(fdo) => matches!(
            **fdo,
            zbus::fdo::Error::ServiceUnknown(_) | zbus::fdo::Error::NameHasNoOwner(_)
        ),
        zbus::Error::MethodError(name, ..) => name.as_str() == UNKNOWN,
        _ => false,
    }
}

/// `org.kde.StatusNotifierItem`.
struct ItemIface {
    shown: Shared,
    clicks: mpsc::Sender<Action>,
}

/// A tooltip as the protocol carries it: icon name, pixmaps, title, text.
pub type ToolTip = (String, Vec<(i32, i32, Vec<u8>)>, String, String);

// The protocols fix these methods, `&self` and all, constant or not.
#[allow(clippy::unused_self, clippy::unnecessary_literal_bound)]
#[zbus::interface(name = "org.kde.StatusNotifierItem")]
impl ItemIface {
    #[zbus(property)]
    fn category(&self) -> &str {
        "Communications"
    }

    #[zbus(property)]
    fn id(&self) -> &str {
        "tidings"
    }

    #[zbus(property)]
    fn title(&self) -> &str {
        "tidings"
    }

    #[zbus(property)]
    fn status(&self) -> &str {
        lock(&self.shown).tray.attention.as_str()
    }

    #[zbus(property)]
    fn window_id(&self) -> i32 {
        0
    }

    #[zbus(property)]
    fn icon_name(&self) -> &str {
        lock(&self.shown).tray.icon.name()
    }

    #[zbus(property)]
    fn attention_icon_name(&self) -> &str {
        lock(&self.shown).tray.icon.name()
    }

    #[zbus(property)]
    fn overlay_icon_name(&self) -> &str {
        ""
    }

    #[zbus(property)]
    fn icon_theme_path(&self) -> &str {
        ""
    }

    #[zbus(property)]
    fn tool_tip(&self) -> ToolTip {
        let shown = lock(&self.shown);
        let icon = shown.tray.icon.name().to_owned();
        (
            icon,
            Vec::new(),
            "tidings".to_owned(),
            shown.tray.tooltip.clone(),
        )
    }

    #[zbus(property)]
    fn item_is_menu(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn menu(&self) -> OwnedObjectPath {
        OwnedObjectPath::try_from(MENU_PATH).unwrap_or_default()
    }

    /// A click on the icon where the panel does not open the menu itself: the inbox.
    fn activate(&self, _x: i32, _y: i32) {
        let _ = self.clicks.try_send(Action::OpenInbox);
    }

    fn secondary_activate(&self, _x: i32, _y: i32) {}

    fn context_menu(&self, _x: i32, _y: i32) {}

    fn scroll(&self, _delta: i32, _orientation: &str) {}

    #[zbus(signal)]
    async fn new_icon(emitter: &SignalEmitter<'_>) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn new_attention_icon(emitter: &SignalEmitter<'_>) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn new_tool_tip(emitter: &SignalEmitter<'_>) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn new_status(emitter: &SignalEmitter<'_>, status: &str) -> zbus::Result<()>;
}
