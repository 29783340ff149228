//! The device credential: what `tidings login` (or local mode) saved so the agent can
//! sign in again. Kept in `credentials.toml` in the agent's directory, mode 0600; the
//! refresh token never goes to a log.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::AgentError;

/// A saved device credential.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Credentials {
    /// The service's URL; absent for local mode (the embedded service).
    pub service: Option<String>,
    /// The signed-in user's name.
    pub user: String,
    /// This device's id at the service.
    pub device_id: String,
    /// The long-lived device credential.
    pub refresh_token: String,
    /// Extra CAs to trust for this service (PEM), given at login.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("service", &self.service)
            .field("user", &self.user)
            .field("device_id", &self.device_id)
            .field("refresh_token", &"<redacted>")
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// The credential file in the agent's directory.
pub fn path(agent_dir: &Path) -> PathBuf {
    agent_dir.join("credentials.toml")
}

impl Credentials {
    /// Reads the credential, if one was saved.
    pub fn load(agent_dir: &Path) -> Result<Option<Self>, AgentError> {
        let file = path(agent_dir);
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(AgentError::Config(format!(
                    "reading {}: {e}",
                    file.display()
                )));
            }
        };
        toml::from_str(&text).map(Some).map_err(|e| {
            AgentError::Config(format!(
                "{} is not a valid credential ({e}); delete it and sign in again",
                file.display()
            ))
        })
    }

    /// Saves the credential with mode 0600 (written whole, then renamed into place).
    pub fn save(&self, agent_dir: &Path) -> Result<(), AgentError> {
        let io = |what: &str, e: std::io::Error| AgentError::Config(format!("{what}: {e}"));
        crate::config::create_private_dir(agent_dir)
            .map_err(|e| io("creating the agent directory", e))?;
        let text = toml::to_string(self)
            .map_err(|e| AgentError::Config(format!("encoding the credential: {e}")))?;
        let file = path(agent_dir);
        let temporary = file.with_extension("toml.new");
        write_private(&temporary, text.as_bytes()).map_err(|e| io("writing the credential", e))?;
        std::fs::rename(&temporary, &file).map_err(|e| io("saving the credential", e))
    }
}

impl Credentials {
    /// Deletes the saved credential (after `logout`).
    pub fn remove(agent_dir: &Path) -> Result<(), AgentError> {
        match std::fs::remove_file(path(agent_dir)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(AgentError::Config(format!("deleting the credential: {e}"))),
        }
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_round_trip_privately_and_never_print_the_token() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Credentials::load(dir.path()).unwrap(), None);
        let creds = Credentials {
            service: None,
            user: "alice".to_owned(),
            device_id: "d1".to_owned(),
            refresh_token: "rt.d1.secret".to_owned(),
            ca_file: None,
        };
        creds.save(dir.path()).unwrap();
        assert_eq!(Credentials::load(dir.path()).unwrap(), Some(creds.clone()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!format!("{creds:?}").contains("secret"));
    }
}
