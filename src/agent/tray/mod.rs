//! The agent's icon in the desktop panel (`docs/tray.md`).
//!
//! [`menu`] works out what the icon shows and what its menu holds from the agent's
//! state, as a pure function tested as a table; [`layout`] numbers the menu's entries
//! as `dbusmenu` wants them, each keeping its number while it stays. On Linux, `sni`
//! serves the StatusNotifierItem and `dbusmenu` its menu on the session bus, drawing
//! what [`menu::tray`] returns and handing clicks back as its [`menu::Action`]s, and
//! `live` runs it as one of the agent's parts, through the loop in `drive` (the
//! same for every panel). [`state`] reads the icon's state from
//! the agent and carries out the clicks, whatever the panel. On Windows, `win` draws
//! the same as a notification-area icon.

#[cfg(target_os = "linux")]
mod dbusmenu;
#[cfg(any(target_os = "linux", windows))]
mod drive;
pub mod layout;
#[cfg(target_os = "linux")]
pub(super) mod live;
pub mod menu;
#[cfg(target_os = "linux")]
pub mod sni;
pub mod state;
#[cfg(windows)]
pub(super) mod win;

/// The session bus the icon is served on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bus {
    /// The user's session bus (`DBUS_SESSION_BUS_ADDRESS`).
    Session,
    /// The bus at this address (tests: a private bus).
    Address(String),
}

#[cfg(test)]
mod layout_tests;
#[cfg(test)]
mod tests;
