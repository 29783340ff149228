//! The device agent: keeps the push channel to the service open, stores what arrives
//! durably before acking it, and asks the presenter to show or close toasts.
//!
//! [`Agent::run`] wires four named parts, each a `run(..., stop)` in a file of its own,
//! and waits for all of them (on one task tracker) when it stops:
//! - `sync`: the sync loop, one push session ([`channel`]) at a time, reconnecting with
//!   [`backoff`]; the channel hands what it stored to `present`, which makes `watch`
//!   events and drives the presenter;
//! - `responder`: toast feedback from the presenter becomes local changes, which go
//!   through the outbox to every device;
//! - `chores`: retention and subscription renewal, every minute;
//! - [`rpc`]: the local IPC server and its handler.
//!
//! Beside them: [`store`] (the sled cache, outbox, retention, counts, do-not-disturb),
//! `handle` (what local callers do), [`tray`] (the panel icon: its rules and, on Linux,
//! the item on the session bus, started beside the parts above when
//! `Settings::tray` says where), [`toast`] (the rules,
//! the presenter seam, the Linux
//! and Windows presenters, whose tasks run on the agent's tracker), [`link`],
//! [`endpoint`], [`api`] (REST: tokens, sign-in, subscriptions, notes), [`tls`],
//! [`credentials`]. The agent imports `protocol` and `ipc`, never the service.
//!
//! Not done (see `docs/agent.md`, `docs/toasts.md`): toasts on macOS, a run on real
//! Windows, and the 10 MiB idle-memory target.

mod answers;
pub mod api;
pub mod backoff;
pub mod channel;
mod chores;
pub mod credentials;
pub mod endpoint;
mod error;
mod handle;
pub mod link;
pub mod open;
mod present;
mod responder;
pub mod rpc;
pub mod store;
mod sync;
pub mod tls;
pub mod toast;
pub mod tray;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::protocol::local::Event;

pub use error::AgentError;

use api::Api;
use endpoint::Endpoint;
use link::Link;
use store::AgentStore;
use toast::{AppPrefs, Attachment, Presenter};

/// sled's page cache for the agent: 1 MiB. What an idle desktop agent holds after a
/// large catch-up is mostly this cache (sled counts a page at its size on disk, and it
/// takes several times that in memory): 4 MiB left 26.4 MiB resident after a
/// 10,000-notification catch-up, 1 MiB leaves 21.8 MiB, for a catch-up about a fifth
/// slower (`cargo bench --bench agent`; `docs/performance.md`).
pub const CACHE_BYTES: u64 = 1 << 20;

/// How an agent runs.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The service's base URL.
    pub service: String,
    /// The device credential from sign-in.
    pub refresh_token: SecretString,
    /// Where the agent's store lives.
    pub data_dir: PathBuf,
    /// sled's page cache, in bytes (small: the agent should stay light).
    pub cache_bytes: u64,
    /// Extra CAs to trust (PEM), besides the platform's.
    pub ca_file: Option<PathBuf>,
    /// Notifications kept at most (oldest read ones go first).
    pub history_cap: usize,
    /// Silence after which the channel counts as dead and is re-made.
    pub dead_link: Duration,
    /// How often retention (expiry, history cap) and subscription renewal run.
    pub chores_every: Duration,
    /// The signed-in user (shown by `status`).
    pub user: String,
    /// This device's id (shown by `status`).
    pub device_id: String,
    /// Where to serve local IPC; none serves nothing.
    pub ipc_socket: Option<PathBuf>,
    /// Per-app toast settings, by host name (the config file's `[apps."HOST"]`).
    pub apps: HashMap<String, AppPrefs>,
    /// A daily span of local time without toasts (`quiet_hours`).
    pub quiet_hours: Option<crate::config::quiet::QuietHours>,
    /// Where to show the icon in the panel; none shows none (`[agent] tray`).
    pub tray: Option<tray::Bus>,
}

impl Settings {
    /// Defaults for a device signed in to `service`, storing in `data_dir`.
    pub fn new(
        service: impl Into<String>,
        refresh_token: impl Into<SecretString>,
        data_dir: PathBuf,
    ) -> Self {
        Self {
            service: service.into(),
            refresh_token: refresh_token.into(),
            data_dir,
            cache_bytes: CACHE_BYTES,
            ca_file: None,
            history_cap: 10_000,
            dead_link: channel::DEAD_LINK,
            chores_every: chores::CHORES_EVERY,
            user: String::new(),
            device_id: String::new(),
            ipc_socket: None,
            apps: HashMap::new(),
            quiet_hours: None,
            tray: None,
        }
    }
}

/// Signs this device in to `service` as `user` (password grant) and returns the
/// credential to save.
pub async fn login(
    service: &str,
    user: &str,
    password: &str,
    device_name: &str,
    ca_file: Option<&std::path::Path>,
) -> Result<credentials::Credentials, AgentError> {
    let endpoint = Endpoint::parse(service)?;
    let http = api::http_client(&tls::client_config(ca_file)?)?;
    let platform = crate::protocol::Platform::current().to_string();
    let form = [
        ("grant_type", "password"),
        ("username", user),
        ("password", password),
        ("device_name", device_name),
        ("platform", platform.as_str()),
    ];
    let answer = api::sign_in(&http, &endpoint, &form).await?;
    let missing = |name: &str| AgentError::Network(format!("the sign-in answer has no {name}"));
    Ok(credentials::Credentials {
        service: Some(service.to_owned()),
        user: user.to_owned(),
        device_id: answer
            .device_id
            .ok_or_else(|| missing("device_id"))?
            .to_string(),
        refresh_token: answer
            .refresh_token
            .ok_or_else(|| missing("refresh_token"))?,
        ca_file: ca_file.map(std::path::Path::to_path_buf),
    })
}

/// Signs the device of `creds` out at its service (revoking it there).
pub async fn logout(creds: &credentials::Credentials) -> Result<(), AgentError> {
    let service = creds.service.as_deref().ok_or_else(|| {
        AgentError::Config("this device runs in local mode; there is no sign-in to end".to_owned())
    })?;
    let tls = tls::client_config(creds.ca_file.as_deref())?;
    let api = Api::new(
        Endpoint::parse(service)?,
        creds.refresh_token.clone().into(),
        tls,
    )?;
    api.sign_out().await
}

/// Runs the agent until `shutdown`; then flushes its store and returns.
pub async fn run(
    settings: Settings,
    presenter: Arc<dyn Presenter>,
    shutdown: CancellationToken,
) -> Result<(), AgentError> {
    Agent::open(settings, presenter)?.run(shutdown).await
}

/// Opens the agent's store in `settings.data_dir` (made private), refusing a second
/// agent of the same user.
pub fn open_store(settings: &Settings) -> Result<AgentStore, AgentError> {
    crate::config::create_private_dir(&settings.data_dir).map_err(|e| {
        AgentError::Config(format!("creating {}: {e}", settings.data_dir.display()))
    })?;
    Ok(AgentStore::open(
        &settings.data_dir.join("store"),
        settings.cache_bytes,
    )?)
}

/// An agent whose store is open, before and while it runs.
pub struct Agent {
    handle: AgentHandle,
    dead_link: Duration,
    chores_every: Duration,
    ipc_socket: Option<PathBuf>,
    tray: Option<tray::Bus>,
}

/// What local callers (IPC, tests) use to read the cache and change state while the
/// agent runs. Cheap to clone.
#[derive(Clone)]
pub struct AgentHandle {
    store: Arc<AgentStore>,
    history_cap: usize,
    api: Arc<Api>,
    outbox: Arc<Notify>,
    /// Wakes the channel to replay the whole feed (see `store::resync`).
    resync: Arc<Notify>,
    presenter: Arc<dyn Presenter>,
    link: Arc<Link>,
    events: broadcast::Sender<Event>,
    identity: Arc<(String, String)>,
    apps: Arc<HashMap<String, AppPrefs>>,
    quiet_hours: Option<crate::config::quiet::QuietHours>,
    backlog: Arc<std::sync::Mutex<present::Backlog>>,
    /// Held while a change of the store is made and told (a received group stored and
    /// presented; retention's removals made and told), so watchers and toasts hear of
    /// changes in the order they were made: a removal never before the creation it
    /// follows.
    telling: Arc<tokio::sync::Mutex<()>>,
    /// Told when do-not-disturb or a paused app changes (the panel icon redraws).
    looks: Arc<Notify>,
}

/// Changes a `watch` may fall behind by before it hears it lagged.
const EVENT_BACKLOG: usize = 1024;
/// How long a stopping agent waits for its tasks (each ends at once when told, except
/// a call to the desktop or a last IPC answer in flight) before it flushes its store.
pub const STOP_WITHIN: Duration = Duration::from_secs(5);

impl Agent {
    /// Checks the settings and opens the store (refusing a second agent).
    pub fn open(settings: Settings, presenter: Arc<dyn Presenter>) -> Result<Self, AgentError> {
        let store = open_store(&settings)?;
        Self::with_store(settings, store, presenter)
    }

    /// An agent on a store opened beforehand with [`open_store`] (local mode opens it
    /// first, so a second agent hears "already running" before anything else).
    pub fn with_store(
        settings: Settings,
        store: AgentStore,
        presenter: Arc<dyn Presenter>,
    ) -> Result<Self, AgentError> {
        let endpoint = Endpoint::parse(&settings.service)?;
        let identity = Arc::new((settings.user, settings.device_id));
        let handle = AgentHandle {
            store: Arc::new(store),
            history_cap: settings.history_cap,
            api: Arc::new(
                Api::new(
                    endpoint,
                    settings.refresh_token,
                    tls::client_config(settings.ca_file.as_deref())?,
                )?
                .saving_credentials_in(settings.data_dir.clone()),
            ),
            outbox: Arc::new(Notify::new()),
            resync: Arc::new(Notify::new()),
            presenter,
            link: Arc::new(Link::default()),
            events: broadcast::channel(EVENT_BACKLOG).0,
            identity,
            apps: Arc::new(settings.apps),
            quiet_hours: settings.quiet_hours,
            backlog: Arc::default(),
            telling: Arc::default(),
            looks: Arc::new(Notify::new()),
        };
        Ok(Self {
            handle,
            dead_link: settings.dead_link,
            chores_every: settings.chores_every,
            ipc_socket: settings.ipc_socket,
            tray: settings.tray,
        })
    }

    /// The handle for local callers.
    pub fn handle(&self) -> AgentHandle {
        self.handle.clone()
    }

    /// Runs the agent's parts until `shutdown` (or until the service signs the device
    /// out): the sync loop here, and beside it the chores, the toast-feedback responder,
    /// the IPC server and the presenter's tasks, all on one tracker. Then stops them,
    /// waits for them within [`STOP_WITHIN`], and flushes the store.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), AgentError> {
        let handle = self.handle;
        let ipc = match &self.ipc_socket {
            Some(path) => Some(rpc::bind(path).await?),
            None => None,
        };
        let tasks = TaskTracker::new();
        let stop = shutdown.child_token();
        let (feedback, responses) = tokio::sync::mpsc::unbounded_channel();
        handle.presenter.attach(Attachment {
            feedback,
            tasks: tasks.clone(),
            stop: stop.clone(),
        });
        handle.adopt_toasts();
        tasks.spawn(chores::run(handle.clone(), self.chores_every, stop.clone()));
        tasks.spawn(responder::run(handle.clone(), responses, stop.clone()));
        if let Some(server) = ipc {
            tasks.spawn(rpc::run(server, handle.clone(), stop.clone()));
        }
        if let Some(bus) = self.tray {
            start_tray(&tasks, &handle, bus, &shutdown, &stop);
        }
        // Ready once the store is open and IPC listens, not once online: the agent
        // works offline.
        crate::supervisor::ready();
        let watchdog = crate::supervisor::Watchdog::from_env();
        let syncing = sync::run(&handle, self.dead_link, &shutdown);
        let result = crate::supervisor::Watchdog::guard(watchdog, syncing).await;
        crate::supervisor::stopping();
        stop.cancel();
        tasks.close();
        if tokio::time::timeout(STOP_WITHIN, tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = tasks.len(),
                "tasks still running {STOP_WITHIN:?} after the agent was told to stop; leaving them"
            );
        }
        handle.store.flush().await?;
        result
    }
}

/// Starts the panel icon beside the other parts; its "Quit" cancels `shutdown`.
#[cfg(target_os = "linux")]
fn start_tray(
    tasks: &TaskTracker,
    handle: &AgentHandle,
    bus: tray::Bus,
    shutdown: &CancellationToken,
    stop: &CancellationToken,
) {
    tasks.spawn(tray::live::run(
        handle.clone(),
        bus,
        shutdown.clone(),
        stop.clone(),
    ));
}

/// Starts the notification-area icon beside the other parts (Windows has no session
/// bus: `bus` does not apply); its "Quit" cancels `shutdown`.
#[cfg(windows)]
fn start_tray(
    tasks: &TaskTracker,
    handle: &AgentHandle,
    _bus: tray::Bus,
    shutdown: &CancellationToken,
    stop: &CancellationToken,
) {
    tasks.spawn(tray::win::run(
        handle.clone(),
        shutdown.clone(),
        stop.clone(),
    ));
}

/// No panel icon is built for this platform (`docs/tray.md`).
#[cfg(not(any(target_os = "linux", windows)))]
fn start_tray(
    _tasks: &TaskTracker,
    _handle: &AgentHandle,
    _bus: tray::Bus,
    _shutdown: &CancellationToken,
    _stop: &CancellationToken,
) {
    tracing::info!("the panel icon is not built for this platform");
}
