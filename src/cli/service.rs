//! `tidings service`: binds the listener, opens the state, runs until SIGINT / SIGTERM.

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config;
use crate::service::{self, ServiceState, Settings};

use super::{Failure, ServiceArgs};

/// Runs the service in the foreground.
pub async fn run(args: ServiceArgs) -> Result<(), Failure> {
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => config::service_data_dir()?,
    };
    let mut settings = Settings::new(data_dir.clone());
    args.limits.apply(&mut settings);
    let state = ServiceState::open(settings)
        .with_context(|| format!("opening the service store in {}", data_dir.display()))?;
    let listener = TcpListener::bind(args.listen).await.with_context(|| {
        format!(
            "listening on {}; is another service running there? pass --listen ADDR",
            args.listen
        )
    })?;
    tracing::info!(data_dir = %data_dir.display(), "store opened");
    let shutdown = CancellationToken::new();
    tokio::spawn(wait_for_signal(shutdown.clone()));
    service::run(listener, state, shutdown).await?;
    Ok(())
}

/// Cancels `shutdown` on SIGINT or SIGTERM (Ctrl-C elsewhere).
pub async fn wait_for_signal(shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot install signal handlers");
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("Ctrl-C: shutting down");
    }
    shutdown.cancel();
}
