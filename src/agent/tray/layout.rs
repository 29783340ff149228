//! The menu as `dbusmenu` lays it out (the protocol panels use to show a
//! StatusNotifierItem's menu): numbered items with their properties, and what a click
//! on each number asks for. Pure, as [`super::menu`] is; the D-Bus adapter only
//! serialises the [`Item`] tree and looks clicks up in [`Layout::action`].
//!
//! A panel shows a menu it fetched a moment ago and reports a click by number, so the
//! numbers must not move under it: an entry keeps its number for as long as it stays in
//! the menu (a notification's entry by its id, an app's by its host), and a number that
//! left the menu is never reused ([`Ids`]). A click that arrives for an entry that has
//! gone does nothing rather than something else.

use std::collections::HashMap;

use super::menu::{Action, Entry};

/// The number of the menu's root (dbusmenu's convention).
pub const ROOT: i32 = 0;

/// One item of the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Its number.
    pub id: i32,
    /// What it looks like.
    pub look: Look,
    /// Its submenu's items (empty for a plain item).
    pub children: Vec<Item>,
}

/// An item's dbusmenu properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Look {
    /// The root: holds the menu.
    Root,
    /// A line with a label (`enabled`: clickable; `toggle`: a check mark, ticked or not;
    /// with children: opens a submenu).
    Labelled {
        /// What it says.
        label: String,
        /// Whether a click does something.
        enabled: bool,
        /// A check mark and its state.
        toggle: Option<bool>,
    },
    /// A separator line.
    Separator,
}

/// The numbers given so far: each entry's key to its number.
#[derive(Debug, Default)]
pub struct Ids {
    given: HashMap<String, i32>,
    next: i32,
}

impl Ids {
    /// The number for `key`: the one it had, or the next never given.
    fn of(&mut self, key: String) -> i32 {
        let next = &mut self.next;
        *self.given.entry(key).or_insert_with(|| {
            *next += 1;
            *next
        })
    }

    /// Forgets every key not in `kept` (their numbers are not given again).
    fn keep_only(&mut self, kept: &HashMap<String, i32>) {
        self.given.retain(|key, _| kept.contains_key(key));
    }
}

/// A menu laid out: the tree and what each number's click asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The root item, holding the menu.
    pub root: Item,
    actions: HashMap<i32, Action>,
}

impl Layout {
    /// What a click on item `id` asks for: nothing for a greyed-out line, a separator,
    /// a submenu, or a number not in this layout.
    pub fn action(&self, id: i32) -> Option<&Action> {
        self.actions.get(&id)
    }
}

/// Lays `menu` out, numbering its entries with `ids` (kept from the last layout).
pub fn layout(menu: &[Entry], ids: &mut Ids) -> Layout {
    let mut walk = Walk {
        ids,
        keys: HashMap::new(),
        actions: HashMap::new(),
    };
    let children = walk.entries(menu, "");
    let Walk { ids, keys, actions } = walk;
    ids.keep_only(&keys);
    Layout {
        root: Item {
            id: ROOT,
            look: Look::Root,
            children,
        },
        actions,
    }
}

/// One layout in the making.
struct Walk<'a> {
    ids: &'a mut Ids,
    keys: HashMap<String, i32>,
    actions: HashMap<i32, Action>,
}

impl Walk<'_> {
    fn entries(&mut self, entries: &[Entry], parent: &str) -> Vec<Item> {
        let (mut submenus, mut separators) = (0, 0);
        entries
            .iter()
            .map(|entry| {
                let ordinal = match entry {
                    Entry::Submenu { .. } => &mut submenus,
                    Entry::Separator => &mut separators,
                    _ => return self.entry(entry, parent, 0),
                };
                *ordinal += 1;
                self.entry(entry, parent, *ordinal)
            })
            .collect()
    }

    /// Item of `entry`, the `ordinal`-th submenu or separator of its menu if it is one.
    fn entry(&mut self, entry: &Entry, parent: &str, ordinal: usize) -> Item {
        let key = format!("{parent}/{}", key(entry, ordinal));
        let id = self.ids.of(key.clone());
        self.keys.insert(key.clone(), id);
        let (look, children, action) = match entry {
            Entry::Item { label, action } => (
                labelled(label, action.is_some(), None),
                Vec::new(),
                action.clone(),
            ),
            Entry::Check {
                label,
                checked,
                action,
            } => (
                labelled(label, true, Some(*checked)),
                Vec::new(),
                Some(action.clone()),
            ),
            Entry::Submenu { label, entries } => (
                labelled(label, true, None),
                self.entries(entries, &key),
                None,
            ),
            Entry::Separator => (Look::Separator, Vec::new(), None),
        };
        if let Some(action) = action {
            self.actions.insert(id, action);
        }
        Item { id, look, children }
    }
}

fn labelled(label: &str, enabled: bool, toggle: Option<bool>) -> Look {
    Look::Labelled {
        label: label.to_owned(),
        enabled,
        toggle,
    }
}

/// What keeps an entry's number: what it acts on when it acts on something (a
/// notification, an app), else its label; a submenu or a separator which one of its
/// kind it is.
fn key(entry: &Entry, ordinal: usize) -> String {
    match entry {
        Entry::Item {
            action: Some(Action::Open(id)),
            ..
        } => format!("open:{id}"),
        Entry::Check {
            action: Action::PauseApp(app) | Action::ResumeApp(app),
            ..
        } => format!("app:{app}"),
        Entry::Item { label, .. } | Entry::Check { label, .. } => format!("label:{label}"),
        // A submenu's label says its state ("Do not disturb (until 14:30)"), and how
        // many unread are listed above it changes: keyed by which submenu it is.
        Entry::Submenu { .. } => format!("submenu:{ordinal}"),
        Entry::Separator => format!("separator:{ordinal}"),
    }
}
