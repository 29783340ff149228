//! Paths, and the config file (`docs/config.md`).
//!
//! `directories` gives the platform's conventions (`~/.local/share/tidings` on Linux).
//! A system unit passes `--data-dir` (or sets `$STATE_DIRECTORY`) instead.
//!
//! The config file is `<config dir>/tidings/config.toml` (`~/.config/tidings` on Linux),
//! or the one `--config` names. [`keys`] lists every setting once; [`file`](mod@file) reads the
//! file (an unknown key or a bad value is an error naming the file and the line);
//! [`effective`] resolves each key: flag, else `TIDINGS_*` environment variable, else
//! file, else default.

pub mod effective;
pub mod file;
pub mod keys;
pub mod quiet;
pub mod values;

use std::path::{Path, PathBuf};

use directories::ProjectDirs;

pub use effective::{Effective, Setting, Source, resolve};
pub use file::{AppConfig, ConfigError, ConfigFile};
pub use keys::{Key, Table};

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

/// Where `tidingsw` (the Windows program without a console) writes its daily log
/// files: `<local data dir>/tidings/logs` (`%LOCALAPPDATA%\\tidings\\data\\logs` on
/// Windows).
pub fn log_dir() -> Result<PathBuf, NoHomeDir> {
    Ok(dirs()?.data_local_dir().join("logs"))
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

/// The config file's default path: `$CONFIGURATION_DIRECTORY/config.toml` under systemd
/// (`ConfigurationDirectory=tidings`: `/etc/tidings`), else `<config dir>/tidings/config.toml`.
pub fn config_file() -> Result<PathBuf, NoHomeDir> {
    if let Some(dir) = std::env::var_os("CONFIGURATION_DIRECTORY").filter(|s| !s.is_empty()) {
        return Ok(PathBuf::from(dir).join("config.toml"));
    }
    Ok(dirs()?.config_dir().join("config.toml"))
}

/// The config file to read: `path` when given (`--config` / `TIDINGS_CONFIG`), else
/// the default; a missing file is an empty one, except one named explicitly.
pub fn load(path: Option<&Path>) -> Result<ConfigFile, LoadError> {
    match path {
        Some(path) if !path.exists() => Err(LoadError::Config(ConfigError {
            place: path.display().to_string(),
            message: "no such file (given with --config or TIDINGS_CONFIG)".to_owned(),
        })),
        Some(path) => Ok(file::read(path)?),
        None => Ok(file::read(&config_file()?)?),
    }
}

/// Why the config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No home directory for the default path.
    #[error(transparent)]
    NoHome(#[from] NoHomeDir),
    /// The file is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
}
