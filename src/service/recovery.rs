//! Recovery from a failed store (a full disk, an I/O error): at once, the failed
//! database handle is replaced by a fresh one so reads go on, and every device resyncs
//! (`Store::recover`, `Hub::resync`); then every `recovery_interval` the store checks
//! whether the disk takes a write again, and accepts writes once it does.
//!
//! Why reopen in the process rather than exit for the supervisor to restart us: reads
//! (feeds, channels' backlogs, the app `GET`) keep being served the whole time, local
//! mode (the service inside the agent) has no supervisor, and sled keeps a flush error
//! in its handle, so a reopen is needed either way.

use super::State;

/// Runs until the service shuts down.
pub async fn run(state: State) {
    state.store.recovery_runs();
    let mut tick = tokio::time::interval(state.settings.recovery_interval);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = state.store.wait_failed() => {}
            () = state.shutdown.cancelled() => return,
        }
        if state.store.failure().is_none() {
            continue;
        }
        let attempt = state.clone();
        let result = tokio::task::spawn_blocking(move || {
            let hub = attempt.hub.clone();
            attempt
                .store
                .recover(Box::new(move |durable| hub.resync(durable)))
        })
        .await;
        match result {
            Ok(Ok(true)) => tracing::info!("the store recovered"),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "reopening the store failed; retrying"),
            Err(e) => tracing::error!(error = %e, "the recovery task failed"),
        }
    }
}
