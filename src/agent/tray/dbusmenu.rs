//! `com.canonical.dbusmenu`: the status icon's menu as panels fetch it (`GetLayout`,
//! the properties of items) and report clicks on it (`Event`), drawn from the numbered
//! [`Layout`](super::layout::Layout) of what the agent shows now; a click becomes the
//! [`Action`] of its entry. Served beside the item by [`super::sni`].

// zbus's `interface` macro passes every argument on, those the method ignores too.
#![allow(clippy::used_underscore_binding)]

use std::collections::HashMap;

use serde::Serialize;
use tokio::sync::mpsc;
use zbus::object_server::SignalEmitter;
use zbus::{OwnedVariant, Structure, Type, Variant};

use super::layout::{Item, Look};
use super::menu::Action;
use super::sni::{Shared, lock};

/// `com.canonical.dbusmenu`.
pub(super) struct MenuIface {
    pub(super) shown: Shared,
    pub(super) clicks: mpsc::Sender<Action>,
}

/// One item as `GetLayout` returns it: `(ia{sv}av)`, each child a variant of the same.
#[derive(Debug, Serialize, Type)]
pub struct Node {
    id: i32,
    properties: HashMap<String, Variant<'static>>,
    children: Vec<Variant<'static>>,
}

// The protocols fix these methods, `&self` and all, constant or not.
#[allow(
    clippy::unused_self,
    clippy::unnecessary_literal_bound,
    clippy::needless_pass_by_value
)]
#[zbus::interface(name = "com.canonical.dbusmenu")]
impl MenuIface {
    #[zbus(property)]
    fn version(&self) -> u32 {
        3
    }

    #[zbus(property)]
    fn text_direction(&self) -> &str {
        "ltr"
    }

    #[zbus(property)]
    fn status(&self) -> &str {
        "normal"
    }

    #[zbus(property)]
    fn icon_theme_path(&self) -> Vec<String> {
        Vec::new()
    }

    fn get_layout(
        &self,
        parent_id: i32,
        recursion_depth: i32,
        property_names: Vec<&str>,
    ) -> zbus::fdo::Result<(u32, Node)> {
        let shown = lock(&self.shown);
        let parent = find(&shown.layout.root, parent_id)
            .ok_or_else(|| zbus::fdo::Error::InvalidArgs(format!("no menu item {parent_id}")))?;
        let depth = usize::try_from(recursion_depth).ok();
        Ok((shown.revision, node(parent, depth, &property_names)))
    }

    fn get_group_properties(
        &self,
        ids: Vec<i32>,
        property_names: Vec<&str>,
    ) -> Vec<(i32, HashMap<String, Variant<'static>>)> {
        let shown = lock(&self.shown);
        let mut found = Vec::new();
        every(&shown.layout.root, &mut |item| {
            if ids.is_empty() || ids.contains(&item.id) {
                found.push((item.id, properties(item, &property_names)));
            }
        });
        found
    }

    fn get_property(&self, id: i32, name: &str) -> zbus::fdo::Result<OwnedVariant> {
        let shown = lock(&self.shown);
        let item = find(&shown.layout.root, id)
            .ok_or_else(|| zbus::fdo::Error::InvalidArgs(format!("no menu item {id}")))?;
        let value = properties(item, &[name])
            .remove(name)
            .ok_or_else(|| zbus::fdo::Error::InvalidArgs(format!("no property {name}")))?;
        OwnedVariant::try_from(value).map_err(|e| zbus::fdo::Error::Failed(e.to_string()))
    }

    fn event(&self, id: i32, event_id: &str, _data: OwnedVariant, _timestamp: u32) {
        self.clicked(id, event_id);
    }

    /// Several events at once; answers the ids it did not know.
    fn event_group(&self, events: Vec<(i32, String, OwnedVariant, u32)>) -> Vec<i32> {
        events
            .into_iter()
            .filter(|(id, event, ..)| !self.clicked(*id, event))
            .map(|(id, ..)| id)
            .collect()
    }

    /// Nothing to prepare before a submenu opens: the layout is always current.
    fn about_to_show(&self, _id: i32) -> bool {
        false
    }

    fn about_to_show_group(&self, _ids: Vec<i32>) -> (Vec<i32>, Vec<i32>) {
        (Vec::new(), Vec::new())
    }

    #[zbus(signal)]
    pub(super) async fn layout_updated(
        emitter: &SignalEmitter<'_>,
        revision: u32,
        parent: i32,
    ) -> zbus::Result<()>;
}

impl MenuIface {
    /// Hands the action of a click on item `id` on; whether `id` is in the menu.
    fn clicked(&self, id: i32, event: &str) -> bool {
        let (action, known) = {
            let shown = lock(&self.shown);
            let action = shown.layout.action(id).cloned();
            (action, find(&shown.layout.root, id).is_some())
        };
        if event == "clicked"
            && let Some(action) = action
        {
            let _ = self.clicks.try_send(action);
        }
        known
    }
}

fn find(item: &Item, id: i32) -> Option<&Item> {
    if item.id == id {
        return Some(item);
    }
    item.children.iter().find_map(|child| find(child, id))
}

fn every<'a>(item: &'a Item, visit: &mut impl FnMut(&'a Item)) {
    visit(item);
    for child in &item.children {
        every(child, visit);
    }
}

/// `item` and its children `depth` levels down (`None`: all).
fn node(item: &Item, depth: Option<usize>, wanted: &[&str]) -> Node {
    let children = match depth {
        Some(0) => Vec::new(),
        _ => item
            .children
            .iter()
            .map(|child| structure(node(child, depth.map(|d| d - 1), wanted)))
            .collect(),
    };
    Node {
        id: item.id,
        properties: properties(item, wanted),
        children,
    }
}

/// A child as `av` holds it: the structure `(ia{sv}av)` in a variant.
fn structure(node: Node) -> Variant<'static> {
    Structure::builder()
        .add_field(node.id)
        .add_field(node.properties)
        .add_field(node.children)
        .build()
        .map_or_else(|_| Variant::from(0_i32), Variant::from)
}

/// An item's properties as dbusmenu names them (only those `wanted`, or all when none
/// is named); defaults (`enabled` true, type `standard`) are left out, as the spec
/// allows.
fn properties(item: &Item, wanted: &[&str]) -> HashMap<String, Variant<'static>> {
    let mut all: Vec<(&str, Variant<'static>)> = Vec::new();
    if !item.children.is_empty() {
        all.push(("children-display", Variant::from("submenu")));
    }
    match &item.look {
        Look::Root => {}
        Look::Separator => all.push(("type", Variant::from("separator"))),
        Look::Labelled {
            label,
            enabled,
            toggle,
        } => {
            all.push(("label", Variant::from(label.clone())));
            if !enabled {
                all.push(("enabled", Variant::from(false)));
            }
            if let Some(ticked) = toggle {
                all.push(("toggle-type", Variant::from("checkmark")));
                all.push(("toggle-state", Variant::from(i32::from(*ticked))));
            }
        }
    }
    all.into_iter()
        .filter(|(name, _)| wanted.is_empty() || wanted.contains(name))
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}
