//! The apps whose toasts are paused on this device from the panel icon's menu, kept in
//! meta (`Mpaused`, the host names one per line) so a pause survives a restart. Their
//! notifications are still stored, synced and listed; only their toasts are held back,
//! as `[apps."HOST"] toasts = false` does from the config file.

use super::{AgentStore, AgentStoreError};

const PAUSED: &[u8] = b"Mpaused";

impl AgentStore {
    /// The paused apps, sorted.
    pub fn paused_apps(&self) -> Result<Vec<String>, AgentStoreError> {
        let Some(bytes) = self.cache.get(PAUSED)? else {
            return Ok(Vec::new());
        };
        let text = String::from_utf8_lossy(&bytes);
        Ok(text.lines().map(str::to_owned).collect())
    }

    /// Whether `host`'s toasts are paused.
    pub fn is_paused(&self, host: &str) -> Result<bool, AgentStoreError> {
        Ok(self.paused_apps()?.iter().any(|app| app == host))
    }

    /// Pauses (`true`) or resumes `host`'s toasts; durable on return.
    pub async fn set_paused(&self, host: &str, paused: bool) -> Result<(), AgentStoreError> {
        let mut apps = self.paused_apps()?;
        apps.retain(|app| app != host);
        if paused {
            apps.push(host.to_owned());
            apps.sort();
        }
        if apps.is_empty() {
            self.cache.remove(PAUSED)?;
        } else {
            self.cache.insert(PAUSED, apps.join("\n").as_bytes())?;
        }
        self.flush().await?;
        Ok(())
    }
}
