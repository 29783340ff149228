//! Paths and the config file (`docs/agent.md`).
//!
//! `directories` gives the platform's conventions (`~/.local/share/tidings` on Linux).
//! A system unit passes `--data-dir` (or sets `$STATE_DIRECTORY`) instead.
//!
//! The config file is `<config dir>/tidings/config.toml` (`~/.config/tidings` on Linux);
//! every key is optional, unknown keys are an error (so a typo is not silently ignored),
//! and `TIDINGS_*` environment variables (and command-line flags) override it.

use std::path::{Path, PathBuf};

use directories::ProjectDirs;
use serde::Deserialize;

/// No home directory to derive a default path from.
#[derive(Debug, thiserror::Error)]
#[error("cannot find a home directory for the default data directory; pass --data-dir DIR")]
pub struct NoHomeDir;

fn dirs() -> Result<ProjectDirs, NoHomeDir> {
    ProjectDirs::from("", "", "tidings").ok_or(NoHomeDir)
}

/// The service's default data directory: `$STATE_DIRECTORY` under systemd, else
/// `<data dir>/tidings/service`. The agent's local mode uses it too, so `tidings
/// admin` works against the embedded service without `--data-dir`.
pub fn service_data_dir() -> Result<PathBuf, NoHomeDir> {
    if let Some(state) = std::env::var_os("STATE_DIRECTORY").filter(|s| !s.is_empty()) {
        return Ok(PathBuf::from(state));
    }
    Ok(dirs()?.data_dir().join("service"))
}

/// The agent's directory: its store and its device credential (`credentials.toml`).
pub fn agent_data_dir() -> Result<PathBuf, NoHomeDir> {
    Ok(dirs()?.data_dir().join("agent"))
}

/// Where a running agent leaves what other processes need to find it (the local
/// service's URL): `$XDG_RUNTIME_DIR/tidings`, or the agent's directory without one.
pub fn runtime_dir() -> Result<PathBuf, NoHomeDir> {
    let dirs = dirs()?;
    Ok(dirs
        .runtime_dir()
        .map_or_else(|| dirs.data_dir().join("agent"), PathBuf::from))
}

/// Where local mode writes its service's URL: `<runtime dir>/service.url`.
pub fn local_service_url_file() -> Result<PathBuf, NoHomeDir> {
    Ok(runtime_dir()?.join("service.url"))
}

/// The agent's IPC socket: `<runtime dir>/agent.sock`; on Windows the named pipe
/// `\\.\pipe\tidings-agent-<user>`.
pub fn agent_socket() -> Result<PathBuf, NoHomeDir> {
    #[cfg(windows)]
    {
        let user = std::env::var("USERNAME").unwrap_or_else(|_| "me".to_owned());
        Ok(PathBuf::from(format!(r"\\.\pipe\tidings-agent-{user}")))
    }
    #[cfg(not(windows))]
    Ok(runtime_dir()?.join("agent.sock"))
}

/// Creates `dir` (and its parents) and makes it private to this user (mode 0700).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// The config file's contents.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The `[agent]` table.
    #[serde(default)]
    pub agent: AgentConfig,
    /// `[apps."contoso.com"]` tables: per-app toast settings, by host name.
    #[serde(default)]
    pub apps: std::collections::BTreeMap<String, AppConfig>,
}

/// `[apps."HOST"]`: how one app's notifications behave on this device.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// `false`: no toasts for this app (its notifications are still stored and synced).
    pub toasts: Option<bool>,
    /// `false`: closing one of its toasts here does not dismiss it on other devices.
    pub dismiss_sync: Option<bool>,
}

/// `[agent]`: how the agent runs.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Notifications kept at most (default 10,000); `TIDINGS_HISTORY_CAP` overrides.
    pub history_cap: Option<usize>,
    /// Extra CAs to trust (PEM); `--ca-file` / `TIDINGS_CA_FILE` override.
    pub ca_file: Option<PathBuf>,
}

/// A config file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// The config file's path.
pub fn config_file() -> Result<PathBuf, NoHomeDir> {
    Ok(dirs()?.config_dir().join("config.toml"))
}

/// Reads `path` (a missing file is the defaults), then applies `TIDINGS_*` overrides.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let error = |message: String| ConfigError {
        path: path.display().to_string(),
        message,
    };
    let mut config = match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| error(e.to_string()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Config::default(),
        Err(e) => return Err(error(e.to_string())),
    };
    if let Some(cap) = std::env::var_os("TIDINGS_HISTORY_CAP") {
        let cap = cap.to_string_lossy();
        let parsed = cap
            .parse()
            .map_err(|_| error(format!("TIDINGS_HISTORY_CAP={cap:?} is not a number")))?;
        config.agent.history_cap = Some(parsed);
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_optional_and_typos_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        assert_eq!(load(&path).unwrap(), Config::default(), "no file: defaults");
        std::fs::write(&path, "[agent]\nhistory_cap = 500\n").unwrap();
        assert_eq!(load(&path).unwrap().agent.history_cap, Some(500));
        std::fs::write(&path, "[apps.\"contoso.com\"]\ntoasts = false\n").unwrap();
        let apps = load(&path).unwrap().apps;
        assert_eq!(apps["contoso.com"].toasts, Some(false));
        assert_eq!(apps["contoso.com"].dismiss_sync, None);
        std::fs::write(&path, "[apps.\"contoso.com\"]\ntoast = false\n").unwrap();
        assert!(load(&path).unwrap_err().to_string().contains("toast"));
        std::fs::write(&path, "[agent]\nhistory_capp = 500\n").unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(
            err.contains("history_capp") && err.contains("config.toml"),
            "{err}"
        );
    }
}
