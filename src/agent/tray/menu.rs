//! The status icon as a pure function: from what the agent knows (the link, the unread
//! count and the newest unread, do-not-disturb, the apps whose toasts are paused), the
//! icon, its status, its tooltip and its menu, each menu entry carrying the [`Action`]
//! a click asks for. The panel adapters (the StatusNotifierItem on Linux, the
//! notification-area icon on Windows) only draw what this returns and hand clicks back;
//! the rules live here, tested as a table (`docs/tray.md`).

use crate::protocol::NotificationId;
use crate::protocol::local::LinkState;

/// Unread notifications listed in the menu at most.
pub const NEWEST: usize = 5;

/// Characters of a title shown in a menu entry at most (longer ones end in `…`).
const TITLE_CHARS: usize = 48;

/// What the icon shows, from the most to the least pressing: the first that holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icon {
    /// The service refused the device credential: sign in again.
    SignedOut,
    /// The service cannot be reached (the agent keeps retrying).
    Offline,
    /// Do-not-disturb is on: toasts are held back.
    DoNotDisturb,
    /// Connected (or connecting) with unread notifications waiting.
    Unread,
    /// Connected (or connecting), nothing unread.
    Idle,
}

impl Icon {
    /// The freedesktop icon name a panel looks up in the user's theme.
    pub fn name(self) -> &'static str {
        match self {
            Self::SignedOut => "dialog-warning",
            Self::Offline => "network-offline",
            Self::DoNotDisturb => "notifications-disabled",
            Self::Unread => "mail-unread",
            Self::Idle => "mail-read",
        }
    }
}

/// How much the item asks for attention (StatusNotifierItem's `Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attention {
    /// Shown as usual.
    Active,
    /// Something waits for the user: unread (outside do-not-disturb), or signed out.
    NeedsAttention,
}

impl Attention {
    /// The value of the `Status` property.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "Active",
            Self::NeedsAttention => "NeedsAttention",
        }
    }
}

/// One unread notification as the menu lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unread {
    /// Its id (what a click opens).
    pub id: NotificationId,
    /// Its title, if it has one.
    pub title: Option<String>,
    /// The app that posted it (its `targetHostName`).
    pub app: String,
}

/// Everything the icon depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// The push channel's state.
    pub link: LinkState,
    /// The service's host, as the tooltip names it.
    pub service: String,
    /// How many notifications are unread.
    pub unread: usize,
    /// The newest unread, newest first (only the first [`NEWEST`] are listed).
    pub newest: Vec<Unread>,
    /// Do-not-disturb.
    pub dnd: Quiet,
    /// The apps whose toasts are paused on this device.
    pub paused: Vec<String>,
}

/// Do-not-disturb as the icon shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Quiet {
    /// Off: toasts show.
    Off,
    /// On until turned off.
    On,
    /// On until this local time, as the user reads it (`14:30`).
    Until(String),
}

/// How long a do-not-disturb chosen from the menu lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DndLength {
    /// For this many minutes.
    Minutes(u32),
    /// Until turned off.
    UntilOff,
}

/// What a click on a menu entry asks the agent to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open it as a toast click does: read everywhere, its default action run.
    Open(NotificationId),
    /// Mark every unread notification read, everywhere.
    MarkAllRead,
    /// Open the web inbox.
    OpenInbox,
    /// Turn do-not-disturb on.
    DndOn(DndLength),
    /// Turn do-not-disturb off.
    DndOff,
    /// Stop showing this app's toasts on this device.
    PauseApp(String),
    /// Show this app's toasts again.
    ResumeApp(String),
    /// Stop the agent.
    Quit,
}

/// One entry of the menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A line that does something when clicked (`None`: greyed out, says something).
    Item {
        /// What it says.
        label: String,
        /// What a click asks for.
        action: Option<Action>,
    },
    /// A line with a check mark, on or off.
    Check {
        /// What it says.
        label: String,
        /// Whether it is ticked.
        checked: bool,
        /// What a click asks for.
        action: Action,
    },
    /// A submenu.
    Submenu {
        /// What it says.
        label: String,
        /// Its entries.
        entries: Vec<Entry>,
    },
    /// A line between groups.
    Separator,
}

/// The icon as drawn: what the panel shows and what its menu holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tray {
    /// The icon.
    pub icon: Icon,
    /// Whether it asks for attention.
    pub attention: Attention,
    /// The tooltip's text.
    pub tooltip: String,
    /// The menu, top to bottom.
    pub menu: Vec<Entry>,
}

/// The do-not-disturb lengths the menu offers.
const DND_CHOICES: [(&str, DndLength); 4] = [
    ("For 30 minutes", DndLength::Minutes(30)),
    ("For 1 hour", DndLength::Minutes(60)),
    ("For 4 hours", DndLength::Minutes(240)),
    ("Until turned off", DndLength::UntilOff),
];

/// The icon for `state`.
pub fn tray(state: &State) -> Tray {
    let icon = icon(state);
    let attention = match icon {
        Icon::SignedOut | Icon::Unread => Attention::NeedsAttention,
        _ => Attention::Active,
    };
    Tray {
        icon,
        attention,
        tooltip: tooltip(state),
        menu: menu(state),
    }
}

fn icon(state: &State) -> Icon {
    match state.link {
        LinkState::SignedOut => Icon::SignedOut,
        LinkState::Offline => Icon::Offline,
        LinkState::Connected | LinkState::Connecting if state.dnd != Quiet::Off => {
            Icon::DoNotDisturb
        }
        LinkState::Connected | LinkState::Connecting if state.unread > 0 => Icon::Unread,
        LinkState::Connected | LinkState::Connecting => Icon::Idle,
    }
}

/// `3 unread — connected to notify.example.com`, and do-not-disturb when on.
fn tooltip(state: &State) -> String {
    let host = &state.service;
    let link = match state.link {
        LinkState::Connected => format!("connected to {host}"),
        LinkState::Connecting => format!("connecting to {host}"),
        LinkState::Offline => format!("offline: cannot reach {host}, retrying"),
        LinkState::SignedOut => {
            return format!("Signed out of {host}: run `tidings login` to sign in again");
        }
    };
    let mut text = format!("{} — {link}", unread_label(state.unread));
    match &state.dnd {
        Quiet::Off => {}
        Quiet::On => text.push_str(" — do not disturb"),
        Quiet::Until(until) => {
            text.push_str(" — do not disturb until ");
            text.push_str(until);
        }
    }
    text
}

fn unread_label(unread: usize) -> String {
    if unread == 0 {
        "Nothing unread".to_owned()
    } else {
        format!("{unread} unread")
    }
}

fn menu(state: &State) -> Vec<Entry> {
    let mut menu = vec![note(unread_label(state.unread))];
    let listed = state.newest.iter().take(NEWEST);
    menu.extend(listed.map(|item| Entry::Item {
        label: item_label(item),
        action: Some(Action::Open(item.id.clone())),
    }));
    let more = state.unread.saturating_sub(state.newest.len().min(NEWEST));
    if more > 0 && !state.newest.is_empty() {
        menu.push(note(format!("and {more} more")));
    }
    menu.push(Entry::Separator);
    menu.push(Entry::Item {
        label: "Mark all read".to_owned(),
        action: (state.unread > 0).then_some(Action::MarkAllRead),
    });
    menu.push(Entry::Item {
        label: "Open inbox".to_owned(),
        action: Some(Action::OpenInbox),
    });
    menu.push(dnd_menu(&state.dnd));
    menu.push(pause_menu(state));
    menu.push(Entry::Separator);
    menu.push(Entry::Item {
        label: "Quit".to_owned(),
        action: Some(Action::Quit),
    });
    menu
}

/// A greyed-out line.
fn note(label: String) -> Entry {
    Entry::Item {
        label,
        action: None,
    }
}

/// `Title — app`, the title cut to [`TITLE_CHARS`].
fn item_label(item: &Unread) -> String {
    let title = item.title.as_deref().map(str::trim).unwrap_or_default();
    let title = if title.is_empty() {
        "(no title)"
    } else {
        title
    };
    let cut: String = title.chars().take(TITLE_CHARS).collect();
    let title = if cut.len() < title.len() {
        format!("{}…", cut.trim_end())
    } else {
        cut
    };
    format!("{title} — {}", item.app)
}

fn dnd_menu(dnd: &Quiet) -> Entry {
    let mut entries = Vec::new();
    let label = match dnd {
        Quiet::Off => "Do not disturb".to_owned(),
        Quiet::On => "Do not disturb (on)".to_owned(),
        Quiet::Until(until) => format!("Do not disturb (until {until})"),
    };
    if *dnd != Quiet::Off {
        entries.push(Entry::Item {
            label: "Turn off".to_owned(),
            action: Some(Action::DndOff),
        });
        entries.push(Entry::Separator);
    }
    entries.extend(DND_CHOICES.iter().map(|(label, length)| Entry::Item {
        label: (*label).to_owned(),
        action: Some(Action::DndOn(*length)),
    }));
    Entry::Submenu { label, entries }
}

/// "Pause toasts for": the apps of the newest unread and the apps paused, each once,
/// ticked when paused (a click resumes it).
fn pause_menu(state: &State) -> Entry {
    let mut apps: Vec<&str> = Vec::new();
    let newest = state
        .newest
        .iter()
        .take(NEWEST)
        .map(|item| item.app.as_str());
    for app in newest.chain(state.paused.iter().map(String::as_str)) {
        if !apps.contains(&app) {
            apps.push(app);
        }
    }
    let entries = if apps.is_empty() {
        vec![note("No app has posted yet".to_owned())]
    } else {
        apps.into_iter()
            .map(|app| {
                let paused = state.paused.iter().any(|p| p == app);
                Entry::Check {
                    label: app.to_owned(),
                    checked: paused,
                    action: if paused {
                        Action::ResumeApp(app.to_owned())
                    } else {
                        Action::PauseApp(app.to_owned())
                    },
                }
            })
            .collect()
    };
    Entry::Submenu {
        label: "Pause toasts for".to_owned(),
        entries,
    }
}
