//! The agent's icon in the desktop panel (`docs/tray.md`).
//!
//! [`menu`] works out what the icon shows and what its menu holds from the agent's
//! state, as a pure function tested as a table; [`layout`] numbers the menu's entries
//! as `dbusmenu` wants them, each keeping its number while it stays. On Linux, `sni`
//! serves the StatusNotifierItem and `dbusmenu` its menu on the session bus, drawing
//! what [`menu::tray`] returns and handing clicks back as its [`menu::Action`]s. Not
//! built yet: the agent starting the icon and carrying out the actions, and the
//! Windows notification-area icon.

#[cfg(target_os = "linux")]
mod dbusmenu;
pub mod layout;
pub mod menu;
#[cfg(target_os = "linux")]
pub mod sni;

#[cfg(test)]
mod layout_tests;
#[cfg(test)]
mod tests;
