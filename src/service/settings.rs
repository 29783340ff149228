//! How a service runs: [`Settings`], every limit and interval of `tidings service`, with
//! the production defaults of [`Settings::new`] (`docs/config.md` and `docs/limits.md`
//! list them with their keys and flags).

use std::path::PathBuf;
use std::time::Duration;

use super::{admin, admission, auth, signin, store, tls};

/// How a service runs. [`Settings::new`] gives the production defaults.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Where the store (with sled) and the admin socket live.
    pub data_dir: PathBuf,
    /// The PostgreSQL database several nodes share; `None`: sled in `data_dir`.
    pub database: Option<store::PgConfig>,
    /// sled's page cache, in bytes.
    pub cache_bytes: u64,
    /// How often each channel is pinged.
    pub ping_interval: Duration,
    /// Changes queued per channel before a slow device is disconnected.
    pub send_queue: usize,
    /// How often expired notifications are purged.
    pub purge_interval: Duration,
    /// How often a failed store checks whether the disk takes writes again.
    pub recovery_interval: Duration,
    /// Disk space kept in reserve (a file in the data directory) so the store can be
    /// reopened for reads when the disk fills.
    pub store_reserve: u64,
    /// How long a subscription lasts before it must be renewed.
    pub subscription_ttl: Duration,
    /// How long shutdown waits for channels and requests to finish.
    pub shutdown_grace: Duration,
    /// Whether to serve the admin socket at `<data_dir>/admin.sock`.
    pub admin_socket: bool,
    /// Serve HTTPS with this certificate and key (plain HTTP without).
    pub tls: Option<tls::TlsFiles>,
    /// How often the TLS files are checked for a new certificate.
    pub tls_reload_interval: Duration,
    /// Serve `/metrics` on this address instead of on the main listener.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// The bearer token `/metrics` requires, if any.
    pub metrics_token: Option<secrecy::SecretString>,
    /// Host names the web app answers to besides IP addresses and localhost (lower
    /// case; see `http::host`).
    pub allowed_hosts: Vec<String>,
    /// Whether to tell systemd it is ready, its status, and ping its watchdog (off
    /// when embedded: the agent around it does that).
    pub supervised: bool,
    /// Open HTTP connections at most; more are refused at once. A connection upgraded
    /// to a channel leaves this count and counts under `max_channels`.
    pub max_connections: usize,
    /// Open HTTP connections from one client address (IPv6 by its /64) at most; `None`:
    /// a tenth of `max_connections`, at least 64 (see [`per_address_cap`]).
    pub max_connections_per_address: Option<usize>,
    /// Time allowed for a request's headers, from the connection opening or the end of
    /// the previous response (so also the idle keep-alive limit).
    pub header_timeout: Duration,
    /// Time allowed for a request's body.
    pub body_timeout: Duration,
    /// Password checks and failed sign-ins.
    pub sign_in: signin::SignInLimits,
    /// Post rates per sender and quotas per user.
    pub posts: admission::PostLimits,
    /// Channels one device may hold open; a newer one replaces the oldest.
    pub channels_per_device: usize,
    /// Channels open at most, of all devices; more are answered `503`.
    pub max_channels: usize,
    /// How long an access token is valid.
    pub access_token_ttl: Duration,
    /// How long a refresh token stays valid unused (each use replaces it).
    pub refresh_token_ttl: Duration,
    /// Devices one user may have signed in at once.
    pub max_devices_per_user: usize,
}

impl Settings {
    /// Production defaults for a store in `data_dir`.
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            database: None,
            cache_bytes: 64 << 20,
            ping_interval: Duration::from_secs(30),
            send_queue: 1024,
            purge_interval: Duration::from_secs(60),
            recovery_interval: Duration::from_secs(5),
            store_reserve: 16 << 20,
            subscription_ttl: Duration::from_secs(30 * 24 * 3600),
            shutdown_grace: Duration::from_secs(5),
            admin_socket: true,
            tls: None,
            tls_reload_interval: Duration::from_secs(10),
            metrics_listen: None,
            metrics_token: None,
            allowed_hosts: Vec::new(),
            supervised: true,
            max_connections: 10_000,
            max_connections_per_address: None,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            sign_in: signin::SignInLimits::default(),
            posts: admission::PostLimits::default(),
            channels_per_device: 2,
            max_channels: 9_000,
            access_token_ttl: auth::ACCESS_TOKEN_TTL,
            refresh_token_ttl: Duration::from_secs(90 * 24 * 3600),
            max_devices_per_user: 100,
        }
    }

    /// The admin socket's path.
    pub fn admin_socket_path(&self) -> PathBuf {
        admin::socket_path(&self.data_dir)
    }
}
