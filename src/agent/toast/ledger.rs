//! The ledger of toasts on screen: notification id → the server's toast id, kept in
//! the runtime directory (`toasts.json`, 0600), which lives as long as the login session
//! and its notification server do.
//!
//! After an agent restart the desktop presenter adopts these toasts: it closes the ones
//! handled meanwhile and re-shows the others in place, which makes the server send
//! their responses to the new agent. Errors only cost that; they are logged, not fatal.
//!
//! The presenter stages each new list under its own lock (so lists are staged in the
//! order of the changes) and writes it on a blocking thread, off the async runtime.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::protocol::NotificationId;
use crate::sync::lock;

/// Where the ledger is kept (none: nothing is kept). Cheap to clone; clones share it.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    path: Option<PathBuf>,
    /// The newest list not written yet.
    staged: Arc<Mutex<Option<HashMap<NotificationId, u32>>>>,
    /// Writes one at a time, each the newest list staged when it starts; so the last
    /// write is always of the newest list, whatever order the writers run in.
    writing: Arc<Mutex<()>>,
}

impl Ledger {
    /// A ledger in the file `path`.
    pub fn at(path: PathBuf) -> Self {
        Self {
            path: Some(path),
            ..Self::default()
        }
    }

    /// The toasts a previous agent left on screen.
    pub fn load(&self) -> HashMap<NotificationId, u32> {
        let Some(path) = &self.path else {
            return HashMap::new();
        };
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable toast ledger");
                HashMap::new()
            }),
            Err(_) => HashMap::new(),
        }
    }

    /// Makes `shown` the list to write next (cheap: call it under the lock that orders
    /// the changes), replacing one staged before and not written yet.
    pub fn stage(&self, shown: HashMap<NotificationId, u32>) {
        if self.path.is_some() {
            *lock(&self.staged) = Some(shown);
        }
    }

    /// Writes the newest staged list, if one is waiting. Blocking file I/O: run it off
    /// the async runtime, once after each [`Ledger::stage`].
    pub fn write_staged(&self) {
        let Some(path) = &self.path else { return };
        let _one_at_a_time = lock(&self.writing);
        let Some(shown) = lock(&self.staged).take() else {
            return;
        };
        if let Err(e) = write_private(path, &shown) {
            tracing::debug!(path = %path.display(), error = %e, "could not write the toast ledger");
        }
    }
}

fn write_private(
    path: &std::path::Path,
    shown: &HashMap<NotificationId, u32>,
) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        crate::config::create_private_dir(dir)?;
    }
    let temporary = path.with_extension("json.tmp");
    std::fs::write(&temporary, serde_json::to_vec(shown)?)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::rename(temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_ledger_loads_back_and_garbage_loads_empty() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::at(dir.path().join("tidings/toasts.json"));
        assert!(ledger.load().is_empty());
        let shown = HashMap::from([(NotificationId::new("a"), 7), (NotificationId::new("b"), 9)]);
        ledger.stage(shown.clone());
        ledger.write_staged();
        assert_eq!(ledger.load(), shown);
        std::fs::write(dir.path().join("tidings/toasts.json"), b"{not json").unwrap();
        assert!(ledger.load().is_empty());
    }

    /// Writers may run in any order; the file ends with the list staged last.
    #[test]
    fn the_newest_staged_list_is_the_one_left_whatever_order_writers_run_in() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::at(dir.path().join("toasts.json"));
        let older = HashMap::from([(NotificationId::new("a"), 1)]);
        let newer = HashMap::from([(NotificationId::new("b"), 2)]);
        ledger.stage(older);
        ledger.stage(newer.clone());
        // The writer spawned for the newer list runs first and takes it...
        ledger.write_staged();
        // ...and the one spawned for the older list finds nothing left to write.
        ledger.write_staged();
        assert_eq!(ledger.load(), newer);
        let writers: Vec<_> = (0..8u32)
            .map(|n| {
                ledger.stage(HashMap::from([(NotificationId::new("c"), n)]));
                let ledger = ledger.clone();
                std::thread::spawn(move || ledger.write_staged())
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        assert_eq!(
            ledger.load(),
            HashMap::from([(NotificationId::new("c"), 7)])
        );
    }
}
