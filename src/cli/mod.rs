//! The command line: argument definitions and the command bodies.
//!
//! Commands reach a running process only through `ipc::Client`: `admin` the service's
//! admin socket, `ipc` the agent's socket; `send --unsid` talks HTTP to a service as
//! an app backend would. `service` and `agent` wire the entry points to listeners and
//! signals.

mod admin;
mod agent;
pub mod entry;
mod input;
mod ipc;
mod keys;
pub mod logs;
mod output;
mod settings;

pub use output::describe_failure;
mod send;
mod service;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Exit code: the command failed.
pub const EXIT_ERROR: i32 = 1;
/// Exit code: the process the command talks to is not running.
pub const EXIT_NOT_RUNNING: i32 = 3;

/// tidings: user notifications, fanned out to every device, synced read and dismiss.
#[derive(Debug, Parser)]
#[command(name = "tidings", version, about, propagate_version = true)]
pub struct Cli {
    /// Say more when something fails (e.g. the agent's JSON-RPC error code).
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,
    /// The config file [default: ~/.config/tidings/config.toml on Linux].
    #[arg(long, global = true, env = "TIDINGS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the notification service (Graph-compatible REST, feed, WebSocket channel).
    Service(ServiceArgs),
    /// Manage a running service's users, apps and devices over its admin socket.
    Admin(AdminArgs),
    /// Run the device agent: with nothing configured, it runs the service embedded on
    /// 127.0.0.1 and signs this device in to it (local mode).
    Agent(AgentArgs),
    /// Sign this device in to a service (saves the device credential).
    Login(LoginArgs),
    /// Sign this device out: the service revokes it and the credential is deleted.
    Logout,
    /// Subscribe this device to an app; prints the UNSID to hand to the app's backend.
    Subscribe {
        /// The app's host name, e.g. contoso.com.
        hostname: String,
        /// Machine output.
        #[command(flatten)]
        out: Out,
    },
    /// Send a notification: to all of my devices (through the agent), or with --unsid
    /// and an app's credentials, as that app's backend would.
    Send(Box<SendArgs>),
    /// The notifications stored on this device, newest first.
    History(HistoryArgs),
    /// One notification in full.
    Show {
        /// Its id.
        id: String,
        /// Machine output.
        #[command(flatten)]
        out: Out,
    },
    /// Mark notifications read (on every device).
    Read(IdsArgs),
    /// Mark notifications unread (on every device).
    Unread(IdsArgs),
    /// Dismiss notifications (their toasts close on every device).
    Dismiss(IdsArgs),
    /// Delete notifications (on every device).
    Delete(IdsArgs),
    /// Print notifications as they arrive or change, until interrupted.
    Watch {
        /// Only this app's notifications.
        #[arg(long)]
        app: Option<String>,
        /// One JSON event per line.
        #[command(flatten)]
        out: Out,
    },
    /// The agent's state: link, user, device, counts, toasts.
    Status {
        /// Machine output.
        #[command(flatten)]
        out: Out,
    },
    /// Do not disturb: `on`, `off`, `until TIME` (RFC 3339, or in 30m / 2h / 1d), or
    /// show it. While on, nothing pops up; everything is still stored and synced.
    Dnd {
        /// on | off | until
        #[arg(value_parser = ["on", "off", "until"])]
        state: Option<String>,
        /// With `until`: when it ends.
        time: Option<String>,
        /// Machine output.
        #[command(flatten)]
        out: Out,
    },
    /// Print the effective settings of the service and the agent, and where each came
    /// from (flag, environment, config file, default); secrets are not shown.
    Config {
        /// Machine output.
        #[command(flatten)]
        out: Out,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to standard output, or with --dir write it and one
    /// page for each subcommand (`tidings-send(1)`, ...) into a directory.
    Manpage {
        /// Write every page into this directory (e.g. ~/.local/share/man/man1).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
}

/// `--json` for commands with machine output.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Out {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `tidings history`.
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// Only unread notifications.
    #[arg(long)]
    pub unread: bool,
    /// Only this app's notifications (its host name).
    #[arg(long)]
    pub app: Option<String>,
    /// How many (1 to 1000).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Machine output.
    #[command(flatten)]
    pub out: Out,
}

/// The ids of `read`, `unread`, `dismiss`, `delete`.
#[derive(Debug, clap::Args)]
pub struct IdsArgs {
    /// Notification ids (as `history` shows them).
    #[arg(required = true)]
    pub ids: Vec<String>,
    /// Machine output.
    #[command(flatten)]
    pub out: Out,
}

/// `tidings send`.
#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// The toast's title.
    #[arg(long)]
    pub title: String,
    /// The toast's body.
    #[arg(long)]
    pub body: Option<String>,
    /// Raw content for the app (any text).
    #[arg(long)]
    pub raw: Option<String>,
    /// Urgency.
    #[arg(long, value_enum, default_value_t = PriorityArg::Normal)]
    pub priority: PriorityArg,
    /// The app's own id for it: sending again with the same id replaces it in place.
    #[arg(long)]
    pub app_id: Option<String>,
    /// A group, for deleting several at once.
    #[arg(long)]
    pub group: Option<String>,
    /// Seconds the toast stays on screen.
    #[arg(long)]
    pub ttl: Option<u32>,
    /// When it expires everywhere (RFC 3339, e.g. 2026-12-24T18:00:00Z) [default: the
    /// service's, 7 days].
    #[arg(long)]
    pub expires: Option<String>,
    /// As an app backend: the service's URL [default: the local service of a running
    /// agent in local mode].
    #[arg(long, requires = "unsid")]
    pub service: Option<String>,
    /// As an app backend: the UNSID to send to (from `tidings subscribe HOST`). It may
    /// begin with `-` (older UNSIDs could).
    #[arg(long, allow_hyphen_values = true, requires_all = ["client_id", "client_secret_stdin", "host"])]
    pub unsid: Option<String>,
    /// As an app backend: the client id from `tidings admin app add`.
    #[arg(long, requires = "unsid")]
    pub client_id: Option<String>,
    /// As an app backend: read the client secret from the first line of standard input.
    #[arg(long, requires = "unsid")]
    pub client_secret_stdin: bool,
    /// As an app backend: the app's host name (the notification's targetHostName, which
    /// the Graph API requires).
    #[arg(long, requires = "unsid")]
    pub host: Option<String>,
    /// Also trust the CAs in this PEM file (a service with its own CA).
    #[arg(long, env = "TIDINGS_CA_FILE", requires = "unsid")]
    pub ca_file: Option<std::path::PathBuf>,
    /// As an app backend: encrypt the content end to end for a device, with the keys
    /// its `tidings subscribe --json` printed: `P256DH:AUTH` for the --unsid device, or
    /// `UNSID=P256DH:AUTH` for another device of the same user. Repeat it for each
    /// device; only those devices can read the notification (docs/encryption.md).
    #[arg(long, value_name = "[UNSID=]P256DH:AUTH", requires = "unsid")]
    pub encrypt_for: Vec<String>,
    /// Machine output.
    #[command(flatten)]
    pub out: Out,
}

/// `--priority`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PriorityArg {
    /// Low urgency, no sound.
    Low,
    /// Normal.
    Normal,
    /// Critical urgency.
    High,
}

/// `tidings agent`.
#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// Log notifications instead of showing desktop toasts (the same as `--toasts
    /// false`).
    #[arg(long)]
    pub no_toasts: bool,
    /// Show no icon in the desktop panel (the same as `--tray false`).
    #[arg(long)]
    pub no_tray: bool,
    /// The `[agent]` settings.
    #[command(flatten)]
    pub keys: keys::KeyFlags<keys::AgentKeys>,
}

/// `tidings login`.
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// The service's URL, e.g. `https://notify.example.com` (plain http only for
    /// loopback); several nodes of one service as a comma-separated list.
    pub url: String,
    /// The user to sign in as.
    #[arg(long)]
    pub user: String,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// A name for this device [default: the host name].
    #[arg(long)]
    pub device_name: Option<String>,
    /// Also trust the CAs in this PEM file (remembered for `tidings agent`).
    #[arg(long, env = "TIDINGS_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
}

/// `tidings service`.
#[derive(Debug, clap::Args)]
pub struct ServiceArgs {
    /// Restore the backup FILE (from `tidings admin backup`) into the data directory,
    /// which must hold no store yet, then exit; start the service after.
    #[arg(long, value_name = "FILE")]
    pub restore: Option<PathBuf>,
    /// The `[service]` settings.
    #[command(flatten)]
    pub keys: keys::KeyFlags<keys::ServiceKeys>,
}

/// `tidings admin`.
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    /// The service's data directory (where admin.sock is) [default: the config's
    /// `[service]` data_dir; env: TIDINGS_DATA_DIR].
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to manage.
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// `tidings admin ...`.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Users who sign devices in.
    #[command(subcommand)]
    User(UserCommand),
    /// App backends that post notifications.
    #[command(subcommand)]
    App(AppCommand),
    /// Signed-in devices.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Copy the running service's whole store into FILE, consistently, without stopping
    /// it (writes wait while the copy is made). Restore with `tidings service --restore`.
    Backup {
        /// Where to write the backup (must not exist).
        file: PathBuf,
    },
}

/// `tidings admin user ...`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user. Without --password-stdin a password is generated and printed once.
    Add {
        /// Sign-in name.
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password (e.g. local mode's user, to sign in to the web inbox).
    /// Without --password-stdin a password is generated and printed once.
    Passwd {
        /// Sign-in name.
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Remove a user for good: their devices are signed out (their channels closed),
    /// and their notifications, devices and subscriptions deleted.
    Remove {
        /// Sign-in name.
        name: String,
    },
}

/// `tidings admin app ...`.
#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Register an app backend for a host name; prints its client id and secret once.
    Add {
        /// The app's host name (the targetHostName of its notifications).
        hostname: String,
        /// Add another credential for a host that already has one (e.g. to rotate keys).
        #[arg(long)]
        another: bool,
    },
    /// List apps.
    List,
}

/// `tidings admin device ...`.
#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// List devices with their acked seq, connection and last contact.
    List,
    /// Revoke a device: its channel closes at once and its tokens stop working.
    Revoke {
        /// The device id.
        id: String,
    },
}

/// A command's failure, with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    /// The process exit code.
    pub code: i32,
    /// What went wrong.
    pub error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Self {
        Self {
            code: EXIT_ERROR,
            error: error.into(),
        }
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<(), Failure> {
    let config = cli.config.as_deref();
    match cli.command {
        Command::Service(args) => service::run(args, config).await,
        Command::Admin(args) => admin::run(args, config).await,
        Command::Agent(args) => agent::run(args, config).await,
        Command::Config { out } => settings::print(config, out.json),
        Command::Login(args) => agent::login(args).await,
        Command::Logout => agent::logout().await,
        Command::Send(args) if args.unsid.is_some() => send::as_backend(*args).await,
        Command::Completions { shell } => output::completions(shell),
        Command::Manpage { dir } => output::manpage(dir.as_deref()),
        other => ipc::run(other).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn a_unsid_may_begin_with_a_hyphen() {
        let cli = Cli::try_parse_from([
            "tidings",
            "send",
            "--unsid",
            "-QabC",
            "--client-id",
            "c",
            "--client-secret-stdin",
            "--host",
            "contoso.com",
            "--title",
            "t",
        ])
        .unwrap();
        let Command::Send(args) = cli.command else {
            panic!("not send")
        };
        assert_eq!(args.unsid.as_deref(), Some("-QabC"));
    }
}
