//! Crash durability, with SIGKILL where a crash hurts most: the agent right after it
//! answered a local change, and the service with posts in flight and a channel open.
//! What was answered (`read`'s success, a `201`) or shown to a device (a `seq` on the
//! channel) must be there after the restart, and new `seq`s must come after it.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;
use tidings::protocol::frames::ServerFrame;
use tokio::sync::Notify;

use crate::helpers::{Event, TestService, try_post_as_app, wait_until};
use crate::home::{Home, terminate};
use crate::process::{Process, provision};

/// The agent answers `read` only once the change is on disk in its outbox. Offline, that
/// outbox is the only place the change exists; the agent is killed at once, and after
/// both come back the service has the change.
#[tokio::test]
async fn a_local_change_survives_sigkill_of_the_agent_right_after_its_answer() {
    let service = TestService::start().await;
    service.add_user("alice").await;
    let home = Home::new();
    home.login(&service.url, "alice", "alice-pw").await;
    let mut agent = home.serving_agent().await;
    let sent = home.json(&["send", "--title", "read me"]).await;
    let id = sent["id"].as_str().unwrap().to_owned();
    let url = service.url.clone();
    let dir = service.stop().await;

    let read = home.run(&["read", &id]).await;
    assert!(read.status.success(), "{read:?}");
    agent.kill().await.unwrap();

    let service = TestService::resume(dir, &url).await;
    let other = service.sign_in("alice", "linux").await;
    let agent = home.serving_agent().await;
    wait_until("the read made offline reaches the service", || async {
        other
            .feed(0)
            .await
            .iter()
            .any(|n| n["id"] == id.as_str() && n["readState"] == "read")
    })
    .await;
    let shown = home.json(&["show", &id]).await;
    assert_eq!(shown["readState"], "read", "{shown}");
    terminate(agent).await;
    service.stop().await;
}

/// Posts that the killed service can no longer answer may or may not be stored; every
/// one it answered `201`, and every `seq` it showed a device, must be.
#[tokio::test]
async fn every_201_and_every_seq_seen_survive_sigkill_with_posts_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("service");
    let mut service = Process::start(&data).await;
    let (app, device, unsid) = provision(&data, &service.url).await;
    let mut channel = device.channel(0).await;
    let (backlog, _) = channel.until_synced().await;
    assert!(backlog.is_empty());
    let watching = tokio::spawn(async move {
        let mut seen = BTreeMap::new();
        while let Event::Frame(frame) = channel.next_event().await {
            if let ServerFrame::Change { seq, notification } = frame {
                assert!(seen.insert(seq.0, notification.id.to_string()).is_none());
            }
        }
        seen
    });

    let answered = Arc::new(AtomicUsize::new(0));
    let enough = Arc::new(Notify::new());
    let mut posters = Vec::new();
    for poster in 0..8 {
        let (url, token, unsid) = (service.url.clone(), app.token.clone(), unsid.clone());
        let (answered, enough) = (answered.clone(), enough.clone());
        posters.push(tokio::spawn(async move {
            let http = crate::helpers::http_client();
            let mut ids = Vec::new();
            // Bounded: the service is killed long before.
            for i in 0..1_000 {
                let Some(id) = post(&http, &url, &token, &unsid, &format!("{poster}-{i}")).await
                else {
                    break;
                };
                ids.push(id);
                if answered.fetch_add(1, Ordering::Relaxed) + 1 == 200 {
                    enough.notify_one();
                }
            }
            ids
        }));
    }
    enough.notified().await;
    service.child.kill().await.unwrap();
    let mut created = HashSet::new();
    for poster in posters {
        created.extend(poster.await.unwrap());
    }
    let seen = watching.await.unwrap();
    assert!(created.len() >= 200, "{} answered", created.len());
    assert!(!seen.is_empty(), "the channel saw changes before the kill");

    let listen = service.url.trim_start_matches("http://").to_owned();
    let service = Process::start_on(&data, &listen).await;
    let stored = device.whole_feed().await;
    let stored_ids: HashSet<&String> = stored.values().collect();
    for (seq, id) in &seen {
        assert_eq!(
            stored.get(seq),
            Some(id),
            "seq {seq} was seen on the channel"
        );
    }
    let lost: Vec<_> = created
        .iter()
        .filter(|id| !stored_ids.contains(id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} answered 201 are gone, e.g. {:?}",
        lost.len(),
        created.len(),
        lost.first()
    );
    let highest = stored.keys().chain(seen.keys()).max().copied().unwrap();
    let http = crate::helpers::http_client();
    let after = post(&http, &service.url, &app.token, &unsid, "after")
        .await
        .expect("the restarted service answers");
    let (seq, _) = device
        .whole_feed()
        .await
        .into_iter()
        .find(|(_, id)| *id == after)
        .unwrap();
    assert!(
        seq > highest,
        "a new seq ({seq}) comes after every earlier one ({highest})"
    );
}

/// Posts one note; its id when the answer is `201`, `None` when the service is gone.
pub async fn post(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    unsid: &str,
    title: &str,
) -> Option<String> {
    let response = try_post_as_app(http, url, token, unsid, title).await.ok()?;
    if response.status() != 201 {
        return None;
    }
    let body: Value = response.json().await.ok()?;
    Some(body["id"].as_str()?.to_owned())
}
