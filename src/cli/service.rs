//! `tidings service`: binds the listener, opens the state, runs until SIGINT / SIGTERM.

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use std::path::Path;

use crate::config::{self, Table};
use crate::service::{self, ServiceState};

use super::{Failure, ServiceArgs, settings};

/// Runs the service in the foreground.
pub async fn run(args: ServiceArgs, config: Option<&Path>) -> Result<(), Failure> {
    let file = settings::file(config)?;
    let effective = config::resolve(Table::Service, &args.keys.given, &file)?;
    let settings = settings::service_settings(&effective)?;
    let data_dir = settings.data_dir.clone();
    if let Some(backup) = &args.restore {
        if settings.database.is_some() {
            return Err(anyhow::anyhow!(
                "--restore restores a backup of the sled store; this service keeps its data in PostgreSQL ([service] store): restore that with pg_restore (docs/nodes.md)"
            )
            .into());
        }
        let summary = crate::service::store::SledStore::restore(&data_dir, backup)?;
        println!(
            "restored {} entries of {} trees from {} into {}; start the service with --data-dir {}",
            summary.entries,
            summary.trees,
            backup.display(),
            data_dir.display(),
            data_dir.display()
        );
        return Ok(());
    }
    let listen = effective
        .address("listen")
        .ok_or_else(|| anyhow::anyhow!("no listen address"))?;
    // Bound before the store opens: a second node on the same address stops here,
    // before it touches a shared database (a node's id there is its host and port).
    let listener = TcpListener::bind(listen).await.with_context(|| {
        format!(
            "listening on {listen}; is another service running there? set listen (--listen ADDR)"
        )
    })?;
    let state = ServiceState::open(settings)
        .await
        .with_context(|| format!("opening the service store in {}", data_dir.display()))?;
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
