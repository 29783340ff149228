//! The command line: argument definitions and the command bodies.
//!
//! Commands reach a running process only through `ipc::Client` (the admin socket here);
//! `service` wires the service's entry point to a listener and the signals.

mod admin;
mod agent;
mod output;
mod service;

use std::net::SocketAddr;
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
}

/// `tidings agent`.
#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// The service to use (after `tidings login` to it) [default: the signed-in one, or
    /// local mode].
    #[arg(long, env = "TIDINGS_SERVICE")]
    pub service: Option<String>,
    /// Log notifications instead of showing desktop toasts.
    #[arg(long)]
    pub no_toasts: bool,
    /// Also trust the CAs in this PEM file (a self-hosted service with its own CA)
    /// [default: the one given to `tidings login`].
    #[arg(long, env = "TIDINGS_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
}

/// `tidings login`.
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// The service's URL, e.g. https://notify.example.com (plain http only for loopback).
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
    /// Address to listen on (HTTP and WebSocket).
    #[arg(long, default_value = "127.0.0.1:7319", env = "TIDINGS_LISTEN")]
    pub listen: SocketAddr,
    /// Where the store and admin socket live [default: ~/.local/share/tidings/service on
    /// Linux, or $STATE_DIRECTORY under systemd].
    #[arg(long, env = "TIDINGS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

/// `tidings admin`.
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    /// The service's data directory (where admin.sock is).
    #[arg(long, env = "TIDINGS_DATA_DIR", global = true)]
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
    /// List users.
    List,
}

/// `tidings admin app ...`.
#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Register an app backend for a host name; prints its client id and secret once.
    Add {
        /// The app's host name (the targetHostName of its notifications).
        hostname: String,
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
    match cli.command {
        Command::Service(args) => service::run(args).await,
        Command::Admin(args) => admin::run(args).await,
        Command::Agent(args) => agent::run(args).await,
        Command::Login(args) => agent::login(args).await,
        Command::Logout => agent::logout().await,
    }
}
