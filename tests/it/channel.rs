//! The feed and the push channel: store-and-forward, cross-device state sync, user
//! isolation, platform and subscription filters, slow devices, acks and revocation.

use serde_json::json;
use tidings::protocol::{ServerFrame, Status, UserActionState};

use crate::helpers::{Event, TestService, note, wait_until};

#[tokio::test]
async fn an_offline_device_receives_all_100_posts_once_in_seq_order() {
    let service = TestService::start().await;
    let (app, device, unsid) = service.alice_and_contoso().await;
    let mut ids = Vec::new();
    for i in 0..100 {
        ids.push(
            service
                .post_ok(&app, &unsid, &note("contoso.com", &format!("n{i}")))
                .await
                .id,
        );
    }
    let mut channel = device.channel(0).await;
    let (backlog, synced) = channel.until_synced().await;
    assert_eq!(synced.0, 100);
    let seqs: Vec<u64> = backlog.iter().map(|(seq, _)| seq.0).collect();
    assert_eq!(
        seqs,
        (1..=100).collect::<Vec<_>>(),
        "every post once, in seq order"
    );
    let got: Vec<_> = backlog.into_iter().map(|(_, n)| n.id).collect();
    assert_eq!(got, ids);

    channel.send_json(&json!({"type": "ack", "seq": 60})).await;
    wait_until("the ack is recorded", || async {
        service.device_info(&device.id).await["ackedSeq"] == 60
    })
    .await;
    // An ack past what the channel sent is held to what it sent: a device cannot mark
    // changes it never got as delivered.
    channel
        .send_json(&json!({"type": "ack", "seq": 1000}))
        .await;
    wait_until("the second ack is recorded", || async {
        service.device_info(&device.id).await["ackedSeq"] != 60
    })
    .await;
    assert_eq!(service.device_info(&device.id).await["ackedSeq"], 100);
    drop(channel);
    let mut resumed = device.channel(60).await;
    let (rest, _) = resumed.until_synced().await;
    assert_eq!(rest.first().map(|(s, _)| s.0), Some(61));
    assert_eq!(
        rest.len(),
        40,
        "resuming from the cursor sends only what is after it"
    );
    service.stop().await;
}

#[tokio::test]
async fn a_dismiss_on_one_device_reaches_the_other() {
    let service = TestService::start().await;
    service.add_user("alice").await;
    let app = service.add_app("contoso.com").await;
    let laptop = service.sign_in("alice", "linux").await;
    let phone = service.sign_in("alice", "android").await;
    let unsid = laptop.subscribe("contoso.com").await;
    phone.subscribe("contoso.com").await;
    let mut on_laptop = laptop.channel(0).await;
    let mut on_phone = phone.channel(0).await;
    on_laptop.until_synced().await;
    on_phone.until_synced().await;
    let posted = service
        .post_ok(&app, &unsid, &note("contoso.com", "both"))
        .await;
    assert_eq!(on_laptop.next_change().await.1.id, posted.id);
    assert_eq!(on_phone.next_change().await.1.id, posted.id);

    on_laptop
        .send_json(&json!({"type": "update", "requestId": "r1", "id": posted.id, "readState": "read", "userActionState": "dismissed"}))
        .await;
    let (seq, on_other) = on_phone.next_change().await;
    assert_eq!(seq.0, 2);
    assert_eq!(on_other.id, posted.id);
    assert_eq!(on_other.state.user_action_state, UserActionState::Dismissed);
    assert_eq!(on_other.state.read_state.as_str(), "read");
    let mut saw_result = false;
    let mut saw_echo = false;
    while !(saw_result && saw_echo) {
        match on_laptop.next_frame().await {
            ServerFrame::Result { request_id, ok, .. } => {
                assert_eq!((request_id.as_str(), ok), ("r1", true));
                saw_result = true;
            }
            ServerFrame::Change { seq, .. } => {
                assert_eq!(seq.0, 2, "the sender gets its own change too");
                saw_echo = true;
            }
            other @ ServerFrame::Synced { .. } => panic!("unexpected {other:?}"),
        }
    }

    on_phone
        .send_json(&json!({"type": "delete", "requestId": "r2", "id": posted.id}))
        .await;
    let (_, tombstone) = on_laptop.next_change().await;
    assert_eq!(tombstone.state.status, Status::Deleted);
    on_phone
        .send_json(&json!({"type": "update", "requestId": "r3", "id": "nope", "readState": "read"}))
        .await;
    on_phone.send_json(&json!({"type": "bogus"})).await;
    let mut refusals = Vec::new();
    while refusals.len() < 2 {
        if let ServerFrame::Result {
            request_id,
            ok: false,
            error,
        } = on_phone.next_frame().await
        {
            refusals.push((request_id, error.unwrap().code));
        }
    }
    assert_eq!(refusals[0].0, "r3");
    assert_eq!(refusals[0].1, tidings::protocol::ErrorCode::NotFound);
    assert_eq!(refusals[1].1, tidings::protocol::ErrorCode::InvalidRequest);
    service.stop().await;
}

#[tokio::test]
async fn two_users_never_see_each_other() {
    let service = TestService::start().await;
    service.add_user("alice").await;
    service.add_user("bob").await;
    let app = service.add_app("contoso.com").await;
    let alice = service.sign_in("alice", "linux").await;
    let bob = service.sign_in("bob", "linux").await;
    let alice_unsid = alice.subscribe("contoso.com").await;
    let bob_unsid = bob.subscribe("contoso.com").await;
    let mut bob_channel = bob.channel(0).await;
    bob_channel.until_synced().await;
    let for_alice = service
        .post_ok(&app, &alice_unsid, &note("contoso.com", "alice only"))
        .await;
    let for_bob = service
        .post_ok(&app, &bob_unsid, &note("contoso.com", "bob only"))
        .await;
    let (seq, got) = bob_channel.next_change().await;
    assert_eq!(
        (seq.0, &got.id),
        (1, &for_bob.id),
        "bob's first change is his own"
    );
    let alice_feed = alice.feed(0).await;
    assert_eq!(alice_feed.len(), 1);
    assert_eq!(alice_feed[0]["id"], for_alice.id.as_str());
    let url = format!("{}/v1/me/notifications/{}", service.url, for_alice.id);
    let patch = bob
        .http
        .patch(&url)
        .bearer_auth(&bob.token)
        .json(&json!({"readState": "read"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), 404, "bob cannot touch alice's notification");
    let get = service
        .http
        .get(format!(
            "{}/beta/me/notifications/{}",
            service.url, for_alice.id
        ))
        .bearer_auth(&app.token)
        .header("X-UNS-ID", &bob_unsid)
        .send()
        .await
        .unwrap();
    assert_eq!(
        get.status(),
        404,
        "an app cannot read alice's notification through bob's UNSID"
    );
    service.stop().await;
}

#[tokio::test]
async fn devices_only_get_apps_they_subscribed_to_and_their_platform() {
    let service = TestService::start().await;
    service.add_user("alice").await;
    let contoso = service.add_app("contoso.com").await;
    let laptop = service.sign_in("alice", "linux").await;
    let phone = service.sign_in("alice", "ios").await;
    let unsid = laptop.subscribe("contoso.com").await;
    let mut body = note("contoso.com", "ios only");
    body["targetPolicy"] = json!({"platformTypes": ["IOS"]});
    service.post_ok(&contoso, &unsid, &body).await;
    service
        .post_ok(&contoso, &unsid, &note("contoso.com", "everyone"))
        .await;
    assert!(
        phone.feed(0).await.is_empty(),
        "the phone never subscribed to contoso"
    );
    let laptop_feed = laptop.feed(0).await;
    assert_eq!(
        laptop_feed.len(),
        1,
        "the linux laptop gets only the untargeted one"
    );
    assert_eq!(
        laptop_feed[0]["payload"]["visualContent"]["title"],
        "everyone"
    );
    phone.subscribe("contoso.com").await;
    assert_eq!(
        phone.feed(0).await.len(),
        2,
        "after subscribing, the phone gets both"
    );

    let note_url = format!("{}/v1/me/notifications", service.url);
    let own = laptop
        .http
        .post(&note_url)
        .bearer_auth(&laptop.token)
        .json(&json!({"payload": {"visualContent": {"title": "to myself"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 201);
    let last = phone.feed(2).await;
    assert_eq!(last.len(), 1);
    assert_eq!(last[0]["targetHostName"], "localhost");
    service.stop().await;
}

#[tokio::test]
async fn a_device_that_stops_reading_is_disconnected_not_buffered() {
    let service = TestService::start_with(|s| s.send_queue = 8).await;
    let (app, device, unsid) = service.alice_and_contoso().await;
    let mut channel = device.channel(0).await;
    channel.until_synced().await;
    assert_eq!(service.device_info(&device.id).await["connected"], true);
    // The test stops reading. Big notifications fill the socket buffers, then the queue.
    let mut body = note("contoso.com", "big");
    body["payload"]["rawContent"] = json!("r".repeat(16 * 1024));
    let mut posted = 0;
    while service.device_info(&device.id).await["connected"] == true {
        assert!(posted < 5000, "the device was never disconnected");
        for _ in 0..25 {
            service.post_ok(&app, &unsid, &body).await;
            posted += 1;
        }
    }
    // Reading again: what was buffered, then a close frame asking to resync.
    let mut closed_with = None;
    while closed_with.is_none() {
        if let Event::Closed(code) = channel.next_event().await {
            closed_with = Some(code);
        }
    }
    assert_eq!(closed_with.unwrap(), Some(1013));
    let mut again = device.channel(0).await;
    let (all, _) = again.until_synced().await;
    assert_eq!(
        all.len(),
        posted,
        "a resync from the cursor gets everything"
    );
    service.stop().await;
}

#[tokio::test]
async fn revoking_a_device_closes_its_channel_at_once() {
    let service = TestService::start().await;
    service.add_user("alice").await;
    let device = service.sign_in("alice", "linux").await;
    let mut channel = device.channel(0).await;
    channel.until_synced().await;
    let info = service.device_info(&device.id).await;
    assert_eq!(info["connected"], true);
    assert_eq!(info["user"], "alice");
    assert_eq!(info["platform"], "linux");
    service
        .admin("device.revoke", json!({"id": device.id}))
        .await
        .unwrap();
    match channel.next_event().await {
        Event::Closed(code) => assert_eq!(code, Some(1008)),
        Event::Frame(frame) => panic!("expected a close, got {frame:?}"),
    }
    let info = service.device_info(&device.id).await;
    assert_eq!(
        (info["connected"].clone(), info["revoked"].clone()),
        (json!(false), json!(true))
    );
    let unknown = service
        .admin("device.revoke", json!({"id": "no-such"}))
        .await;
    assert!(unknown.is_err());
    service.stop().await;
}

#[tokio::test]
async fn shutdown_closes_channels_with_a_close_frame() {
    let service = TestService::start().await;
    service.add_user("alice").await;
    let device = service.sign_in("alice", "linux").await;
    let mut channel = device.channel(0).await;
    channel.until_synced().await;
    service.shutdown.cancel();
    match channel.next_event().await {
        Event::Closed(code) => assert_eq!(code, Some(1001)),
        Event::Frame(frame) => panic!("expected a close, got {frame:?}"),
    }
    service.task.await.unwrap().unwrap();
}

/// Many posters of several apps at once, on a multi-thread runtime as in production:
/// the open channel gets every change live, and a later channel its backlog, each with
/// `seq`s exactly 1, 2, 3, ... (commit order is `seq` order) and each id once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_posters_of_several_apps_arrive_in_exact_seq_order() {
    const APPS: [&str; 3] = ["contoso.com", "fabrikam.com", "northwind.com"];
    const POSTERS: usize = 3;
    const EACH: usize = 25;
    let service = std::sync::Arc::new(TestService::start().await);
    service.add_user("alice").await;
    let device = service.sign_in("alice", "linux").await;
    let mut targets = Vec::new();
    for host in APPS {
        let app = service.add_app(host).await;
        let unsid = device.subscribe(host).await;
        targets.push((host, std::sync::Arc::new(app), unsid));
    }
    let mut live = device.channel(0).await;
    live.until_synced().await;
    let mut posters = Vec::new();
    for (host, app, unsid) in &targets {
        for poster in 0..POSTERS {
            let (service, app, unsid, host) = (
                service.clone(),
                app.clone(),
                unsid.clone(),
                (*host).to_owned(),
            );
            posters.push(tokio::spawn(async move {
                for n in 0..EACH {
                    let title = format!("{host} {poster} {n}");
                    service.post_ok(&app, &unsid, &note(&host, &title)).await;
                }
            }));
        }
    }
    let total = APPS.len() * POSTERS * EACH;
    let mut seen = Vec::new();
    while seen.len() < total {
        let (seq, notification) = live.next_change().await;
        seen.push((seq.0, notification.id));
    }
    for poster in posters {
        poster.await.unwrap();
    }
    let check = |changes: &[(u64, tidings::protocol::NotificationId)]| {
        let seqs: Vec<u64> = changes.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(seqs, (1..=total as u64).collect::<Vec<_>>());
        let ids: std::collections::HashSet<_> = changes.iter().map(|(_, id)| id).collect();
        assert_eq!(ids.len(), total, "each id once");
    };
    check(&seen);
    let mut later = device.channel(0).await;
    let (backlog, _) = later.until_synced().await;
    let backlog: Vec<_> = backlog.into_iter().map(|(seq, n)| (seq.0, n.id)).collect();
    check(&backlog);
    assert_eq!(backlog, seen);
    drop(targets);
    if let Ok(service) = std::sync::Arc::try_unwrap(service) {
        service.stop().await;
    }
}
