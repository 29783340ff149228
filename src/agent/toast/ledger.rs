//! The ledger of toasts on screen: notification id → the server's toast id, kept in
//! the runtime directory (`toasts.json`, 0600), which lives as long as the login session
//! and its notification server do.
//!
//! After an agent restart the desktop presenter adopts these toasts: it closes the ones
//! handled meanwhile and re-shows the others in place, which makes the server send
//! their responses to the new agent. Errors only cost that; they are logged, not fatal.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::protocol::NotificationId;

/// Where the ledger is kept (none: nothing is kept).
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    path: Option<PathBuf>,
    /// Saves one at a time: two at once would share the temporary file.
    writing: std::sync::Arc<std::sync::Mutex<()>>,
}

impl Ledger {
    /// A ledger in the file `path`.
    pub fn at(path: PathBuf) -> Self {
        Self {
            path: Some(path),
            writing: std::sync::Arc::default(),
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

    /// Replaces the ledger with `shown`.
    pub fn save(&self, shown: &HashMap<NotificationId, u32>) {
        let Some(path) = &self.path else { return };
        let _one_at_a_time = crate::sync::lock(&self.writing);
        if let Err(e) = write_private(path, shown) {
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
        ledger.save(&shown);
        assert_eq!(ledger.load(), shown);
        std::fs::write(dir.path().join("tidings/toasts.json"), b"{not json").unwrap();
        assert!(ledger.load().is_empty());
    }
}
