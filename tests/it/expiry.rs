//! Expiry: expired notifications disappear from every API and are purged from the store.

use reqwest::Method;
use std::time::Duration;

use serde_json::json;
use tidings::protocol::{Seq, Timestamp, UserId};

use crate::helpers::{Device, TestService, note, wait_until};

#[tokio::test]
async fn expired_notifications_are_purged_everywhere() {
    let service = TestService::start().await;
    let user = service.add_user("alice").await;
    let app = service.add_app("contoso.com").await;
    let device = service.sign_in("alice", "linux").await;
    let unsid = device.subscribe("contoso.com").await;
    let mut short = note("contoso.com", "short-lived");
    short["appNotificationId"] = json!("short");
    let in_a_minute = |service: &TestService| {
        let at = service.state.now().plus(Duration::from_secs(60));
        json!(at.to_rfc3339())
    };
    short["expirationDateTime"] = in_a_minute(&service);
    let doomed = service.post_ok(&app, &unsid, &short).await;
    let kept = service
        .post_ok(&app, &unsid, &note("contoso.com", "default expiry"))
        .await;
    let week = Timestamp::now().plus(Duration::from_secs(7 * 24 * 3600));
    assert!(kept.content.expiration_date_time <= week);
    assert_eq!(device.feed(0).await.len(), 2);
    // Two minutes pass, as far as the service can tell (no test waits a minute).
    service.state.clock.advance(Duration::from_secs(120));

    let user = UserId::new(user);
    wait_until(
        "the expired notification is purged from the store",
        || async {
            let scan = service
                .state
                .store
                .feed_scan(&user, Seq::ZERO, None, 100)
                .await
                .unwrap();
            scan.records.len() == 1
        },
    )
    .await;
    let url = format!("{}/beta/me/notifications/{}", service.url, doomed.id);
    let get = service
        .as_app(Method::GET, &url, &app, &unsid)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 404);
    let feed = device.feed(0).await;
    assert_eq!(feed.len(), 1);
    assert_eq!(feed[0]["id"], kept.id.as_str());
    // The appNotificationId is free again: posting it creates a new notification.
    short["expirationDateTime"] = in_a_minute(&service);
    let reborn = service.post_ok(&app, &unsid, &short).await;
    assert_ne!(reborn.id, doomed.id);
    assert_eq!(device.feed(2).await.len(), 1, "the new one is at seq 3");

    // After a restart the indexes are rebuilt and feed positions keep growing, even
    // though the notification that held seq 1 was purged.
    let service = service.restart().await;
    let device = Device {
        url: service.url.clone(),
        ..device
    };
    let feed = device.feed(0).await;
    let seqs: Vec<u64> = feed
        .iter()
        .map(|item| item["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![2, 3]);
    let latest = service
        .post_ok(&app, &unsid, &note("contoso.com", "after restart"))
        .await;
    let tail = device.feed(3).await;
    assert_eq!(tail.len(), 1);
    assert_eq!(tail[0]["id"], latest.id.as_str());
    assert_eq!(tail[0]["seq"], 4);
    short["payload"]["visualContent"]["title"] = json!("replaced after restart");
    let replaced = service.post_ok(&app, &unsid, &short).await;
    assert_eq!(
        replaced.id, reborn.id,
        "the appNotificationId index survives a restart"
    );
    service.stop().await;
}

/// What a user keeps (the quota's input) is counted as rows come and go: a replace in
/// place and a state change keep the count, a purge takes off exactly what it removed,
/// down to nothing.
#[tokio::test]
async fn what_a_user_keeps_is_counted_through_replace_change_and_purge() {
    let service = TestService::start().await;
    let user = UserId::new(service.add_user("alice").await);
    let app = service.add_app("contoso.com").await;
    let device = service.sign_in("alice", "linux").await;
    let unsid = device.subscribe("contoso.com").await;
    let usage = || async {
        let usage = service.state.store.usage(&user).await.unwrap();
        (usage.notifications, usage.bytes)
    };
    assert_eq!(usage().await, (0, 0));
    let mut short = note("contoso.com", "short-lived");
    short["appNotificationId"] = json!("short");
    short["expirationDateTime"] = json!(
        service
            .state
            .now()
            .plus(Duration::from_secs(60))
            .to_rfc3339()
    );
    service.post_ok(&app, &unsid, &short).await;
    let kept = service
        .post_ok(&app, &unsid, &note("contoso.com", "default expiry"))
        .await;
    let (count, two) = usage().await;
    assert_eq!(count, 2);

    short["payload"]["visualContent"]["body"] = json!("b".repeat(2_000));
    service.post_ok(&app, &unsid, &short).await;
    let (count, replaced) = usage().await;
    assert_eq!(count, 2, "a replace in place is no new notification");
    assert!(replaced > two + 1_900, "{replaced} bytes after {two}");
    device.mark_read(kept.id.as_str()).await;
    assert_eq!(usage().await.0, 2, "a state change is no new notification");

    service.state.clock.advance(Duration::from_secs(120));
    wait_until("the short-lived one is purged and uncounted", || async {
        usage().await.0 == 1
    })
    .await;
    assert!(usage().await.1 < two, "its bytes went with it");
    service
        .state
        .clock
        .advance(Duration::from_secs(8 * 24 * 3600));
    wait_until("everything is purged and nothing counted", || async {
        usage().await == (0, 0)
    })
    .await;
    service.stop().await;
}
