//! The `dbusmenu` numbering: what a click on each number asks for, and numbers that stay
//! put while the menu changes under a panel that fetched it a moment ago.

use super::layout::{Ids, Item, Layout, Look, ROOT, layout};
use super::menu::{Action, DndLength, Quiet, State, Unread, tray};
use crate::protocol::NotificationId;
use crate::protocol::local::LinkState;

fn state(newest: &[(&str, &str)], dnd: Quiet) -> State {
    State {
        link: LinkState::Connected,
        service: "notify.example.com".to_owned(),
        unread: newest.len(),
        newest: newest
            .iter()
            .map(|(id, title)| Unread {
                id: NotificationId::new(*id),
                title: Some((*title).to_owned()),
                app: "chat.example.com".to_owned(),
            })
            .collect(),
        dnd,
        paused: Vec::new(),
    }
}

/// The number of the first item (searching submenus) whose label starts with `label`.
fn id_of(item: &Item, label: &str) -> Option<i32> {
    if let Look::Labelled { label: l, .. } = &item.look
        && l.starts_with(label)
    {
        return Some(item.id);
    }
    item.children.iter().find_map(|child| id_of(child, label))
}

fn laid_out(state: &State, ids: &mut Ids) -> Layout {
    layout(&tray(state).menu, ids)
}

#[test]
fn a_click_on_a_number_asks_for_that_entry_s_action() {
    let mut ids = Ids::default();
    let layout = laid_out(
        &state(&[("n2", "Build failed"), ("n1", "Lunch?")], Quiet::Off),
        &mut ids,
    );
    let root = &layout.root;
    assert_eq!((root.id, &root.look), (ROOT, &Look::Root));
    let click = |label: &str| layout.action(id_of(root, label).unwrap()).cloned();
    assert_eq!(
        click("Lunch?"),
        Some(Action::Open(NotificationId::new("n1")))
    );
    assert_eq!(click("Mark all read"), Some(Action::MarkAllRead));
    assert_eq!(
        click("For 1 hour"),
        Some(Action::DndOn(DndLength::Minutes(60)))
    );
    assert_eq!(
        click("chat.example.com"),
        Some(Action::PauseApp("chat.example.com".to_owned()))
    );
    assert_eq!(click("Quit"), Some(Action::Quit));
    // A greyed-out line and a submenu do nothing; nor does a number not in the menu.
    assert_eq!(click("2 unread"), None);
    assert_eq!(click("Do not disturb"), None);
    assert_eq!(layout.action(9_999), None);
}

#[test]
fn items_look_as_dbusmenu_draws_them() {
    let mut ids = Ids::default();
    let mut s = state(&[("n1", "Lunch?")], Quiet::Off);
    s.paused = vec!["mail.example.com".to_owned()];
    let layout = laid_out(&s, &mut ids);
    let top = &layout.root.children;
    assert_eq!(
        top[0].look,
        Look::Labelled {
            label: "1 unread".to_owned(),
            enabled: false,
            toggle: None
        }
    );
    assert!(top.iter().any(|item| item.look == Look::Separator));
    let pause = top
        .iter()
        .find(|item| matches!(&item.look, Look::Labelled { label, .. } if label == "Pause toasts for"))
        .unwrap();
    let toggles: Vec<_> = pause
        .children
        .iter()
        .map(|item| match &item.look {
            Look::Labelled { label, toggle, .. } => (label.as_str(), *toggle),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        toggles,
        [
            ("chat.example.com", Some(false)),
            ("mail.example.com", Some(true))
        ]
    );
    // Every number is given once.
    let mut all = Vec::new();
    let mut stack = vec![&layout.root];
    while let Some(item) = stack.pop() {
        all.push(item.id);
        stack.extend(&item.children);
    }
    let count = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), count);
}

#[test]
fn an_entry_keeps_its_number_while_the_menu_changes_around_it() {
    let mut ids = Ids::default();
    let before = laid_out(
        &state(&[("n2", "Build failed"), ("n1", "Lunch?")], Quiet::Off),
        &mut ids,
    );
    let labels = [
        "Lunch?",
        "Mark all read",
        "Do not disturb",
        "For 1 hour",
        "Quit",
    ];
    let numbers = |layout: &Layout| labels.map(|label| id_of(&layout.root, label).unwrap());
    // A new notification on top, one read, do-not-disturb turned on (its label changes).
    let after = laid_out(
        &state(
            &[("n3", "Deploy done"), ("n1", "Lunch?")],
            Quiet::Until("14:30".to_owned()),
        ),
        &mut ids,
    );
    assert_eq!(numbers(&after), numbers(&before));
    // The new entry has a number never given before; the gone one's number does nothing.
    let gone = id_of(&before.root, "Build failed").unwrap();
    let new = id_of(&after.root, "Deploy done").unwrap();
    assert!(new > numbers(&before).into_iter().max().unwrap());
    assert_eq!(after.action(gone), None);
    // Back in the menu later, it gets a new number: a click meant for the old one
    // cannot reach it.
    let again = laid_out(&state(&[("n2", "Build failed")], Quiet::Off), &mut ids);
    assert_ne!(id_of(&again.root, "Build failed"), Some(gone));
}
