//! What one sender or user may cost the service: a post rate per sender (`429` with
//! `Retry-After`), a quota per user (`507`, nothing stored), feed pages capped by size
//! (`@odata.nextLink` to the rest), and an administrator removing a user with all they
//! hold.

use serde_json::{Value, json};

use crate::helpers::{Device, Event, TestService, note};

/// A note from the user to their own devices, as `device`.
async fn own_note(device: &Device, body: &Value) -> reqwest::Response {
    device
        .http
        .post(format!("{}/v1/me/notifications", device.url))
        .bearer_auth(&device.token)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The Graph error code of an answer.
async fn code_of(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_sender_past_its_rate_gets_429_and_a_user_past_the_quota_507() {
    let service = TestService::start_with(|s| {
        s.posts.rate = 0.5;
        s.posts.burst = 3.0;
        s.posts.max_notifications = 5;
    })
    .await;
    let (app, device, unsid) = service.alice_and_contoso().await;
    for _ in 0..3 {
        service
            .post_ok(&app, &unsid, &note("contoso.com", "within the burst"))
            .await;
    }
    let refused = service
        .post(&app, &unsid, &note("contoso.com", "too fast"))
        .await;
    assert_eq!(refused.status(), 429);
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&wait), "Retry-After: {wait}");
    assert_eq!(code_of(refused).await, "tooManyRequests");

    // The user's own notes are another sender; the quota counts both.
    let mine = json!({"payload": {"visualContent": {"title": "mine"}}});
    for _ in 0..2 {
        assert_eq!(own_note(&device, &mine).await.status(), 201);
    }
    let full = own_note(&device, &mine).await;
    assert_eq!(full.status(), 507);
    let body: Value = full.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("quota"), "{message}");
    assert_eq!(
        device.whole_feed().await.len(),
        5,
        "nothing more was stored"
    );
}

#[tokio::test]
async fn a_user_past_the_byte_quota_gets_507() {
    let service = TestService::start_with(|s| s.posts.max_bytes = 20_000).await;
    let (app, device, unsid) = service.alice_and_contoso().await;
    let mut big = note("contoso.com", "big");
    big["payload"]["rawContent"] = json!("r".repeat(12_000));
    service.post_ok(&app, &unsid, &big).await;
    let refused = service.post(&app, &unsid, &big).await;
    assert_eq!(refused.status(), 507);
    assert_eq!(code_of(refused).await, "insufficientStorage");
    // A small one still fits.
    service
        .post_ok(&app, &unsid, &note("contoso.com", "small"))
        .await;
    assert_eq!(device.whole_feed().await.len(), 2);
}

#[tokio::test]
async fn a_feed_page_is_capped_by_size_and_links_to_the_rest() {
    let service = TestService::start().await;
    let (app, device, unsid) = service.alice_and_contoso().await;
    let mut big = note("contoso.com", "big");
    big["payload"]["rawContent"] = json!("r".repeat(16 * 1024));
    big["payload"]["visualContent"]["body"] = json!("b".repeat(4096));
    for _ in 0..60 {
        service.post_ok(&app, &unsid, &big).await;
    }
    let first = device
        .get_json("/v1/me/notifications?since=0&top=1000")
        .await;
    let items = first["value"].as_array().unwrap();
    let bytes = first["value"].to_string().len();
    assert!(
        items.len() < 60 && bytes < 1_100_000,
        "{} items, {bytes} bytes in one page",
        items.len()
    );
    let next = first["@odata.nextLink"]
        .as_str()
        .expect("a link to the rest");
    let last = items.last().unwrap()["seq"].as_u64().unwrap();
    assert_eq!(next, format!("/v1/me/notifications?since={last}&top=1000"));
    let rest = device.get_json(next).await;
    let rest = rest["value"].as_array().unwrap();
    assert_eq!(items.len() + rest.len(), 60);
    assert_eq!(device.whole_feed().await.len(), 60);
}

#[tokio::test]
async fn removing_a_user_signs_out_their_devices_and_deletes_what_they_hold() {
    let service = TestService::start().await;
    let (app, device, unsid) = service.alice_and_contoso().await;
    service.add_user("bob").await;
    let bobs = service.sign_in("bob", "linux").await;
    let mut channel = device.channel(0).await;
    channel.until_synced().await;
    service
        .post_ok(&app, &unsid, &note("contoso.com", "before"))
        .await;
    channel.next_change().await;

    let removed = service
        .admin("user.remove", json!({"name": "alice"}))
        .await
        .unwrap();
    assert_eq!(
        (
            removed["notifications"].as_u64(),
            removed["devices"].as_u64()
        ),
        (Some(1), Some(1))
    );
    match channel.next_event().await {
        Event::Closed(code) => assert_eq!(code, Some(1008)),
        Event::Frame(frame) => panic!("expected the channel to close: {frame:?}"),
    }
    let refused = device
        .http
        .get(format!("{}/v1/me/notifications", device.url))
        .bearer_auth(&device.token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401, "the device's token stops working");
    let orphan = service
        .post(&app, &unsid, &note("contoso.com", "after"))
        .await;
    assert!(
        orphan.status().is_client_error(),
        "the UNSID is gone: {}",
        orphan.status()
    );
    let users = service.admin("user.list", json!({})).await.unwrap();
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["name"].as_str())
        .collect();
    assert_eq!(names, ["bob"]);
    let devices = service.admin("device.list", json!({})).await.unwrap();
    assert_eq!(devices.as_array().unwrap().len(), 1, "bob's device only");
    assert_eq!(bobs.feed(0).await.len(), 0);
    let unknown = service
        .admin("user.remove", json!({"name": "alice"}))
        .await
        .unwrap_err();
    assert!(unknown.to_string().contains("no user"), "{unknown}");
    // The name can be used again, from scratch.
    service.add_user("alice").await;
    let again = service.sign_in("alice", "linux").await;
    assert!(again.feed(0).await.is_empty());
}

#[tokio::test]
async fn tidings_admin_user_remove_says_what_went() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("service");
    let service = crate::process::Process::start(&data).await;
    let (app, _device, unsid) = crate::process::provision(&data, &service.url).await;
    let http = crate::helpers::http_client();
    crate::helpers::post_as_app(&http, &service.url, &app.token, &unsid, "one").await;
    let (code, out, err) = crate::process::admin(&data, &["user", "remove", "alice"], "").await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        "removed user alice: 1 notification and 1 device deleted"
    );
    let (code, _, err) = crate::process::admin(&data, &["user", "remove", "alice"], "").await;
    assert_eq!(code, 1);
    assert!(err.contains("no user \"alice\""), "{err}");
}
