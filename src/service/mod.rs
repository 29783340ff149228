//! The notification service: Graph-compatible REST for app backends, sign-in and
//! subscriptions for devices, the per-user feed and its WebSocket channel, the admin
//! socket, and the expiry purge.
//!
//! Parts: [`store`] (sled, group commit), [`hub`] (fan-out of durable changes),
//! [`auth`] (credentials), [`http`] (routes), [`channel`] (one device's push channel),
//! [`admin`] (the admin socket's handler), [`purge`]. Entry point: [`run`].
//! The service imports `protocol` and `ipc`, never the agent.

pub mod admin;
pub mod admission;
pub mod auth;
pub mod channel;
pub mod clock;
pub mod feed;
pub mod http;
pub mod hub;
pub mod metrics;
pub mod provision;
pub mod purge;
pub mod recovery;
pub mod serve;
mod settings;
pub mod signin;
pub mod stage;
pub mod store;
pub mod tls;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::protocol::{DeviceId, Timestamp};
use auth::TokenSigner;
use hub::Hub;
pub use settings::Settings;
use store::{Store, StoreError};

/// Errors that stop the service.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The store could not be opened or flushed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The data directory or a socket could not be set up.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Credentials could not be set up.
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    /// The TLS certificate or key cannot be used.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// Everything the routes and tasks share.
pub struct ServiceState {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The fan-out hub.
    pub hub: Arc<Hub>,
    /// Issues and checks access tokens.
    pub signer: TokenSigner,
    /// How the service runs.
    pub settings: Settings,
    /// Cancelled when the service shuts down.
    pub shutdown: CancellationToken,
    /// Channel tasks, waited for at shutdown.
    pub tasks: TaskTracker,
    /// The store's own tasks, stopped and waited for last.
    pub store_tasks: store::StoreTasks,
    /// Where password checks run.
    pub passwords: signin::PasswordPool,
    /// Failed sign-ins, by address and by user name.
    pub strikes: signin::Strikes,
    /// The time (see [`ServiceState::now`]).
    pub clock: clock::Clock,
    /// What `/metrics` reports.
    pub metrics: Arc<metrics::Metrics>,
    /// Turns to build a REST feed page (a few at once: each may hold a MiB).
    pub feed_reads: tokio::sync::Semaphore,
    /// Post rates and quotas.
    pub admission: admission::Admission,
}

/// Shared state handle.
pub type State = Arc<ServiceState>;

impl ServiceState {
    /// Opens the store (sled in `settings.data_dir`, created if missing, mode 0700, or
    /// the PostgreSQL database of `settings.database`) and wires the hub to it.
    pub async fn open(settings: Settings) -> Result<State, ServiceError> {
        create_private_dir(&settings.data_dir)?;
        let hub = Arc::new(Hub::new(settings.send_queue, settings.channels_per_device));
        let publisher = hub.clone();
        let publish: store::Publish = Arc::new(move |changes| publisher.publish(changes));
        let store_tasks = store::StoreTasks::default();
        let store = open_store(&settings, publish, &store_tasks).await?;
        hub.seed(store.last_seqs().await?);
        let key = store.token_key(auth::random_bytes()?).await?;
        let signer = TokenSigner::new(key, settings.access_token_ttl);
        let limits = &settings.sign_in;
        let passwords =
            signin::PasswordPool::start(limits.workers, limits.queue).map_err(|source| {
                ServiceError::Io {
                    what: "starting the password-check threads".to_owned(),
                    source,
                }
            })?;
        let strikes = signin::Strikes::new(limits.clone());
        let metrics = Arc::new(metrics::Metrics::default());
        let observed = metrics.clone();
        store.on_commit(Box::new(move |took| observed.flushed(took)));
        let observed = metrics.clone();
        store.on_notify_lag(Box::new(move |lag| observed.notified(lag)));
        let observed = metrics.clone();
        store.on_notify_overflow(Box::new(move || observed.notify_overflowed()));
        let observed = metrics.clone();
        store.on_notify_read(Box::new(move || observed.notify_read()));
        let closer = hub.clone();
        store.on_remote_revoke(Box::new(move |device| closer.revoke(device)));
        let watcher = hub.clone();
        store.on_unwatched(Box::new(move |user, upto| watcher.pass_over(user, upto)));
        let admission = admission::Admission::new(settings.posts.clone());
        Ok(Arc::new(Self {
            passwords,
            strikes,
            store,
            hub,
            signer,
            settings,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            store_tasks,
            clock: clock::Clock::default(),
            metrics,
            feed_reads: tokio::sync::Semaphore::new(http::me::FEED_READS),
            admission,
        }))
    }

    /// The current time (one place, so every route, the channel and the purge agree).
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Removes the user named `name` for good: their devices are revoked first (tokens
    /// stop working, channels close), then the user and all they hold are deleted.
    /// `None` when there is no such user.
    pub async fn remove_user(
        &self,
        name: &str,
    ) -> Result<Option<(store::UserRecord, store::Removed)>, store::StoreError> {
        let Some(user) = self.store.user_by_name(name).await? else {
            return Ok(None);
        };
        for device in self.store.user_devices(&user.id).await? {
            self.revoke_device(&device.id).await?;
        }
        let removed = self.store.remove_user(&user).await?;
        self.admission.forget(&user.id);
        Ok(Some((user, removed)))
    }

    /// Revokes a device: its tokens stop working, its subscriptions end and its open
    /// channels close. `None` when there is no such device.
    pub async fn revoke_device(
        &self,
        id: &DeviceId,
    ) -> Result<Option<store::DeviceRecord>, store::StoreError> {
        let revoked = self.store.revoke_device(id).await?;
        if revoked.is_some() {
            self.hub.revoke(id);
        }
        Ok(revoked)
    }
}

/// Opens the store the settings name.
async fn open_store(
    settings: &Settings,
    publish: store::Publish,
    tasks: &store::StoreTasks,
) -> Result<Arc<dyn Store>, ServiceError> {
    if let Some(database) = &settings.database {
        return Ok(store::PgStore::open(database, publish, tasks).await?);
    }
    let sled = store::SledStore::open(&settings.data_dir, settings.cache_bytes, publish)?;
    sled.keep_reserve(settings.store_reserve)?;
    Ok(Arc::new(sled))
}

/// The first error of type `T` in `error`'s chain of sources (e.g. the body timeout or
/// the WebSocket library's size error inside an `axum::Error`).
pub(crate) fn find_cause<'e, T: std::error::Error + 'static>(
    error: &'e (dyn std::error::Error + 'static),
) -> Option<&'e T> {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        cause = e.source();
    }
    None
}

/// File descriptors kept for the store, the admin socket and logs, beyond connections.
const RESERVED_FDS: u64 = 64;

/// The connection cap in force: `wanted`, lowered so that connections and channels
/// (an upgraded connection leaves the connection count and joins the channel count)
/// fit the open-file limit, raised to its hard limit first, so that `accept` never
/// fails for lack of descriptors.
fn connection_cap(wanted: usize, channels: usize) -> usize {
    let Some(limit) = serve::raise_fd_limit() else {
        return wanted;
    };
    let usable = usize::try_from(limit.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX);
    let room = usable.saturating_sub(channels).max(usable / 8).max(1);
    if wanted > room {
        tracing::warn!(
            "max_connections {wanted} and max_channels {channels} need more files than the open-file limit ({limit}) allows; serving at most {room} connections (raise LimitNOFILE / ulimit -n, or lower max_channels)"
        );
    }
    wanted.min(room)
}

/// Serves `/metrics` alone on `address` (`metrics_listen`), on its own small caps.
async fn serve_metrics(
    address: std::net::SocketAddr,
    state: &State,
    background: &TaskTracker,
    connections: &TaskTracker,
) -> Result<(), ServiceError> {
    let metrics_listener = TcpListener::bind(address)
        .await
        .map_err(|source| ServiceError::Io {
            what: format!("listening for /metrics on {address} (metrics_listen)"),
            source,
        })?;
    tracing::info!("/metrics served on http://{address}/metrics");
    let only_metrics = http::metrics_router(state.clone());
    let listening = serve::Listening {
        listener: metrics_listener,
        tls: None,
    };
    let (state, tracker) = (state.clone(), connections.clone());
    background.spawn(async move {
        let shutdown = state.shutdown.clone();
        let caps = serve::Caps {
            total: 64,
            per_address: 64,
        };
        serve::accept_loop(listening, only_metrics, caps, &state, shutdown, tracker).await;
    });
    Ok(())
}

/// The cap on one address's open connections: the setting, else a tenth of the total
/// `cap` but at least 64 (a small service does not need it lower), never above `cap`.
fn per_address_cap(setting: Option<usize>, cap: usize) -> usize {
    setting
        .unwrap_or_else(|| (cap / 10).max(64))
        .clamp(1, cap.max(1))
}

fn create_private_dir(dir: &std::path::Path) -> Result<(), ServiceError> {
    crate::config::create_private_dir(dir).map_err(|source| ServiceError::Io {
        what: format!("creating the data directory {}", dir.display()),
        source,
    })
}

/// Serves HTTP on `listener` (and the admin socket) until `shutdown` is cancelled;
/// then stops accepting, closes every channel with a close frame, waits for open work
/// (bounded by `shutdown_grace`) and flushes the store.
pub async fn run(
    listener: TcpListener,
    state: State,
    shutdown: CancellationToken,
) -> Result<(), ServiceError> {
    let stop = state.shutdown.clone();
    let linked = shutdown.clone();
    tokio::spawn(async move {
        linked.cancelled().await;
        stop.cancel();
    });
    let tls = state.settings.tls.clone().map(tls::Tls::new).transpose()?;
    let background = TaskTracker::new();
    if let Some(tls) = &tls {
        let every = state.settings.tls_reload_interval;
        background.spawn(tls.clone().watch(every, state.shutdown.clone()));
    }
    background.spawn(purge::run(state.clone()));
    background.spawn(recovery::run(state.clone()));
    if state.settings.admin_socket {
        let server = admin::bind(&state.settings).await?;
        background.spawn(admin::serve(server, state.clone()));
    }
    background.close();
    // Logged once everything accepts connections: scripts and tests wait for this line.
    if let Ok(local) = listener.local_addr() {
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!("tidings service listening on {scheme}://{local}");
        if state.settings.supervised {
            crate::supervisor::status(&format!("listening on {scheme}://{local}"));
        }
    }
    let supervised = state.settings.supervised;
    if supervised {
        crate::supervisor::ready();
    }
    let app = http::router(state.clone());
    let connections = TaskTracker::new();
    let max_connections =
        connection_cap(state.settings.max_connections, state.settings.max_channels);
    if let Some(address) = state.settings.metrics_listen {
        serve_metrics(address, &state, &background, &connections).await?;
    }
    let accepting = serve::accept_loop(
        serve::Listening {
            listener,
            tls: tls.as_ref().map(|tls| tls.acceptor().clone()),
        },
        app,
        serve::Caps {
            total: max_connections,
            per_address: per_address_cap(
                state.settings.max_connections_per_address,
                max_connections,
            ),
        },
        &state,
        state.shutdown.clone(),
        connections.clone(),
    );
    // The accept loop is the service's main loop: the watchdog is pinged from it.
    let watchdog = supervised
        .then(crate::supervisor::Watchdog::from_env)
        .flatten();
    crate::supervisor::Watchdog::guard(watchdog, accepting).await;
    if supervised {
        crate::supervisor::stopping();
    }
    connections.close();
    let grace = state.settings.shutdown_grace;
    if tokio::time::timeout(grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("open requests did not finish within {grace:?}; stopping anyway");
    }
    state.tasks.close();
    if tokio::time::timeout(grace, state.tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("some channels did not close within {grace:?}");
    }
    let _ = tokio::time::timeout(grace, background.wait()).await;
    let flushed = final_flush(&state).await;
    // Last, the store's own tasks: nothing writes any more.
    state.store_tasks.stop.cancel();
    state.store_tasks.tracker.close();
    if tokio::time::timeout(grace, state.store_tasks.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("the store's tasks did not stop within {grace:?}");
    }
    flushed
}

/// Makes everything answered durable, unless the store failed (then what was answered
/// `201` is on disk already).
async fn final_flush(state: &State) -> Result<(), ServiceError> {
    if let Some(failure) = state.store.failure() {
        tracing::warn!(%failure, "service stopped with its store failed; everything answered 201 is on disk");
        return Ok(());
    }
    state.store.flush().await?;
    tracing::info!("service stopped; store flushed");
    Ok(())
}
