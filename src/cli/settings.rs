//! From the config (flags, environment, file, defaults) to the settings the service
//! and the agent run with, and `tidings config`, which prints the effective values and
//! where each came from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde_json::{Value, json};

use crate::agent::toast::AppPrefs;
use crate::config::{self, ConfigFile, Effective, Source, Table};
use crate::service;

use super::Failure;

/// Reads the config file (`--config`, or the default path).
pub fn file(path: Option<&Path>) -> Result<ConfigFile, Failure> {
    Ok(config::load(path)?)
}

/// The service's data directory: the `data_dir` key, else the platform's default.
pub fn service_data_dir(effective: &Effective) -> Result<PathBuf, config::NoHomeDir> {
    effective
        .path("data_dir")
        .map_or_else(config::service_data_dir, Ok)
}

/// The service's settings: [`service::Settings::new`] with every key that is set.
pub fn service_settings(effective: &Effective) -> Result<service::Settings, SettingsError> {
    let mut settings = service::Settings::new(service_data_dir(effective)?);
    let e = effective;
    set(&mut settings.max_connections, e.size("max_connections"));
    if let Some(hosts) = e.text("allowed_hosts") {
        settings.allowed_hosts = crate::config::values::host_list(&hosts)
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
            .collect();
    }
    settings.max_connections_per_address = e.size("max_connections_per_address");
    set(&mut settings.header_timeout, e.duration("header_timeout"));
    set(&mut settings.body_timeout, e.duration("body_timeout"));
    set(&mut settings.sign_in.workers, e.size("password_checks"));
    set(&mut settings.sign_in.queue, e.size("password_queue"));
    set(
        &mut settings.sign_in.free_per_user,
        count32(e, "free_failures_per_user"),
    );
    set(
        &mut settings.sign_in.free_per_address,
        count32(e, "free_failures_per_address"),
    );
    set(
        &mut settings.channels_per_device,
        e.size("channels_per_device"),
    );
    set(&mut settings.max_channels, e.size("max_channels"));
    let posts = &mut settings.posts;
    #[allow(clippy::cast_precision_loss)] // counts far below 2^53
    {
        set(&mut posts.rate, e.count("post_rate").map(|n| n as f64));
        set(&mut posts.burst, e.count("post_burst").map(|n| n as f64));
    }
    set(
        &mut posts.max_notifications,
        e.count("max_notifications_per_user"),
    );
    set(
        &mut posts.max_bytes,
        e.count("max_mib_per_user")
            .map(|mib| mib.saturating_mul(1 << 20)),
    );
    set(
        &mut settings.recovery_interval,
        e.duration("recovery_interval"),
    );
    set(
        &mut settings.store_reserve,
        e.count("store_reserve_mib")
            .map(|mib| mib.saturating_mul(1 << 20)),
    );
    set(
        &mut settings.max_devices_per_user,
        e.size("max_devices_per_user"),
    );
    set(
        &mut settings.access_token_ttl,
        e.duration("access_token_ttl"),
    );
    set(
        &mut settings.refresh_token_ttl,
        e.duration("refresh_token_ttl"),
    );
    set(
        &mut settings.subscription_ttl,
        e.duration("subscription_ttl"),
    );
    set(&mut settings.ping_interval, e.duration("ping_interval"));
    set(&mut settings.purge_interval, e.duration("purge_interval"));
    set(
        &mut settings.tls_reload_interval,
        e.duration("tls_reload_interval"),
    );
    settings.database = database(e)?;
    settings.metrics_listen = e.address("metrics_listen");
    settings.metrics_token = match (e.text("metrics_token"), e.path("metrics_token_file")) {
        (Some(token), _) => Some(token.into()),
        (None, Some(file)) => Some(read_password("metrics_token_file", &file)?.into()),
        (None, None) => None,
    };
    warn_of_exposed_secrets(e);
    settings.tls = match (e.path("tls_cert"), e.path("tls_key")) {
        (Some(cert), Some(key)) => Some(service::tls::TlsFiles { cert, key }),
        (None, None) => systemd_credentials(),
        (cert, _) => {
            let (given, missing) = if cert.is_some() {
                ("tls_cert", "tls_key")
            } else {
                ("tls_key", "tls_cert")
            };
            return Err(SettingsError::Incomplete(format!(
                "[service] {given} is set but {missing} is not: HTTPS needs both (docs/tls.md)"
            )));
        }
    };
    Ok(settings)
}

/// The PostgreSQL database of `store`, with its password and CA file; `None` for sled.
fn database(e: &Effective) -> Result<Option<service::store::PgConfig>, SettingsError> {
    let Some(url) = e.text("store").filter(|s| s != "sled") else {
        return Ok(None);
    };
    let mut config = service::store::PgConfig::new(url);
    config.password = match (e.text("store_password"), e.path("store_password_file")) {
        (Some(password), _) => Some(password),
        (None, Some(file)) => Some(read_password("store_password_file", &file)?),
        (None, None) => credential("db-password")
            .map(|file| read_password("the systemd credential db-password", &file))
            .transpose()?,
    }
    .map(SecretString::from);
    config.ca_file = e.path("store_ca_file");
    if let Some(pool) = e.size("store_pool") {
        config.pool_size = pool;
    }
    config.node = node_id(e.address("listen").map_or(7319, |a| a.port()));
    config
        .connection()
        .map_err(|err| SettingsError::Incomplete(format!("[service] {err}")))?;
    Ok(Some(config))
}

/// This node's id among the nodes of a PostgreSQL store: the host's name and the port
/// it listens on, which tell the nodes apart and stay the same across a node's
/// restarts (docs/nodes.md).
fn node_id(port: u16) -> String {
    #[cfg(unix)]
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    #[cfg(not(unix))]
    let host = std::env::var("COMPUTERNAME").unwrap_or_else(|_| "localhost".to_owned());
    format!("{host}:{port}")
}

/// Warns of secrets that others can read: given as a flag (every user sees the process
/// list), or in a config file that its group or others may read.
fn warn_of_exposed_secrets(e: &Effective) {
    for (name, source) in e.secrets() {
        match source {
            Source::Flag(flag) => tracing::warn!(
                "{name} is given as the flag {flag}, which every user of this machine sees in the process list: set it in a file ({name}_file, or a config file of mode 0600) or the environment"
            ),
            Source::File { path, .. } if readable_by_others(path) => tracing::warn!(
                "{} holds {name} and others may read it: chmod 600 {}",
                path.display(),
                path.display()
            ),
            _ => {}
        }
    }
}

/// Whether a file's group or others may read it (Unix; elsewhere never said).
fn readable_by_others(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o044 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

/// The first line of a password file (`what`, for the error).
fn read_password(what: &str, file: &Path) -> Result<String, SettingsError> {
    let text = std::fs::read_to_string(file).map_err(|err| {
        SettingsError::Incomplete(format!("[service] {what} {}: {err}", file.display()))
    })?;
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

/// The file systemd hands a unit with `LoadCredential=NAME:...`, if there is one.
fn credential(name: &str) -> Option<PathBuf> {
    let file = PathBuf::from(std::env::var_os("CREDENTIALS_DIRECTORY")?).join(name);
    file.exists().then_some(file)
}

/// The certificate and key systemd hands a unit with `LoadCredential=tls.cert:...` and
/// `LoadCredential=tls.key:...` (so the key on disk can stay readable by root only).
fn systemd_credentials() -> Option<service::tls::TlsFiles> {
    Some(service::tls::TlsFiles {
        cert: credential("tls.cert")?,
        key: credential("tls.key")?,
    })
}

/// Settings that cannot work together.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// No home directory for a default path.
    #[error(transparent)]
    NoHome(#[from] config::NoHomeDir),
    /// A setting needs another that is not set.
    #[error("{0}")]
    Incomplete(String),
}

fn count32(effective: &Effective, name: &str) -> Option<u32> {
    effective
        .count(name)
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

/// The per-app toast settings of the file's `[apps."HOST"]` tables.
pub fn app_prefs(file: &ConfigFile) -> std::collections::HashMap<String, AppPrefs> {
    file.apps
        .iter()
        .map(|(host, app)| {
            let prefs = AppPrefs {
                toasts: app.toasts.unwrap_or(true),
                dismiss_sync: app.dismiss_sync.unwrap_or(true),
            };
            (host.clone(), prefs)
        })
        .collect()
}

/// `tidings config`: every key of both tables, its effective value (secrets hidden)
/// and where it came from; then the per-app tables.
pub fn print(path: Option<&Path>, json: bool) -> Result<(), Failure> {
    let file = file(path)?;
    let none = BTreeMap::new();
    let tables = [
        config::resolve(Table::Service, &none, &file)?,
        config::resolve(Table::Agent, &none, &file)?,
    ];
    if json {
        return Ok(super::output::json(&as_json(&file, &tables))?);
    }
    let exists = if file.path.exists() {
        ""
    } else {
        " (not there: every value is a default or from the environment)"
    };
    let mut lines = vec![format!("# {}{exists}", file.path.display())];
    for effective in &tables {
        lines.push(format!("\n[{}]", effective.table.name()));
        lines.extend(table_lines(effective));
    }
    for (host, app) in &file.apps {
        lines.push(format!("\n[apps.{host:?}]"));
        let prefs = [("toasts", app.toasts), ("dismiss_sync", app.dismiss_sync)];
        for (name, value) in prefs {
            let (value, from) = value.map_or((true, "default"), |v| (v, "file"));
            lines.push(format!("{name} = {value}  # {from}"));
        }
    }
    super::output::line(&lines.join("\n"))?;
    Ok(())
}

/// `key = value  # source`, aligned.
fn table_lines(effective: &Effective) -> Vec<String> {
    let shown: Vec<String> = effective
        .settings
        .iter()
        .map(config::Setting::shown)
        .collect();
    let width = effective
        .settings
        .iter()
        .map(|s| s.key.name.len())
        .max()
        .unwrap_or(0);
    let value_width = shown.iter().map(String::len).max().unwrap_or(0).min(40);
    effective
        .settings
        .iter()
        .zip(&shown)
        .map(|(setting, value)| {
            format!(
                "{:width$} = {value:value_width$}  # {}",
                setting.key.name, setting.source
            )
        })
        .collect()
}

fn as_json(file: &ConfigFile, tables: &[Effective]) -> Value {
    let mut document = json!({"file": file.path, "fileExists": file.path.exists()});
    for effective in tables {
        let settings: serde_json::Map<String, Value> = effective
            .settings
            .iter()
            .map(|s| {
                let value = if s.value.is_some() {
                    json!(s.shown())
                } else {
                    Value::Null
                };
                let entry = json!({"value": value, "source": s.source.to_string()});
                (s.key.name.to_owned(), entry)
            })
            .collect();
        document[effective.table.name()] = Value::Object(settings);
    }
    document["apps"] = file
        .apps
        .iter()
        .map(|(host, app)| {
            let prefs = json!({"toasts": app.toasts.unwrap_or(true), "dismissSync": app.dismiss_sync.unwrap_or(true)});
            (host.clone(), prefs)
        })
        .collect::<serde_json::Map<_, _>>()
        .into();
    document
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The registry's defaults and the service's own defaults agree: a service run with
    /// no config at all is the service as built.
    #[test]
    fn the_documented_defaults_are_the_services_defaults() {
        let dir = PathBuf::from("/srv/tidings");
        let flags = BTreeMap::from([("data_dir", dir.display().to_string())]);
        let no_env = |_: &str| None;
        let effective = config::effective::resolve_with(
            Table::Service,
            &flags,
            &no_env,
            &ConfigFile::default(),
        )
        .unwrap();
        let built = service_settings(&effective).unwrap();
        assert_eq!(
            format!("{built:?}"),
            format!("{:?}", service::Settings::new(dir))
        );
    }
}

#[cfg(test)]
mod secrets {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Everything logged while `log` runs, at debug level.
    fn logged(log: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                crate::sync::lock(&self.0).extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let bytes = crate::sync::lock(&sink.0).clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn no_settings_struct_logs_a_secret() {
        let env = |name: &str| match name {
            "TIDINGS_METRICS_TOKEN" => Some("metrics-token-6d1f".to_owned()),
            "TIDINGS_STORE" => Some("postgres://tidings@db.example.org/tidings".to_owned()),
            "TIDINGS_STORE_PASSWORD" => Some("db-password-93ac".to_owned()),
            _ => None,
        };
        let flags = BTreeMap::from([("data_dir", "/srv/tidings".to_owned())]);
        let effective =
            config::effective::resolve_with(Table::Service, &flags, &env, &ConfigFile::default())
                .unwrap();
        let service = service_settings(&effective).unwrap();
        let agent = crate::agent::Settings::new(
            "https://notify.example.com",
            "refresh-token-5e2b".to_owned(),
            PathBuf::from("/home/u/.local/share/tidings/agent"),
        );
        let text = logged(|| {
            tracing::debug!(?service, "service settings");
            tracing::debug!(?agent, "agent settings");
        });
        assert!(
            text.contains("service settings") && text.contains("agent settings"),
            "{text}"
        );
        assert!(
            text.contains("metrics_token: Some("),
            "the field is there, redacted: {text}"
        );
        for secret in [
            "metrics-token-6d1f",
            "db-password-93ac",
            "refresh-token-5e2b",
        ] {
            assert!(!text.contains(secret), "{secret} was logged: {text}");
        }
    }
}
