//! `tidings agent` and `tidings login`: the device agent, signed in to a service or,
//! with nothing configured, in local mode: the service embedded on loopback, the OS user
//! and this device provisioned in it. Local mode is wiring, here: the agent and the
//! service only meet through HTTP and the channel, as with a remote service.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::agent::credentials::Credentials;
use crate::agent::toast::{AppPrefs, Headless, Presenter};
use crate::agent::{self, AgentError};
use crate::config;
use crate::service::{self, ServiceState, provision};

use super::service::wait_for_signal;
use super::{AgentArgs, Failure, LoginArgs, settings};

/// The local service's usual port; a free one is taken when it is busy.
const LOCAL_PORT: u16 = 7319;

/// Runs the agent in the foreground until SIGINT / SIGTERM.
pub async fn run(args: AgentArgs, config: Option<&Path>) -> Result<(), Failure> {
    let agent_dir = config::agent_data_dir()?;
    let file = settings::file(config)?;
    let mut flags = args.keys.given;
    if args.no_toasts {
        flags.insert("toasts", "false".to_owned());
    }
    if args.no_tray {
        flags.insert("tray", "false".to_owned());
    }
    let effective = config::resolve(config::Table::Agent, &flags, &file)?;
    let quiet_hours = effective
        .text("quiet_hours")
        .map(|text| {
            text.parse()
                .map_err(|e: String| anyhow!("[agent] quiet_hours: {e}"))
        })
        .transpose()?;
    let tuning = Tuning {
        quiet_hours,
        history_cap: effective.size("history_cap"),
        ca_file: effective.path("ca_file"),
        apps: settings::app_prefs(&file),
        tray: effective
            .flag("tray")
            .unwrap_or_else(desktop_session)
            .then_some(agent::tray::Bus::Session),
    };
    let saved = Credentials::load(&agent_dir)?;
    let presenter = presenter(!effective.flag("toasts").unwrap_or(true));
    let shutdown = CancellationToken::new();
    tokio::spawn(wait_for_signal(shutdown.clone()));
    match (effective.text("service"), saved) {
        (None, None) => local(&agent_dir, None, &tuning, presenter, shutdown).await,
        (None, Some(creds)) if creds.service.is_none() => {
            local(&agent_dir, Some(creds), &tuning, presenter, shutdown).await
        }
        (None, Some(creds)) => {
            let url = creds.service.clone().unwrap_or_default();
            remote(&agent_dir, &url, creds, tuning, presenter, shutdown).await
        }
        (Some(url), Some(creds)) if creds.service.as_deref() == Some(url.as_str()) => {
            remote(&agent_dir, &url, creds, tuning, presenter, shutdown).await
        }
        (Some(url), _) => Err(anyhow!(
            "this device is not signed in to {url}; run `tidings login {url} --user NAME` first"
        )
        .into()),
    }
}

async fn remote(
    agent_dir: &Path,
    url: &str,
    creds: Credentials,
    tuning: Tuning,
    presenter: Arc<dyn Presenter>,
    shutdown: CancellationToken,
) -> Result<(), Failure> {
    tracing::info!(service = url, user = %creds.user, device = %creds.device_id, "agent starting");
    let mut settings = agent::Settings::new(url, creds.refresh_token, agent_dir.to_owned());
    tuning.apply(&mut settings);
    settings.ca_file = tuning.ca_file.or(creds.ca_file);
    settings.user = creds.user;
    settings.device_id = creds.device_id;
    settings.ipc_socket = Some(config::agent_socket()?);
    agent::run(settings, presenter, shutdown).await?;
    Ok(())
}

/// The disk reserve of local mode's embedded service (`docs/limits.md`).
const LOCAL_STORE_RESERVE: u64 = 4 << 20;

async fn local(
    agent_dir: &Path,
    saved: Option<Credentials>,
    tuning: &Tuning,
    presenter: Arc<dyn Presenter>,
    shutdown: CancellationToken,
) -> Result<(), Failure> {
    // A second agent of this user must hear "already running", not about the service:
    // the store is opened (and its lock taken) first. The URL is filled in below.
    let mut settings = agent::Settings::new(String::new(), String::new(), agent_dir.to_owned());
    tuning.apply(&mut settings);
    let store = agent::open_store(&settings)?;
    let service_dir = config::service_data_dir()?;
    let mut service_settings = service::Settings::new(service_dir.clone());
    // A desktop's embedded service keeps a smaller reserve for a full disk.
    service_settings.store_reserve = LOCAL_STORE_RESERVE;
    // The agent tells systemd about the process, not the service inside it.
    service_settings.supervised = false;
    let state = ServiceState::open(service_settings).await.with_context(|| {
        format!(
            "starting the local service in {}; if `tidings service` runs there, sign this device in to it with `tidings login` instead",
            service_dir.display()
        )
    })?;
    let listener = bind_loopback().await?;
    let url = format!("http://{}", listener.local_addr()?);
    let url_file = write_url_file(&url)?;
    let service_task = tokio::spawn(service::run(listener, state.clone(), shutdown.clone()));
    let creds = match saved {
        Some(creds) if device_is_live(&state, &creds.device_id).await? => creds,
        _ => {
            let creds = provision_this_device(&state, agent_dir).await?;
            tracing::info!(
                "first start: signed in to the local service as {:?} (your OS user; from USER or LOGNAME, else \"me\"); this device's data is in {}, the local service's in {}; send a first notification from another terminal with `tidings send --title Hello`",
                creds.user,
                agent_dir.display(),
                service_dir.display()
            );
            creds
        }
    };
    tracing::info!(service = %url, user = %creds.user, "agent starting in local mode");
    settings.service = url;
    settings.refresh_token = creds.refresh_token.into();
    settings.user = creds.user;
    settings.device_id = creds.device_id;
    settings.ipc_socket = Some(config::agent_socket()?);
    let agent = agent::Agent::with_store(settings, store, presenter)?;
    let result = run_beside_service(agent, service_task, &shutdown).await;
    let _ = std::fs::remove_file(&url_file);
    result
}

/// Runs the agent while its embedded service runs. If the service ends first (it failed
/// to start, or stopped), the agent stops too and the command fails, saying why: an
/// agent retrying a dead port until Ctrl-C helps no one.
async fn run_beside_service(
    agent: agent::Agent,
    mut service_task: tokio::task::JoinHandle<Result<(), service::ServiceError>>,
    shutdown: &CancellationToken,
) -> Result<(), Failure> {
    let running = agent.run(shutdown.clone());
    tokio::pin!(running);
    let (agent_result, served) = tokio::select! {
        result = &mut running => {
            shutdown.cancel();
            (result, (&mut service_task).await)
        }
        served = &mut service_task => {
            let stopping = shutdown.is_cancelled();
            shutdown.cancel();
            let result = running.await;
            if !stopping {
                let why = match &served {
                    Ok(Ok(())) => "it stopped".to_owned(),
                    Ok(Err(e)) => e.to_string(),
                    Err(e) => e.to_string(),
                };
                return Err(anyhow!("the local service ended ({why}); the agent cannot work without it").into());
            }
            (result, served)
        }
    };
    served.map_err(|e| anyhow!("the local service task failed: {e}"))??;
    agent_result?;
    Ok(())
}

/// The desktop's toasts, or the log with `--no-toasts` (and on platforms without
/// desktop toasts yet).
fn presenter(no_toasts: bool) -> Arc<dyn Presenter> {
    #[cfg(target_os = "linux")]
    if !no_toasts {
        if let Some(timeout) = std::env::var("TIDINGS_TOAST_CALL_TIMEOUT")
            .ok()
            .and_then(|text| config::values::parse_duration(&text).ok())
        {
            crate::agent::toast::desktop::set_call_timeout(timeout);
        }
        let ledger = config::runtime_dir().map_or_else(
            |_| crate::agent::toast::ledger::Ledger::default(),
            |dir| crate::agent::toast::ledger::Ledger::at(dir.join("toasts.json")),
        );
        return Arc::new(crate::agent::toast::desktop::Desktop::new(ledger));
    }
    #[cfg(windows)]
    if !no_toasts {
        match crate::agent::toast::winrt::WinRt::new() {
            Ok(presenter) => return Arc::new(presenter),
            Err(e) => {
                tracing::warn!(error = %e, "could not start the toast thread; toasts are logged")
            }
        }
    }
    #[cfg(not(any(target_os = "linux", windows)))]
    if !no_toasts {
        tracing::info!("desktop toasts are not built for this platform yet; they are logged");
    }
    Arc::new(Headless)
}

/// What the config file and flags change about the agent.
struct Tuning {
    quiet_hours: Option<crate::config::quiet::QuietHours>,
    history_cap: Option<usize>,
    ca_file: Option<PathBuf>,
    apps: std::collections::HashMap<String, AppPrefs>,
    tray: Option<agent::tray::Bus>,
}

impl Tuning {
    /// The history cap, the per-app settings, the quiet hours and the panel icon.
    fn apply(&self, settings: &mut agent::Settings) {
        if let Some(cap) = self.history_cap {
            settings.history_cap = cap;
        }
        settings.apps.clone_from(&self.apps);
        settings.quiet_hours = self.quiet_hours;
        settings.tray.clone_from(&self.tray);
    }
}

/// Whether a desktop session may be present, which turns the panel icon on unless
/// `[agent] tray` says otherwise: a display, or a session bus (a panel on it may come
/// later, and the agent registers with it then). The session bus counts because the
/// systemd user unit starts before the desktop hands `DISPLAY` to the user manager.
/// Windows always has its notification area.
fn desktop_session() -> bool {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    cfg!(windows)
        || ["DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS"]
            .iter()
            .any(|name| set(name))
        || std::env::var_os("XDG_RUNTIME_DIR")
            .is_some_and(|dir| std::path::Path::new(&dir).join("bus").exists())
}

/// 127.0.0.1:7319, or any free port when another process has it.
async fn bind_loopback() -> anyhow::Result<TcpListener> {
    match TcpListener::bind(("127.0.0.1", LOCAL_PORT)).await {
        Ok(listener) => Ok(listener),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            tracing::info!("port {LOCAL_PORT} is taken; the local service uses a free port");
            Ok(TcpListener::bind(("127.0.0.1", 0)).await?)
        }
        Err(e) => Err(e).context("binding the local service to 127.0.0.1"),
    }
}

/// Writes the local service's URL to `<runtime dir>/service.url` for other commands.
fn write_url_file(url: &str) -> anyhow::Result<PathBuf> {
    let dir = config::runtime_dir()?;
    config::create_private_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let file = config::local_service_url_file()?;
    std::fs::write(&file, format!("{url}\n"))
        .with_context(|| format!("writing {}", file.display()))?;
    Ok(file)
}

async fn device_is_live(state: &ServiceState, id: &str) -> anyhow::Result<bool> {
    let device = state
        .store
        .device(&crate::protocol::DeviceId::new(id))
        .await?;
    Ok(device.is_some_and(|d| !d.revoked))
}

async fn provision_this_device(
    state: &ServiceState,
    agent_dir: &Path,
) -> anyhow::Result<Credentials> {
    let user = os_user();
    let registered = provision::local_device(state, &user, host_name()).await?;
    let creds = Credentials {
        service: None,
        user,
        device_id: registered.device.id.to_string(),
        refresh_token: registered.refresh_token,
        ca_file: None,
    };
    creds.save(agent_dir)?;
    tracing::info!(user = %creds.user, device = %creds.device_id, "provisioned this device in the local service");
    Ok(creds)
}

/// The OS user's name, the local service's user.
fn os_user() -> String {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "me".to_owned())
}

/// This machine's name, the device's name.
fn host_name() -> String {
    #[cfg(unix)]
    let name = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    #[cfg(not(unix))]
    let name = std::env::var("COMPUTERNAME").unwrap_or_default();
    if name.is_empty() {
        "this device".to_owned()
    } else {
        name
    }
}

/// `tidings login URL --user NAME`.
pub async fn login(args: LoginArgs) -> Result<(), Failure> {
    let agent_dir = config::agent_data_dir()?;
    // Refuse a URL the agent could not use before asking for a password.
    crate::agent::endpoint::Endpoint::parse(&args.url).map_err(|e| anyhow!(e))?;
    let password = read_password(&args.user, args.password_stdin)?;
    let device_name = args.device_name.unwrap_or_else(host_name);
    let ca_file = args.ca_file.as_deref();
    let creds = agent::login(&args.url, &args.user, &password, &device_name, ca_file)
        .await
        .map_err(|e: AgentError| anyhow!(e))?;
    creds.save(&agent_dir)?;
    println!(
        "signed in to {} as {} (device {}); start the agent with `tidings agent`",
        args.url, creds.user, creds.device_id
    );
    Ok(())
}

/// `tidings logout`.
pub async fn logout() -> Result<(), Failure> {
    let agent_dir = config::agent_data_dir()?;
    let creds = Credentials::load(&agent_dir)?
        .ok_or_else(|| anyhow!("this device is not signed in; nothing to log out of"))?;
    match agent::logout(&creds).await {
        // Already revoked at the service: the credential is useless anyway.
        Ok(()) | Err(AgentError::SignedOut) => {}
        Err(e) => return Err(anyhow!(e).context("signing out at the service").into()),
    }
    Credentials::remove(&agent_dir)?;
    println!(
        "signed out of {}; the credential is deleted",
        creds.service.unwrap_or_default()
    );
    Ok(())
}

fn read_password(user: &str, from_stdin: bool) -> anyhow::Result<String> {
    let password = if from_stdin || !std::io::stdin().is_terminal() {
        super::input::secret_line("password", "--password-stdin")?
    } else {
        rpassword::prompt_password(format!("password for {user}: "))
            .context("reading the password")?
    };
    if password.is_empty() {
        anyhow::bail!("no password given");
    }
    Ok(password)
}
