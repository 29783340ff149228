//! The panel icon as one of the agent's parts on Linux: serves the StatusNotifierItem
//! on the session bus, registers it with the panel's watcher (again each time a
//! watcher appears: a panel started, or restarted, after the agent), and hands it to
//! the icon's loop (`drive.rs`), which redraws it and carries out its clicks.
//!
//! No session bus, or no panel that hosts status icons: the agent says so once in its
//! log and runs as before.

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::protocol::Timestamp;

use super::super::AgentHandle;
use super::Bus;
use super::drive::{Panel, drive};
use super::menu::State;
use super::sni::{PanelIcon, WATCHER};
use super::state::state;

/// Serves the icon until `stop`; `quit` is what its "Quit" cancels.
pub async fn run(handle: AgentHandle, bus: Bus, quit: CancellationToken, stop: CancellationToken) {
    tokio::select! {
        () = stop.cancelled() => {}
        () = serve(&handle, &bus, &quit) => {}
    }
}

async fn serve(handle: &AgentHandle, bus: &Bus, quit: &CancellationToken) {
    let connection = match connect(bus).await {
        Ok(connection) => connection,
        Err(e) => {
            tracing::info!(error = %e, "no session bus: no icon in the panel");
            return;
        }
    };
    let (icon, mut clicks) =
        match PanelIcon::serve(&connection, &state(handle, Timestamp::now())).await {
            Ok(served) => served,
            Err(e) => {
                tracing::warn!(error = %e, "could not serve the panel icon on the session bus");
                return;
            }
        };
    let watchers = match watcher_changes(&connection).await {
        Ok(stream) => Some(stream),
        Err(e) => {
            tracing::warn!(error = %e, "cannot follow the panel's watcher; the icon registers once");
            None
        }
    };
    register(&icon, true).await;
    let mut panel = Sni { icon, watchers };
    drive(handle, &mut panel, &mut clicks, quit).await;
}

/// The StatusNotifierItem and the watcher's comings and goings.
struct Sni {
    icon: PanelIcon,
    watchers: Option<Watchers>,
}

impl Panel for Sni {
    async fn show(&mut self, state: &State) {
        if let Err(e) = self.icon.show(state).await {
            tracing::warn!(error = %e, "could not redraw the panel icon");
        }
    }

    /// A watcher took the name (not: one went away).
    async fn needs_tending(&mut self) {
        let Some(stream) = &mut self.watchers else {
            return std::future::pending().await;
        };
        loop {
            match stream.next().await {
                Some(signal) if signal.args().is_ok_and(|a| a.new_owner().is_some()) => return,
                Some(_) => {}
                None => return std::future::pending().await,
            }
        }
    }

    async fn tend(&mut self) {
        register(&self.icon, false).await;
    }
}

async fn connect(bus: &Bus) -> zbus::Result<zbus::Connection> {
    match bus {
        Bus::Session => zbus::Connection::session().await,
        Bus::Address(address) => {
            zbus::connection::Builder::address(address.as_str())
                .build()
                .await
        }
    }
}

/// Registers the icon with the panel's watcher; `first`: the agent is starting, so say
/// once in the log when there is none.
async fn register(icon: &PanelIcon, first: bool) {
    match icon.register().await {
        Ok(true) => tracing::info!(item = icon.name(), "the icon is in the panel"),
        Ok(false) if first => tracing::info!(
            "no panel hosts status icons (no {WATCHER} on the session bus); the icon appears when one starts"
        ),
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "the panel refused the icon"),
    }
}

type Watchers = zbus::fdo::NameOwnerChangedStream;

/// Each change of the watcher's owner on the bus.
async fn watcher_changes(connection: &zbus::Connection) -> zbus::Result<Watchers> {
    let proxy = zbus::fdo::DBusProxy::new(connection).await?;
    proxy
        .receive_name_owner_changed_with_args(&[(0, WATCHER)])
        .await
}
