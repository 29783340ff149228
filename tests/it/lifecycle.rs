//! Lifecycle: one service per data directory, pings, silent devices.

use std::time::Duration;

use futures_util::StreamExt;
use tidings::service::{ServiceState, Settings};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{DEADLINE, Event, TestService};

#[tokio::test]
async fn a_second_service_on_the_same_data_dir_is_refused_clearly() {
    // sled's lock, on either run: with PostgreSQL there is no data directory to lock
    // (several nodes share one database by design).
    let service = TestService::start_with(|s| s.database = None).await;
    let second = ServiceState::open(Settings::new(service.state.settings.data_dir.clone())).await;
    let message = second.err().expect("the store is locked").to_string();
    assert!(
        message.contains("in use by another tidings service"),
        "{message}"
    );
    service.stop().await;
}

#[tokio::test]
async fn channels_are_pinged_and_silent_devices_are_closed() {
    // Pings every 250 ms: silence for 2.5 intervals (625 ms) closes a channel, so a
    // loaded machine that reads a little late does not lose the channel too early.
    let service = TestService::start_with(|s| s.ping_interval = Duration::from_millis(250)).await;
    service.add_user("alice").await;
    let device = service.sign_in("alice", "linux").await;
    let mut channel = device.channel(0).await;
    channel.until_synced().await;
    // Reading answers pings (the client library sends the pong), so the channel lives.
    let mut pings = 0;
    while pings < 3 {
        let message = tokio::time::timeout(DEADLINE, channel.socket.next())
            .await
            .unwrap();
        if let Some(Ok(Message::Ping(_))) = message {
            pings += 1;
        }
    }
    // Not reading means no pongs: the service gives up after 2.5 ping intervals.
    let idle_from = tokio::time::Instant::now();
    wait_for_disconnect(&service, &device.id).await;
    assert!(idle_from.elapsed() >= Duration::from_millis(500));
    let mut code = None;
    while code.is_none() {
        if let Event::Closed(c) = channel.next_event().await {
            code = Some(c);
        }
    }
    assert_eq!(code.unwrap(), Some(1001));
    service.stop().await;
}

async fn wait_for_disconnect(service: &TestService, device: &str) {
    crate::helpers::wait_until("the silent device is disconnected", || async {
        service.device_info(device).await["connected"] == false
    })
    .await;
}
