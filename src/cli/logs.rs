//! Where logs go: text on standard error (coloured on a terminal), JSON lines
//! (`log_format = "json"`), or the systemd journal with the level and the target as
//! fields (`journald`, and `auto` when systemd connected standard error to the
//! journal). The level comes from `TIDINGS_LOG`, else `RUST_LOG`, else `info`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{self, Table};

use super::{Cli, Command, Failure, settings};

/// The `log_format` of the command: the service's or the agent's setting; text for
/// every other command.
pub fn format_of(cli: &Cli) -> Result<String, Failure> {
    let (table, flags) = match &cli.command {
        Command::Service(args) => (Table::Service, args.keys.given.clone()),
        Command::Agent(args) => (Table::Agent, args.keys.given.clone()),
        _ => return Ok("text".to_owned()),
    };
    let file = settings::file(cli.config.as_deref())?;
    let effective = config::resolve(table, &flags, &file)?;
    Ok(effective
        .text("log_format")
        .unwrap_or_else(|| "auto".to_owned()))
}

/// Starts logging in `format` (see the module docs).
pub fn init(format: &str) {
    let journal = format == "journald" || (format == "auto" && under_journal());
    if journal && to_journal(filter()) {
        return;
    }
    let registry = tracing_subscriber::registry().with(filter());
    if format == "json" {
        let json = tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr);
        registry.with(json).init();
    } else {
        let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let text = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(colour);
        registry.with(text).init();
    }
}

/// Starts logging to daily files in [`crate::config::log_dir`], keeping a week of
/// them: `tidingsw` has no console to log to. JSON lines when `format` is `json`, text
/// otherwise. Without a directory to write to it logs nowhere, as there is nowhere
/// else to say so.
#[cfg(feature = "windowless")]
pub fn init_file(format: &str) {
    use tracing_appender::rolling::{Builder, Rotation};
    let Some(appender) = crate::config::log_dir().ok().and_then(|dir| {
        std::fs::create_dir_all(&dir).ok()?;
        Builder::new()
            .rotation(Rotation::DAILY)
            .filename_prefix("tidings")
            .filename_suffix("log")
            .max_log_files(7)
            .build(dir)
            .ok()
    }) else {
        return;
    };
    let registry = tracing_subscriber::registry().with(filter());
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(appender)
        .with_ansi(false);
    if format == "json" {
        registry.with(layer.json()).init();
    } else {
        registry.with(layer).init();
    }
}

/// The level filter: `TIDINGS_LOG`, else `RUST_LOG`, else `info`.
fn filter() -> EnvFilter {
    std::env::var("TIDINGS_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .and_then(|spec| EnvFilter::try_new(spec).ok())
        .unwrap_or_else(|| EnvFilter::new("info"))
}

/// Whether systemd connected standard error to the journal (`JOURNAL_STREAM`).
fn under_journal() -> bool {
    std::env::var_os("JOURNAL_STREAM").is_some()
}

/// Logs to the journal; false when there is no journal to log to.
#[cfg(target_os = "linux")]
fn to_journal(filter: EnvFilter) -> bool {
    match tracing_journald::layer() {
        Ok(journal) => {
            tracing_subscriber::registry()
                .with(filter)
                .with(journal.with_syslog_identifier("tidings".to_owned()))
                .init();
            true
        }
        Err(e) => {
            eprintln!("tidings: no systemd journal to log to ({e}); logging to standard error");
            false
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn to_journal(_filter: EnvFilter) -> bool {
    eprintln!("tidings: the systemd journal exists only on Linux; logging to standard error");
    false
}
