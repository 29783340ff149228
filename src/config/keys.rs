//! Every setting of the config file, once: its table and key, what it takes (a
//! [`Kind`], read by `values.rs`), its default, and what it does. The command line's flags (`--max-connections`), the
//! environment (`TIDINGS_MAX_CONNECTIONS`) and `tidings config` are all derived from
//! this table, and `docs/config.md` lists it (a test keeps the two in step).

pub use super::values::{Kind, Value};

/// The two tables of the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// `[service]`: `tidings service` (and `tidings admin`, for `data_dir`).
    Service,
    /// `[agent]`: `tidings agent`.
    Agent,
}

impl Table {
    /// The table's name in the file.
    pub fn name(self) -> &'static str {
        match self {
            Table::Service => "service",
            Table::Agent => "agent",
        }
    }
}

/// One setting.
#[derive(Debug, PartialEq, Eq)]
pub struct Key {
    /// Its table.
    pub table: Table,
    /// Its name in the table (`max_connections`).
    pub name: &'static str,
    /// What it takes.
    pub kind: Kind,
    /// Its default as text, or what happens without it (`None`: see `unset`).
    pub default: Option<&'static str>,
    /// Without a default: what happens when it is not set.
    pub unset: &'static str,
    /// What it does (one sentence, for `--help` and `docs/config.md`).
    pub help: &'static str,
}

impl Key {
    /// The environment variable that sets it: `TIDINGS_` and the name in capitals.
    pub fn env(&self) -> String {
        format!("TIDINGS_{}", self.name.to_ascii_uppercase())
    }

    /// The command-line flag that sets it: `--` and the name with dashes.
    pub fn flag(&self) -> String {
        format!("--{}", self.long())
    }

    /// The flag's name without dashes (clap's `long`).
    pub fn long(&self) -> String {
        self.name.replace('_', "-")
    }
}

/// A key with a default.
const fn key(
    table: Table,
    name: &'static str,
    kind: Kind,
    default: &'static str,
    help: &'static str,
) -> Key {
    let mut key = optional(table, name, kind, "", help);
    key.default = Some(default);
    key
}

/// A key without a default; `unset` says what happens without it.
const fn optional(
    table: Table,
    name: &'static str,
    kind: Kind,
    unset: &'static str,
    help: &'static str,
) -> Key {
    Key {
        table,
        name,
        kind,
        default: None,
        unset,
        help,
    }
}

use Kind::{Address, Bool, Choice, Count, Path, Secret};
use Table::{Agent, Service};

/// How logs are written: `auto` is the journal under systemd, else text.
pub const LOG_FORMATS: &[&str] = &["auto", "text", "json", "journald"];

/// Every key, in the order `tidings config` and the docs list them.
#[rustfmt::skip]
pub static KEYS: &[Key] = &[
    key(Service, "listen", Address, "127.0.0.1:7319", "Address to listen on (HTTP and the WebSocket channel)."),
    optional(Service, "data_dir", Path, "$STATE_DIRECTORY under systemd, else ~/.local/share/tidings/service", "Where the store and the admin socket live."),
    optional(Service, "tls_cert", Path, "plain HTTP (or a TLS proxy in front)", "Serve HTTPS with this certificate chain (PEM, the server's certificate first); needs tls_key."),
    optional(Service, "tls_key", Path, "plain HTTP", "The private key (PEM) of tls_cert."),
    optional(Service, "metrics_listen", Address, "/metrics is served on listen", "Serve GET /metrics (Prometheus text format) on this address only, e.g. 127.0.0.1:9319."),
    optional(Service, "metrics_token", Secret, "metrics_token_file, else none: /metrics answers loopback clients only", "The bearer token GET /metrics must present; best set in metrics_token_file or the environment (a flag shows in the process list)."),
    optional(Service, "metrics_token_file", Path, "none", "A file holding the bearer token GET /metrics must present (its first line)."),
    key(Service, "tls_reload_interval", Kind::Duration, "10s", "How often the TLS files are checked for a new certificate (SIGHUP reloads at once)."),
    optional(Service, "allowed_hosts", Kind::Hosts, "IP addresses and localhost only", "Host names the web app answers to besides IP addresses and localhost, e.g. notify.example.com (a defence against DNS rebinding; docs/web.md)."),
    key(Service, "log_format", Choice(LOG_FORMATS), "auto", "auto (the journal under systemd, else text), text, json (one JSON object a line) or journald."),
    key(Service, "max_connections", Count, "10000", "Open HTTP connections at most; upgraded channels count under max_channels."),
    optional(Service, "max_connections_per_address", Count, "a tenth of max_connections, at least 64", "Open HTTP connections from one client address (IPv6 by its /64) at most; behind a reverse proxy on the same host every client has its address, so raise it there."),
    key(Service, "header_timeout", Kind::Duration, "10s", "Time for a request's headers, and for an idle keep-alive connection."),
    key(Service, "body_timeout", Kind::Duration, "30s", "Time for a request's body."),
    optional(Service, "password_checks", Count, "one per core", "Password checks running at once."),
    key(Service, "password_queue", Count, "8", "Password checks waiting at most; more are answered 503."),
    key(Service, "free_failures_per_user", Count, "5", "Failed sign-ins of one user name from one address before it is slowed."),
    key(Service, "free_failures_per_address", Count, "20", "Failed sign-ins from one address before it is slowed."),
    key(Service, "post_rate", Count, "200", "Notifications a second one sender (an app, or a user's own notes) may keep posting; faster posts are answered 429."),
    key(Service, "post_burst", Count, "2000", "Notifications one sender may post at once after a pause."),
    key(Service, "max_notifications_per_user", Count, "10000", "Notifications one user keeps at most (deleted ones count until they expire); more are answered 507."),
    key(Service, "max_mib_per_user", Count, "100", "MiB of notifications one user keeps at most; more are answered 507."),
    key(Service, "channels_per_device", Count, "2", "Channels one device may hold; a newer one replaces the oldest."),
    key(Service, "max_channels", Count, "9000", "Channels open at most, of all devices."),
    key(Service, "store", Kind::Store, "sled", "Where the service keeps its data: sled (embedded, in data_dir; one node) or a PostgreSQL URL shared by several nodes, e.g. postgres://tidings@db.example.org/tidings?sslmode=require (docs/nodes.md)."),
    optional(Service, "store_password_file", Path, "systemd's db-password credential, else the password in store, or none", "A file holding the PostgreSQL password (TIDINGS_STORE_PASSWORD sets it directly)."),
    optional(Service, "store_password", Secret, "store_password_file, else none", "The PostgreSQL password; best set in the environment (TIDINGS_STORE_PASSWORD), not in the file."),
    optional(Service, "store_ca_file", Path, "the platform's CAs", "Also trust the CAs in this PEM file for TLS to PostgreSQL."),
    key(Service, "store_pool", Count, "16", "Connections to PostgreSQL this node keeps open at most."),
    key(Service, "recovery_interval", Kind::Duration, "5s", "How often a failed store (full disk) checks whether it can write again."),
    key(Service, "store_reserve_mib", Count, "16", "Disk space kept in reserve to survive a full disk, in MiB."),
    key(Service, "max_devices_per_user", Count, "100", "Devices one user may have signed in at once."),
    key(Service, "access_token_ttl", Kind::Duration, "1h", "How long an access token is valid."),
    key(Service, "refresh_token_ttl", Kind::Duration, "90d", "How long a refresh token stays valid unused (each use replaces it)."),
    key(Service, "subscription_ttl", Kind::Duration, "30d", "How long a subscription (UNSID) lasts before the device renews it."),
    key(Service, "ping_interval", Kind::Duration, "30s", "How often each channel is pinged; 2.5 intervals of silence close it."),
    key(Service, "purge_interval", Kind::Duration, "60s", "How often expired notifications are purged."),
    optional(Agent, "service", Kind::Urls, "the service signed in to with `tidings login`, else local mode", "The service to use; several nodes of one service as a list, tried in turn when the link is lost (docs/nodes.md)."),
    optional(Agent, "ca_file", Path, "the one given to `tidings login`, and the platform's CAs", "Also trust the CAs in this PEM file."),
    key(Agent, "history_cap", Count, "10000", "Notifications kept at most (the oldest read ones go first)."),
    key(Agent, "toasts", Bool, "true", "Show desktop toasts (false: log them)."),
    optional(Agent, "tray", Bool, "on when a desktop may be present (DISPLAY, WAYLAND_DISPLAY or a session bus)", "Show an icon in the desktop panel with the unread count and a menu (docs/tray.md)."),
    optional(Agent, "quiet_hours", Kind::Span, "no quiet hours", "A daily span of local time, e.g. 22:00-07:00, without toasts (as do-not-disturb; notifications are still stored and synced)."),
    key(Agent, "log_format", Choice(LOG_FORMATS), "auto", "auto (the journal under systemd, else text), text, json or journald."),
];

/// The key `name` of `table`.
pub fn find(table: Table, name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.table == table && k.name == name)
}

/// The keys of `table`.
pub fn of(table: Table) -> impl Iterator<Item = &'static Key> {
    KEYS.iter().filter(move |k| k.table == table)
}

/// The key of `table` closest to a misspelt `name`, if one is close.
pub fn closest(table: Table, name: &str) -> Option<&'static str> {
    of(table)
        .map(|k| (strsim::levenshtein(k.name, name), k.name))
        .filter(|(distance, _)| *distance <= 3)
        .min()
        .map(|(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_is_a_valid_value_and_names_are_unique() {
        for key in KEYS {
            if let Some(default) = key.default {
                assert!(key.kind.parse(default).is_ok(), "{}", key.name);
            } else {
                assert!(!key.unset.is_empty(), "{} says what unset means", key.name);
            }
            let twins = KEYS
                .iter()
                .filter(|k| k.table == key.table && k.name == key.name);
            assert_eq!(twins.count(), 1, "{}", key.name);
        }
    }

    /// The reference table of `table` in `docs/config.md`, as this registry makes it.
    fn markdown(table: Table) -> String {
        let mut rows = vec![
            "| key | default | flag / environment | what it does |".to_owned(),
            "|---|---|---|---|".to_owned(),
        ];
        for key in of(table) {
            let default = key
                .default
                .map_or_else(|| key.unset.to_owned(), |d| format!("`{d}`"));
            rows.push(format!(
                "| `{}` | {default} | `{}` / `{}` | {} |",
                key.name,
                key.flag(),
                key.env(),
                key.help
            ));
        }
        rows.join("\n")
    }

    /// `docs/config.md` lists every key as this registry has it; on a mismatch the
    /// failure prints the table to paste.
    #[test]
    fn the_docs_list_every_key() {
        let docs = include_str!("../../docs/config.md");
        for table in [Table::Service, Table::Agent] {
            let start = format!("<!-- keys: {} -->\n", table.name());
            let at = docs
                .find(&start)
                .map(|i| i + start.len())
                .expect("the table's marker");
            let end = docs[at..].find("<!-- /keys -->").expect("the end marker");
            let expected = markdown(table);
            assert!(
                docs[at..at + end].trim_end() == expected,
                "docs/config.md's [{}] table is stale; it should read:\n{expected}",
                table.name()
            );
        }
    }

    #[test]
    fn a_typo_finds_its_key() {
        assert_eq!(
            closest(Table::Service, "max_conections"),
            Some("max_connections")
        );
        assert_eq!(closest(Table::Agent, "histroy_cap"), Some("history_cap"));
        assert_eq!(closest(Table::Agent, "colour"), None);
    }
}
