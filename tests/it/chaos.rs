//! Chaos: a TCP proxy between the agent and the service cuts every connection at
//! random moments (a bounded number of times) while 2,000 notifications flow. The
//! agent must end with all of them, each applied once, and the service's acked cursor
//! for the device must be the last `seq`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tidings::agent::Settings;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::helpers::{TestService, post_as_app, wait_until};
use crate::test_agent::TestAgent;

const NOTIFICATIONS: usize = 2000;
const CUTS: usize = 12;

/// Forwards to `backend`; every connection dies when `cut` fires. Returns its address.
async fn cutting_proxy(
    backend: String,
    cut: Arc<Mutex<CancellationToken>>,
    accepted: Arc<AtomicUsize>,
    stop: CancellationToken,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let (mut client, _) = tokio::select! {
                accepted = listener.accept() => accepted.unwrap(),
                () = stop.cancelled() => return,
            };
            accepted.fetch_add(1, Ordering::Relaxed);
            let this_cut = cut.lock().unwrap().clone();
            let backend = backend.clone();
            tokio::spawn(async move {
                let Ok(mut server) = TcpStream::connect(&backend).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    () = this_cut.cancelled() => {}
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn the_agent_loses_nothing_and_applies_nothing_twice_when_links_are_cut() {
    let service = TestService::start().await;
    let (app, device, unsid) = service.alice_and_contoso().await;
    let cut = Arc::new(Mutex::new(CancellationToken::new()));
    let stop = CancellationToken::new();
    let backend = service.url.trim_start_matches("http://").to_owned();
    let accepted = Arc::new(AtomicUsize::new(0));
    let proxy = cutting_proxy(backend, cut.clone(), accepted.clone(), stop.clone()).await;

    let dir = tempfile::tempdir().unwrap();
    let agent = TestAgent::launch(Settings::new(
        format!("http://{proxy}"),
        device.refresh.clone(),
        dir.path().to_owned(),
    ));
    let handle = agent.handle.clone();

    let chaos = {
        let cut = cut.clone();
        tokio::spawn(async move {
            for _ in 0..CUTS {
                let pause = rand::random_range(20..150);
                tokio::time::sleep(Duration::from_millis(pause)).await;
                let old = std::mem::take(&mut *cut.lock().unwrap());
                old.cancel();
            }
        })
    };
    let mut posters = Vec::new();
    for poster in 0..8 {
        let (http, url, token, unsid) = (
            service.http.clone(),
            service.url.clone(),
            app.token.clone(),
            unsid.clone(),
        );
        posters.push(tokio::spawn(async move {
            for i in 0..NOTIFICATIONS / 8 {
                post_as_app(&http, &url, &token, &unsid, &format!("{poster}-{i}")).await;
            }
        }));
    }
    for poster in posters {
        poster.await.unwrap();
    }
    chaos.await.unwrap();
    let last = NOTIFICATIONS as u64;
    wait_until("the device acks the last seq", || async {
        service.device_info(&device.id).await["ackedSeq"] == last
    })
    .await;
    let connections = accepted.load(Ordering::Relaxed);
    assert!(
        connections >= 4,
        "the links were cut and re-made ({connections} connections)"
    );
    assert_eq!(handle.store().len(), NOTIFICATIONS);
    assert_eq!(handle.store().cursor().unwrap().0, last);
    let mut shown = agent.recorder.shown.lock().unwrap().clone();
    let summarised = *agent.recorder.summarised.lock().unwrap();
    assert_eq!(
        shown.len() + summarised,
        NOTIFICATIONS,
        "each notification presented once (shown, or announced in a backlog summary)"
    );
    let one_by_one = shown.len();
    shown.sort();
    shown.dedup();
    assert_eq!(shown.len(), one_by_one, "no toast shown twice");
    agent.stop().await;
    stop.cancel();
    service.stop().await;
}

/// Forwards to `backend` until `freeze` fires; then holds every connection open but
/// passes nothing (a dead link that never closes). Counts connections.
async fn freezing_proxy(
    backend: String,
    freeze: CancellationToken,
    accepted: Arc<AtomicUsize>,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            accepted.fetch_add(1, Ordering::Relaxed);
            let (backend, freeze) = (backend.clone(), freeze.clone());
            tokio::spawn(async move {
                let Ok(mut server) = TcpStream::connect(&backend).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    () = freeze.cancelled() => {
                        // Keep both ends open and silent until the agent gives up.
                        let mut sink = [0u8; 1024];
                        while let Ok(n) = tokio::io::AsyncReadExt::read(&mut client, &mut sink).await {
                            if n == 0 { break; }
                        }
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_silent_link_is_declared_dead_and_made_again() {
    let service = TestService::start().await;
    let (_, device, _) = service.alice_and_contoso().await;
    let freeze = CancellationToken::new();
    let accepted = Arc::new(AtomicUsize::new(0));
    let backend = service.url.trim_start_matches("http://").to_owned();
    let proxy = freezing_proxy(backend, freeze.clone(), accepted.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::new(
        format!("http://{proxy}"),
        device.refresh.clone(),
        dir.path().to_owned(),
    );
    settings.dead_link = Duration::from_millis(300);
    let agent = TestAgent::launch(settings);
    wait_until("the agent is connected", || async {
        service.device_info(&device.id).await["connected"] == true
    })
    .await;
    let before = accepted.load(Ordering::Relaxed);
    freeze.cancel();
    // A new connection is made after the silence; it is silent too, so the handshake
    // times out and yet another one follows: nothing hangs.
    wait_until("the agent keeps trying", || async {
        accepted.load(Ordering::Relaxed) > before + 1
    })
    .await;
    agent.stop().await;
    service.stop().await;
}
