//! The effective settings of one table: for each key, a command-line flag, else its
//! environment variable, else the config file, else the default; with where each
//! value came from (for `tidings config`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::file::{ConfigError, ConfigFile};
use super::keys::{self, Key, Table};
use super::values::{self, Value};

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The key's default.
    Default,
    /// The config file, at this line.
    File {
        /// The file.
        path: PathBuf,
        /// The line.
        line: usize,
    },
    /// This environment variable.
    Env(String),
    /// This command-line flag.
    Flag(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File { path, line } => write!(f, "{}:{line}", path.display()),
            Source::Env(name) => write!(f, "environment {name}"),
            Source::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// One key's effective value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The key.
    pub key: &'static Key,
    /// Its value as text, and read; `None` when unset (no default).
    pub value: Option<(String, Value)>,
    /// Where the value came from.
    pub source: Source,
}

impl Setting {
    /// The value as `tidings config` prints it: secrets hidden.
    pub fn shown(&self) -> String {
        match &self.value {
            None => format!("(unset: {})", self.key.unset),
            Some(_) if self.key.kind == values::Kind::Secret => "(secret)".to_owned(),
            Some((text, _)) if self.key.kind == values::Kind::Store => values::shown_store(text),
            Some((text, _)) => text.clone(),
        }
    }
}

/// The effective settings of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    /// The table.
    pub table: Table,
    /// Every key of the table, in the order of [`keys::KEYS`].
    pub settings: Vec<Setting>,
}

/// Resolves every key of `table` from `flags` (key name → value as given), the
/// environment, then `file`.
pub fn resolve(
    table: Table,
    flags: &BTreeMap<&'static str, String>,
    file: &ConfigFile,
) -> Result<Effective, ConfigError> {
    resolve_with(table, flags, &|name| std::env::var(name).ok(), file)
}

/// [`resolve`], reading the environment through `env`.
pub fn resolve_with(
    table: Table,
    flags: &BTreeMap<&'static str, String>,
    env: &dyn Fn(&str) -> Option<String>,
    file: &ConfigFile,
) -> Result<Effective, ConfigError> {
    let settings = keys::of(table)
        .map(|key| setting(key, flags.get(key.name), env, file))
        .collect::<Result<_, _>>()?;
    Ok(Effective { table, settings })
}

fn setting(
    key: &'static Key,
    flag: Option<&String>,
    env: &dyn Fn(&str) -> Option<String>,
    file: &ConfigFile,
) -> Result<Setting, ConfigError> {
    let env = env(&key.env()).filter(|v| !v.is_empty());
    let (text, source) = if let Some(text) = flag {
        (Some(text.clone()), Source::Flag(key.flag()))
    } else if let Some(text) = env {
        (Some(text), Source::Env(key.env()))
    } else if let Some(value) = file.table(key.table).get(key.name) {
        let source = Source::File {
            path: file.path.clone(),
            line: value.line,
        };
        (Some(value.text.clone()), source)
    } else {
        (key.default.map(str::to_owned), Source::Default)
    };
    let value = match text {
        None => None,
        Some(text) => {
            let read = key.kind.parse(&text).map_err(|why| ConfigError {
                place: source.to_string(),
                message: format!("[{}] {}: {why}", key.table.name(), key.name),
            })?;
            Some((text, read))
        }
    };
    Ok(Setting { key, value, source })
}

impl Effective {
    fn value(&self, name: &str) -> Option<&Value> {
        let setting = self.settings.iter().find(|s| s.key.name == name)?;
        setting.value.as_ref().map(|(_, value)| value)
    }

    /// A count key's value.
    pub fn count(&self, name: &str) -> Option<u64> {
        match self.value(name)? {
            Value::Count(n) => Some(*n),
            _ => None,
        }
    }

    /// A count key's value as a `usize` (saturating).
    pub fn size(&self, name: &str) -> Option<usize> {
        self.count(name)
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// A duration key's value.
    pub fn duration(&self, name: &str) -> Option<Duration> {
        match self.value(name)? {
            Value::Duration(d) => Some(*d),
            _ => None,
        }
    }

    /// An address key's value.
    pub fn address(&self, name: &str) -> Option<SocketAddr> {
        match self.value(name)? {
            Value::Address(a) => Some(*a),
            _ => None,
        }
    }

    /// A path key's value.
    pub fn path(&self, name: &str) -> Option<PathBuf> {
        match self.value(name)? {
            Value::Path(p) => Some(p.clone()),
            _ => None,
        }
    }

    /// A boolean key's value.
    pub fn flag(&self, name: &str) -> Option<bool> {
        match self.value(name)? {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The secrets that are set, with where each came from.
    pub fn secrets(&self) -> Vec<(&'static str, &Source)> {
        self.settings
            .iter()
            .filter(|s| s.key.kind == values::Kind::Secret && s.value.is_some())
            .map(|s| (s.key.name, &s.source))
            .collect()
    }

    /// A text key's value (URL, word or secret).
    pub fn text(&self, name: &str) -> Option<String> {
        match self.value(name)? {
            Value::Text(t) => Some(t.clone()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::file::FileValue;

    /// Flag over environment over file over default, each saying where it came from.
    #[test]
    fn a_flag_beats_the_environment_which_beats_the_file_which_beats_the_default() {
        let mut file = ConfigFile {
            path: PathBuf::from("/etc/tidings/config.toml"),
            ..ConfigFile::default()
        };
        let in_file = [
            ("password_queue", "3", 4),
            ("max_channels", "70", 5),
            ("body_timeout", "1m", 6),
        ];
        for (name, text, line) in in_file {
            let value = FileValue {
                text: text.to_owned(),
                line,
            };
            file.service.insert(name.to_owned(), value);
        }
        let env = |name: &str| match name {
            "TIDINGS_MAX_CHANNELS" => Some("80".to_owned()),
            "TIDINGS_BODY_TIMEOUT" => Some("2m".to_owned()),
            _ => None,
        };
        let flags = BTreeMap::from([("body_timeout", "3m".to_owned())]);
        let effective = resolve_with(Table::Service, &flags, &env, &file).unwrap();
        let source = |name: &str| {
            let setting = effective
                .settings
                .iter()
                .find(|s| s.key.name == name)
                .unwrap();
            setting.source.to_string()
        };
        assert_eq!(
            effective.duration("body_timeout"),
            Some(Duration::from_secs(180))
        );
        assert_eq!(source("body_timeout"), "flag --body-timeout");
        assert_eq!(effective.size("max_channels"), Some(80));
        assert_eq!(source("max_channels"), "environment TIDINGS_MAX_CHANNELS");
        assert_eq!(effective.size("password_queue"), Some(3));
        assert_eq!(source("password_queue"), "/etc/tidings/config.toml:4");
        assert_eq!(effective.size("max_connections"), Some(10_000));
        assert_eq!(source("max_connections"), "default");
        assert_eq!(effective.path("tls_cert"), None);
    }
}

#[cfg(test)]
mod more_tests {
    use super::*;

    #[test]
    fn a_bad_environment_value_names_the_variable() {
        let env = |name: &str| (name == "TIDINGS_HISTORY_CAP").then(|| "lots".to_owned());
        let error = resolve_with(Table::Agent, &BTreeMap::new(), &env, &ConfigFile::default())
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "environment TIDINGS_HISTORY_CAP: [agent] history_cap: \"lots\" is not a whole number"
        );
    }
}
