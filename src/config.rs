//! Paths: where tidings keeps its data by default (DESIGN section 8).
//!
//! `directories` gives the platform's conventions (`~/.local/share/tidings` on Linux).
//! A system unit passes `--data-dir` (or sets `$STATE_DIRECTORY`) instead.

use std::path::PathBuf;

use directories::ProjectDirs;

/// No home directory to derive a default path from.
#[derive(Debug, thiserror::Error)]
#[error("cannot find a home directory for the default data directory; pass --data-dir DIR")]
pub struct NoHomeDir;

fn dirs() -> Result<ProjectDirs, NoHomeDir> {
    ProjectDirs::from("", "", "tidings").ok_or(NoHomeDir)
}

/// The service's default data directory: `$STATE_DIRECTORY` under systemd, else
/// `<data dir>/tidings/service`.
pub fn service_data_dir() -> Result<PathBuf, NoHomeDir> {
    if let Some(state) = std::env::var_os("STATE_DIRECTORY").filter(|s| !s.is_empty()) {
        return Ok(PathBuf::from(state));
    }
    Ok(dirs()?.data_dir().join("service"))
}
