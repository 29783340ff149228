//! The status icon on Windows: an icon in the notification area (`Shell_NotifyIcon`)
//! with its menu as a popup menu, drawn by `tray-icon` (and its menu crate `muda`),
//! from what [`super::menu::tray`] returns, as the Linux item is.
//!
//! Win32 wants the icon made, changed and clicked on one thread that runs a message
//! loop. That thread (`tidings-tray`) runs winit's event loop (a safe one; the crate
//! forbids unsafe code) and owns the icon: the agent's side ([`run`], through the
//! shared loop in `drive.rs`) sends it each new [`Tray`] to draw, or the order to
//! end, as winit user events; a click on the menu comes back on that thread through
//! `muda`'s handler, is looked up in the actions of the menu drawn last, and is queued
//! (16 at most) for the agent. Idle, the thread sleeps in `GetMessage`.
//!
//! One picture for every state (tidings' own icon); the state is in the tooltip and
//! the menu. Exactly what needs a real Windows to be seen is in `docs/windows.md`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tray_icon::menu::{
    CheckMenuItem, IsMenuItem, Menu, MenuEvent, MenuId, MenuItem, PredefinedMenuItem, Submenu,
};
use tray_icon::{Icon, TrayIcon, TrayIconBuilder};
use winit::application::ApplicationHandler;
use winit::event::{StartCause, WindowEvent};
use winit::event_loop::{ActiveEventLoop, EventLoop, EventLoopProxy};
use winit::platform::windows::EventLoopBuilderExtWindows;
use winit::window::WindowId;

use crate::protocol::Timestamp;

use super::super::AgentHandle;
use super::drive::{Panel, drive};
use super::menu::{self, Action, Entry, State, Tray};
use super::state::state;

/// Clicks waiting for the agent at most; more are dropped.
const CLICKS: usize = 16;

/// tidings' icon (256 px), scaled by Windows to the notification area's size.
const ICON_PNG: &[u8] = include_bytes!("../../../packaging/windows/tidings.png");

/// What the agent's side asks of the icon's thread.
enum Command {
    Draw(Box<Tray>),
    Exit,
}

/// Each menu item's action, by the id `muda` gave it.
type Actions = Arc<Mutex<HashMap<MenuId, Action>>>;

/// Shows the icon until `stop`; `quit` is what its "Quit" cancels.
pub async fn run(handle: AgentHandle, quit: CancellationToken, stop: CancellationToken) {
    let (clicked, mut clicks) = mpsc::channel(CLICKS);
    let first = menu::tray(&state(&handle, Timestamp::now()));
    let (ready, started) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("tidings-tray".to_owned())
        .spawn(move || icon_thread(first, clicked, ready));
    let proxy = match (thread, started.await) {
        (Ok(_), Ok(Ok(proxy))) => proxy,
        (Err(e), _) => {
            tracing::warn!(error = %e, "cannot start the icon's thread");
            return;
        }
        (_, Ok(Err(e))) => {
            tracing::warn!(error = %e, "no icon in the notification area");
            return;
        }
        (_, Err(_)) => return,
    };
    let mut panel = NotificationArea { proxy };
    tokio::select! {
        () = stop.cancelled() => {}
        () = drive(&handle, &mut panel, &mut clicks, &quit) => {}
    }
    // The thread removes the icon as it ends.
    let _ = panel.proxy.send_event(Command::Exit);
}

/// The agent's side of the icon: what it draws goes to the icon's thread.
struct NotificationArea {
    proxy: EventLoopProxy<Command>,
}

impl Panel for NotificationArea {
    async fn show(&mut self, state: &State) {
        let tray = Box::new(menu::tray(state));
        if self.proxy.send_event(Command::Draw(tray)).is_err() {
            tracing::warn!("the icon's thread has ended; the icon is not redrawn");
        }
    }

    /// Nothing to tend: `tray-icon` puts the icon back itself when Explorer restarts.
    async fn needs_tending(&mut self) {
        std::future::pending::<()>().await;
    }

    async fn tend(&mut self) {}
}

/// The icon's thread: winit's event loop, owning the icon.
fn icon_thread(
    first: Tray,
    clicked: mpsc::Sender<Action>,
    ready: oneshot::Sender<Result<EventLoopProxy<Command>, String>>,
) {
    let event_loop = match EventLoop::<Command>::with_user_event()
        .with_any_thread(true)
        .build()
    {
        Ok(event_loop) => event_loop,
        Err(e) => {
            let _ = ready.send(Err(format!("cannot start the icon's event loop: {e}")));
            return;
        }
    };
    if ready.send(Ok(event_loop.create_proxy())).is_err() {
        return;
    }
    let actions = Actions::default();
    let known = actions.clone();
    MenuEvent::set_event_handler(Some(move |event: MenuEvent| {
        let action = crate::sync::lock(&known).get(&event.id).cloned();
        if let Some(action) = action {
            let _ = clicked.try_send(action);
        }
    }));
    let mut app = App {
        first: Some(first),
        icon: None,
        actions,
    };
    if let Err(e) = event_loop.run_app(&mut app) {
        tracing::warn!(error = %e, "the icon's event loop failed");
    }
}

/// What the icon's thread holds.
struct App {
    /// What to draw when the loop starts.
    first: Option<Tray>,
    icon: Option<TrayIcon>,
    actions: Actions,
}

impl App {
    /// Draws `tray`: the icon made the first time, its menu and tooltip replaced after.
    fn draw(&mut self, tray: &Tray) {
        let (menu, actions) = match build(&tray.menu) {
            Ok(built) => built,
            Err(e) => {
                tracing::warn!(error = %e, "cannot build the icon's menu");
                return;
            }
        };
        *crate::sync::lock(&self.actions) = actions;
        let tooltip = tooltip(tray);
        match &self.icon {
            Some(icon) => {
                icon.set_menu(Some(Box::new(menu)));
                if let Err(e) = icon.set_tooltip(Some(tooltip)) {
                    tracing::warn!(error = %e, "cannot set the icon's tooltip");
                }
            }
            None => match make_icon(menu, tooltip) {
                Ok(icon) => self.icon = Some(icon),
                Err(e) => tracing::warn!(error = %e, "cannot put an icon in the notification area"),
            },
        }
    }
}

impl ApplicationHandler<Command> for App {
    fn new_events(&mut self, _: &ActiveEventLoop, cause: StartCause) {
        if matches!(cause, StartCause::Init)
            && let Some(first) = self.first.take()
        {
            self.draw(&first);
        }
    }

    fn resumed(&mut self, _: &ActiveEventLoop) {}

    fn window_event(&mut self, _: &ActiveEventLoop, _: WindowId, _: WindowEvent) {}

    fn user_event(&mut self, event_loop: &ActiveEventLoop, command: Command) {
        match command {
            Command::Draw(tray) => self.draw(&tray),
            Command::Exit => {
                self.icon = None;
                event_loop.exit();
            }
        }
    }
}

fn make_icon(menu: Menu, tooltip: String) -> Result<TrayIcon, String> {
    TrayIconBuilder::new()
        .with_icon(picture()?)
        .with_tooltip(tooltip)
        .with_menu(Box::new(menu))
        .build()
        .map_err(|e| e.to_string())
}

/// The tooltip: `tidings: 3 unread — connected to HOST` (Windows shows the first 127
/// characters).
fn tooltip(tray: &Tray) -> String {
    format!("tidings: {}", tray.tooltip)
        .chars()
        .take(127)
        .collect()
}

/// tidings' icon, decoded for `tray-icon`.
fn picture() -> Result<Icon, String> {
    let decoder = png::Decoder::new(std::io::Cursor::new(ICON_PNG));
    let mut reader = decoder.read_info().map_err(|e| e.to_string())?;
    let size = reader.output_buffer_size().ok_or("the icon is too large")?;
    let mut rgba = vec![0; size];
    let info = reader.next_frame(&mut rgba).map_err(|e| e.to_string())?;
    rgba.truncate(info.buffer_size());
    Icon::from_rgba(rgba, info.width, info.height).map_err(|e| e.to_string())
}

/// The menu for `entries`, and each clickable item's action by its id.
fn build(entries: &[Entry]) -> Result<(Menu, HashMap<MenuId, Action>), tray_icon::menu::Error> {
    let menu = Menu::new();
    let mut actions = HashMap::new();
    for entry in entries {
        menu.append(item(entry, &mut actions)?.as_ref())?;
    }
    Ok((menu, actions))
}

fn item(
    entry: &Entry,
    actions: &mut HashMap<MenuId, Action>,
) -> Result<Box<dyn IsMenuItem>, tray_icon::menu::Error> {
    Ok(match entry {
        Entry::Item { label, action } => {
            let item = MenuItem::new(text(label), action.is_some(), None);
            if let Some(action) = action {
                actions.insert(item.id().clone(), action.clone());
            }
            Box::new(item)
        }
        Entry::Check {
            label,
            checked,
            action,
        } => {
            let item = CheckMenuItem::new(text(label), true, *checked, None);
            actions.insert(item.id().clone(), action.clone());
            Box::new(item)
        }
        Entry::Submenu { label, entries } => {
            let submenu = Submenu::new(text(label), true);
            for entry in entries {
                submenu.append(item(entry, actions)?.as_ref())?;
            }
            Box::new(submenu)
        }
        Entry::Separator => Box::new(PredefinedMenuItem::separator()),
    })
}

/// A label as Windows menus take it: `&` marks the next letter as the item's key, so a
/// title's own `&` is doubled.
fn text(label: &str) -> String {
    label.replace('&', "&&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_icon_decodes_and_titles_keep_their_ampersands() {
        picture().unwrap();
        assert_eq!(text("Tom & Jerry"), "Tom && Jerry");
        let tray = Tray {
            icon: menu::Icon::Idle,
            attention: menu::Attention::Active,
            tooltip: "x".repeat(300),
            menu: Vec::new(),
        };
        assert_eq!(tooltip(&tray).chars().count(), 127);
    }

    /// The menu the agent draws, built as Windows menus: every entry that does
    /// something is found again by the id a click brings back.
    #[test]
    fn every_clickable_entry_of_the_menu_maps_back_to_its_action() {
        use crate::protocol::NotificationId;
        use crate::protocol::local::LinkState;
        let state = State {
            link: LinkState::Connected,
            service: "notify.example.com".to_owned(),
            unread: 2,
            newest: ["a", "b"]
                .into_iter()
                .map(|id| menu::Unread {
                    id: NotificationId::new(id),
                    title: Some(format!("Title {id} & more")),
                    app: "chat.example.com".to_owned(),
                })
                .collect(),
            dnd: menu::Quiet::Off,
            paused: vec!["mail.example.com".to_owned()],
        };
        let tray = menu::tray(&state);
        let (_, actions) = build(&tray.menu).unwrap();
        let mut wanted = Vec::new();
        clickable(&tray.menu, &mut wanted);
        let mut found: Vec<_> = actions.values().cloned().collect();
        let key = |a: &Action| format!("{a:?}");
        wanted.sort_by_key(key);
        found.sort_by_key(key);
        assert_eq!(found, wanted);
        assert!(found.contains(&Action::Open(NotificationId::new("a"))));
        assert!(found.contains(&Action::ResumeApp("mail.example.com".to_owned())));
    }

    fn clickable(entries: &[Entry], into: &mut Vec<Action>) {
        for entry in entries {
            match entry {
                Entry::Item {
                    action: Some(action),
                    ..
                }
                | Entry::Check { action, .. } => into.push(action.clone()),
                Entry::Submenu { entries, .. } => clickable(entries, into),
                Entry::Item { action: None, .. } | Entry::Separator => {}
            }
        }
    }
}
