//! The icon's rules as a table: state in, icon, status, tooltip and menu out.

use super::menu::{Action, Attention, DndLength, Entry, Icon, Quiet, State, Unread, tray};
use crate::protocol::NotificationId;
use crate::protocol::local::LinkState;

fn unread(id: &str, title: Option<&str>, app: &str) -> Unread {
    Unread {
        id: NotificationId::new(id),
        title: title.map(str::to_owned),
        app: app.to_owned(),
    }
}

fn state(link: LinkState, unread: usize) -> State {
    State {
        link,
        service: "notify.example.com".to_owned(),
        unread,
        newest: Vec::new(),
        dnd: Quiet::Off,
        paused: Vec::new(),
    }
}

/// The menu's top-level labels, a submenu as `label > [its labels]`, a greyed-out line
/// in brackets, a ticked check with `[x]`.
fn labels(entries: &[Entry]) -> Vec<String> {
    entries
        .iter()
        .map(|entry| match entry {
            Entry::Item {
                label,
                action: Some(_),
            } => label.clone(),
            Entry::Item {
                label,
                action: None,
            } => format!("({label})"),
            Entry::Check { label, checked, .. } => {
                format!("{}{label}", if *checked { "[x] " } else { "[ ] " })
            }
            Entry::Submenu { label, entries } => {
                format!("{label} > [{}]", labels(entries).join(", "))
            }
            Entry::Separator => "---".to_owned(),
        })
        .collect()
}

/// The action of the first entry (searching submenus) whose label is `label`.
fn action_of(entries: &[Entry], label: &str) -> Option<Action> {
    entries.iter().find_map(|entry| match entry {
        Entry::Item {
            label: l, action, ..
        } if l == label => action.clone(),
        Entry::Check {
            label: l, action, ..
        } if l == label => Some(action.clone()),
        Entry::Submenu { entries, .. } => action_of(entries, label),
        _ => None,
    })
}

#[test]
fn the_icon_status_and_tooltip_follow_the_state() {
    let with_dnd = |mut s: State, dnd: Quiet| {
        s.dnd = dnd;
        s
    };
    let table = [
        (
            state(LinkState::Connected, 3),
            Icon::Unread,
            Attention::NeedsAttention,
            "3 unread — connected to notify.example.com",
        ),
        (
            state(LinkState::Connected, 0),
            Icon::Idle,
            Attention::Active,
            "Nothing unread — connected to notify.example.com",
        ),
        (
            state(LinkState::Connecting, 2),
            Icon::Unread,
            Attention::NeedsAttention,
            "2 unread — connecting to notify.example.com",
        ),
        (
            state(LinkState::Offline, 2),
            Icon::Offline,
            Attention::Active,
            "2 unread — offline: cannot reach notify.example.com, retrying",
        ),
        (
            state(LinkState::SignedOut, 2),
            Icon::SignedOut,
            Attention::NeedsAttention,
            "Signed out of notify.example.com: run `tidings login` to sign in again",
        ),
        (
            with_dnd(
                state(LinkState::Connected, 4),
                Quiet::Until("14:30".to_owned()),
            ),
            Icon::DoNotDisturb,
            Attention::Active,
            "4 unread — connected to notify.example.com — do not disturb until 14:30",
        ),
        (
            with_dnd(state(LinkState::Connected, 0), Quiet::On),
            Icon::DoNotDisturb,
            Attention::Active,
            "Nothing unread — connected to notify.example.com — do not disturb",
        ),
        (
            with_dnd(state(LinkState::Offline, 1), Quiet::On),
            Icon::Offline,
            Attention::Active,
            "1 unread — offline: cannot reach notify.example.com, retrying — do not disturb",
        ),
    ];
    for (state, icon, attention, tooltip) in table {
        let drawn = tray(&state);
        assert_eq!(
            (drawn.icon, drawn.attention, drawn.tooltip.as_str()),
            (icon, attention, tooltip),
            "for {state:?}"
        );
    }
}

#[test]
fn the_menu_lists_the_newest_five_unread_and_what_can_be_done() {
    let mut s = state(LinkState::Connected, 8);
    s.newest = vec![
        unread("n7", Some("Build failed"), "ci.example.com"),
        unread("n6", None, "chat.example.com"),
        unread("n5", Some("  "), "chat.example.com"),
        unread(
            "n4",
            Some("A title far longer than anything a panel menu has room to show in one line"),
            "news.example.com",
        ),
        unread("n3", Some("Lunch?"), "chat.example.com"),
        unread("n2", Some("Not listed: sixth"), "ci.example.com"),
    ];
    s.paused = vec!["mail.example.com".to_owned()];
    assert_eq!(
        labels(&tray(&s).menu),
        [
            "(8 unread)",
            "Build failed — ci.example.com",
            "(no title) — chat.example.com",
            "(no title) — chat.example.com",
            "A title far longer than anything a panel menu ha… — news.example.com",
            "Lunch? — chat.example.com",
            "(and 3 more)",
            "---",
            "Mark all read",
            "Open inbox",
            "Do not disturb > [For 30 minutes, For 1 hour, For 4 hours, Until turned off]",
            "Pause toasts for > [[ ] ci.example.com, [ ] chat.example.com, [ ] news.example.com, [x] mail.example.com]",
            "---",
            "Quit",
        ]
    );
}

#[test]
fn with_nothing_unread_mark_all_read_is_greyed_out() {
    let s = state(LinkState::Connected, 0);
    assert_eq!(
        labels(&tray(&s).menu),
        [
            "(Nothing unread)",
            "---",
            "(Mark all read)",
            "Open inbox",
            "Do not disturb > [For 30 minutes, For 1 hour, For 4 hours, Until turned off]",
            "Pause toasts for > [(No app has posted yet)]",
            "---",
            "Quit",
        ]
    );
}

#[test]
fn do_not_disturb_on_offers_to_turn_it_off() {
    let mut s = state(LinkState::Connected, 0);
    s.dnd = Quiet::Until("14:30".to_owned());
    let menu = tray(&s).menu;
    assert!(labels(&menu).contains(
        &"Do not disturb (until 14:30) > [Turn off, ---, For 30 minutes, For 1 hour, For 4 hours, Until turned off]"
            .to_owned()
    ));
    assert_eq!(action_of(&menu, "Turn off"), Some(Action::DndOff));
    s.dnd = Quiet::On;
    assert!(labels(&tray(&s).menu)[4].starts_with("Do not disturb (on) > [Turn off"));
}

#[test]
fn each_entry_asks_for_its_action() {
    let mut s = state(LinkState::Connected, 2);
    s.newest = vec![
        unread("n2", Some("Build failed"), "ci.example.com"),
        unread("n1", Some("Lunch?"), "chat.example.com"),
    ];
    s.paused = vec!["chat.example.com".to_owned()];
    let menu = tray(&s).menu;
    let table = [
        (
            "Build failed — ci.example.com",
            Action::Open(NotificationId::new("n2")),
        ),
        (
            "Lunch? — chat.example.com",
            Action::Open(NotificationId::new("n1")),
        ),
        ("Mark all read", Action::MarkAllRead),
        ("Open inbox", Action::OpenInbox),
        ("For 30 minutes", Action::DndOn(DndLength::Minutes(30))),
        ("For 4 hours", Action::DndOn(DndLength::Minutes(240))),
        ("Until turned off", Action::DndOn(DndLength::UntilOff)),
        (
            "ci.example.com",
            Action::PauseApp("ci.example.com".to_owned()),
        ),
        (
            "chat.example.com",
            Action::ResumeApp("chat.example.com".to_owned()),
        ),
        ("Quit", Action::Quit),
    ];
    for (label, action) in table {
        assert_eq!(action_of(&menu, label), Some(action), "for {label}");
    }
    // No "and N more" when every unread one is listed.
    assert!(!labels(&menu).iter().any(|l| l.contains("more")));
}

#[test]
fn icon_and_status_names_are_what_panels_read() {
    let names = [
        Icon::SignedOut,
        Icon::Offline,
        Icon::DoNotDisturb,
        Icon::Unread,
        Icon::Idle,
    ]
    .map(Icon::name);
    assert_eq!(
        names,
        [
            "dialog-warning",
            "network-offline",
            "notifications-disabled",
            "mail-unread",
            "mail-read"
        ]
    );
    assert_eq!(Attention::NeedsAttention.as_str(), "NeedsAttention");
    assert_eq!(Attention::Active.as_str(), "Active");
}
