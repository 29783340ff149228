//! The process entry shared by the two binaries: `tidings` (a console program) and,
//! on Windows, `tidingsw` (the same commands without a console window, for the agent
//! started at logon; built with the `windowless` feature). Parses the command line,
//! starts logging, runs the command on a multi-threaded runtime, and maps its failure
//! to an exit code (1 error, 2 usage, 3 not running).

use clap::Parser;

use super::{Cli, EXIT_ERROR, describe_failure, logs, run};

/// How the process was started, which decides where its logs and errors go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launch {
    /// From a terminal or a service manager: logs and errors on standard error.
    Console,
    /// Without a console (`tidingsw`): nowhere to print, so logs and errors go to a
    /// daily log file under the local data directory (see [`logs::log_dir`]).
    #[cfg(feature = "windowless")]
    Windowless,
}

/// Runs the command line and exits with its code.
pub fn main(launch: Launch) {
    let cli = Cli::parse();
    let verbose = cli.verbose;
    let format = logs::format_of(&cli);
    match (launch, &format) {
        (Launch::Console, Ok(format)) => logs::init(format),
        (Launch::Console, Err(_)) => {}
        #[cfg(feature = "windowless")]
        (Launch::Windowless, _) => logs::init_file(format.as_deref().unwrap_or("text")),
    }
    let report = |message: String| {
        if launch == Launch::Console {
            eprintln!("tidings: {message}");
        } else {
            tracing::error!("{message}");
        }
    };
    if let Err(failure) = format {
        report(describe_failure(&failure.error, verbose));
        std::process::exit(failure.code);
    }
    crate::agent::tls::install_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            report(format!("cannot start the async runtime: {e}"));
            std::process::exit(EXIT_ERROR);
        }
    };
    if let Err(failure) = runtime.block_on(run(cli)) {
        if is_broken_pipe(&failure.error) {
            // `tidings history | head`: the reader has what it wanted.
            return;
        }
        report(describe_failure(&failure.error, verbose));
        std::process::exit(failure.code);
    }
}

/// Whether the failure is standard output's reader going away. Output errors reach
/// here as bare `io::Error`s; a broken IPC or HTTP connection arrives wrapped in its
/// own error type, and stays an error.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}
