//! Paths: where tidings keeps its data by default (DESIGN section 8).
//!
//! `directories` gives the platform's conventions (`~/.local/share/tidings` on Linux).
//! A system unit passes `--data-dir` (or sets `$STATE_DIRECTORY`) instead.

use std::path::{Path, PathBuf};

use directories::ProjectDirs;

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
