//! The agent's icon in the desktop panel (`docs/tray.md`).
//!
//! [`menu`] works out what the icon shows and what its menu holds from the agent's
//! state, as a pure function tested as a table; [`layout`] numbers the menu's entries
//! as `dbusmenu` wants them, each keeping its number while it stays. The panel adapters (a
//! StatusNotifierItem on Linux, a notification-area icon on Windows) are not built yet;
//! they will draw what [`menu::tray`] returns and hand clicks back as its
//! [`menu::Action`]s.

pub mod layout;
pub mod menu;

#[cfg(test)]
mod layout_tests;
#[cfg(test)]
mod tests;
