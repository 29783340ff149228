//! The `tidings` binary: parse the command line, start tracing, run the command, map
//! its failure to an exit code (1 error, 2 usage, 3 not running).

use clap::Parser;

use tidings::cli::{self, Cli};

fn main() {
    let cli = Cli::parse();
    let verbose = cli.verbose;
    match cli::logs::format_of(&cli) {
        Ok(format) => cli::logs::init(&format),
        Err(failure) => {
            eprintln!(
                "tidings: {}",
                cli::describe_failure(&failure.error, verbose)
            );
            std::process::exit(failure.code);
        }
    }
    tidings::agent::tls::install_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tidings: cannot start the async runtime: {e}");
            std::process::exit(cli::EXIT_ERROR);
        }
    };
    if let Err(failure) = runtime.block_on(cli::run(cli)) {
        if is_broken_pipe(&failure.error) {
            // `tidings history | head`: the reader has what it wanted.
            return;
        }
        eprintln!(
            "tidings: {}",
            cli::describe_failure(&failure.error, verbose)
        );
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
