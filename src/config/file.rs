//! Reading the config file: the `[service]` and `[agent]` tables as text values with
//! the line each is on (read by the kinds of `keys`, like flags and the environment),
//! and the `[apps."HOST"]` tables. Every error names the file and the line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::keys::{self, Table};

/// `[apps."HOST"]`: how one app's notifications behave on this device.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// `false`: no toasts for this app (its notifications are still stored and synced).
    pub toasts: Option<bool>,
    /// `false`: closing one of its toasts here does not dismiss it on other devices.
    pub dismiss_sync: Option<bool>,
}

/// A value from the file: its text and its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileValue {
    /// The value as text (a number or a boolean written out).
    pub text: String,
    /// The line it is on (1-based).
    pub line: usize,
}

/// What the config file says.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    /// Where it was read from (it may not exist).
    pub path: PathBuf,
    /// `[service]` values by key.
    pub service: BTreeMap<String, FileValue>,
    /// `[agent]` values by key.
    pub agent: BTreeMap<String, FileValue>,
    /// `[apps."HOST"]` tables by host name.
    pub apps: BTreeMap<String, AppConfig>,
}

impl ConfigFile {
    /// The values of `table`.
    pub fn table(&self, table: Table) -> &BTreeMap<String, FileValue> {
        match table {
            Table::Service => &self.service,
            Table::Agent => &self.agent,
        }
    }
}

/// A config that cannot be used: where, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{place}: {message}")]
pub struct ConfigError {
    /// `FILE:LINE`, `FILE`, or the environment variable.
    pub place: String,
    /// What is wrong, and how to fix it.
    pub message: String,
}

type Values = BTreeMap<Spanned<String>, Spanned<toml::Value>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(default)]
    service: Values,
    #[serde(default)]
    agent: Values,
    #[serde(default)]
    apps: BTreeMap<String, AppConfig>,
}

/// Reads the config file at `path`; a missing file is an empty one.
pub fn read(path: &Path) -> Result<ConfigFile, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(ConfigFile {
                path: path.to_owned(),
                ..ConfigFile::default()
            });
        }
        Err(e) => {
            return Err(ConfigError {
                place: path.display().to_string(),
                message: format!("cannot read it: {e}"),
            });
        }
    };
    let at = |offset: usize| ConfigError {
        place: format!("{}:{}", path.display(), line_of(&text, offset)),
        message: String::new(),
    };
    let document: Document = toml::from_str(&text).map_err(|e| ConfigError {
        message: e.message().trim().to_owned(),
        ..e.span().map_or_else(
            || ConfigError {
                place: path.display().to_string(),
                message: String::new(),
            },
            |span| at(span.start),
        )
    })?;
    Ok(ConfigFile {
        path: path.to_owned(),
        service: values(Table::Service, document.service, &text, &at)?,
        agent: values(Table::Agent, document.agent, &text, &at)?,
        apps: document.apps,
    })
}

/// The values of one table, each key known and each value a single value of its kind.
fn values(
    table: Table,
    raw: Values,
    text: &str,
    at: &impl Fn(usize) -> ConfigError,
) -> Result<BTreeMap<String, FileValue>, ConfigError> {
    let mut values = BTreeMap::new();
    for (name, value) in raw {
        let fail = |message: String| ConfigError {
            message,
            ..at(name.span().start)
        };
        let Some(key) = keys::find(table, name.get_ref()) else {
            let hint = keys::closest(table, name.get_ref())
                .map(|near| format!("; did you mean {near}?"))
                .unwrap_or_default();
            return Err(fail(format!(
                "[{}] has no key {}{hint} (docs/config.md lists them)",
                table.name(),
                name.get_ref()
            )));
        };
        let as_text = match value.get_ref() {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Float(f) => f.to_string(),
            other => {
                return Err(fail(format!(
                    "[{}] {}: takes one value, not a {}",
                    table.name(),
                    key.name,
                    other.type_str()
                )));
            }
        };
        key.kind
            .parse(&as_text)
            .map_err(|why| fail(format!("[{}] {}: {why}", table.name(), key.name)))?;
        let line = line_of(text, value.span().start);
        values.insert(
            key.name.to_owned(),
            FileValue {
                text: as_text,
                line,
            },
        );
    }
    Ok(values)
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |before| before.matches('\n').count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_text(text: &str) -> Result<ConfigFile, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        read(&path)
    }

    #[test]
    fn values_come_with_their_lines() {
        let file = read_text(
            "# tidings\n[service]\nlisten = \"0.0.0.0:443\"\nmax_connections = 500\n\n[agent]\ntoasts = false\n[apps.\"contoso.com\"]\ndismiss_sync = false\n",
        )
        .unwrap();
        assert_eq!(
            file.service["listen"],
            FileValue {
                text: "0.0.0.0:443".to_owned(),
                line: 3
            }
        );
        assert_eq!(file.service["max_connections"].text, "500");
        assert_eq!(file.service["max_connections"].line, 4);
        assert_eq!(file.agent["toasts"].text, "false");
        assert_eq!(file.apps["contoso.com"].dismiss_sync, Some(false));
        assert!(
            read(Path::new("/no/such/config.toml"))
                .unwrap()
                .service
                .is_empty()
        );
    }

    #[test]
    fn mistakes_name_the_file_line_and_key() {
        let cases = [
            (
                "[service]\nmax_conections = 5\n",
                ":2",
                "did you mean max_connections?",
            ),
            (
                "[service]\n\nheader_timeout = \"ten\"\n",
                ":3",
                "header_timeout: \"ten\" is not a duration",
            ),
            (
                "[agent]\nhistory_cap = -1\n",
                ":2",
                "history_cap: \"-1\" is not a whole number",
            ),
            ("[agent]\ntoasts = [1]\n", ":2", "takes one value"),
            ("[servce]\nlisten = \"x\"\n", ":1", "servce"),
            ("[apps.\"a.com\"]\n\ntoast = false\n", ":3", "toast"),
            ("[service\n", ":1", ""),
        ];
        for (text, line, says) in cases {
            let error = read_text(text).unwrap_err().to_string();
            assert!(
                error.contains(&format!("config.toml{line}:")),
                "{text:?}: {error}"
            );
            assert!(error.contains(says), "{text:?}: {error}");
        }
    }
}
