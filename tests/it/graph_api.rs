//! The Graph-compatible app API end to end: post, replace, get, delete, group delete,
//! and the `/users/{id}` form, with a device watching its channel.

use reqwest::Method;
use serde_json::json;
use tidings::protocol::Status;

use crate::helpers::{TestService, note};

#[tokio::test]
async fn graph_documentation_example_reaches_a_subscribed_device() {
    let service = TestService::start().await;
    service.add_user("alice").await;
    let app = service
        .add_app("graphnotifications.sample.windows.com")
        .await;
    let device = service.sign_in("alice", "windows").await;
    let unsid = device
        .subscribe("graphnotifications.sample.windows.com")
        .await;
    let mut channel = device.channel(0).await;
    let (backlog, _) = channel.until_synced().await;
    assert!(backlog.is_empty());

    let expires = tidings::protocol::Timestamp::now()
        .plus(std::time::Duration::from_secs(3600))
        .to_rfc3339();
    let body = json!({
        "targetHostName": "graphnotifications.sample.windows.com",
        "appNotificationId": "sampleDirectToastNotification",
        "expirationDateTime": expires,
        "payload": {
            "visualContent": {"title": "Hello World!", "body": "Notifications are Great!"}
        },
        "targetPolicy": {"platformTypes": ["windows", "ios", "android"]},
        "priority": "High",
        "groupName": "TestGroup",
        "displayTimeToLive": "60"
    });
    let response = service.post(&app, &unsid, &body).await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: serde_json::Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    assert_eq!(location, format!("/beta/me/notifications/{id}"));
    assert_eq!(created["priority"], "High");
    assert_eq!(created["displayTimeToLive"], 60);
    assert_eq!(created["readState"], "unread");

    let (seq, notification) = channel.next_change().await;
    assert_eq!(seq.0, 1);
    assert_eq!(notification.id.as_str(), id);
    let visual = notification.content.payload.visual_content.unwrap();
    assert_eq!(visual.title, "Hello World!");
    assert_eq!(visual.body.as_deref(), Some("Notifications are Great!"));

    let fetched = service
        .as_app(
            Method::GET,
            format!("{}{location}", service.url),
            &app,
            &unsid,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.status(), 200);
    service.stop().await;
}

#[tokio::test]
async fn replace_keeps_the_id_resets_state_and_reaches_devices_in_place() {
    let service = TestService::start().await;
    let (app, device, unsid) = service.alice_and_contoso().await;
    let mut body = note("contoso.com", "first");
    body["appNotificationId"] = json!("order-42");
    let first = service.post_ok(&app, &unsid, &body).await;

    device.mark_read(first.id.as_str()).await;

    let mut channel = device.channel(2).await;
    channel.until_synced().await;
    body["payload"]["visualContent"]["title"] = json!("second");
    let second = service.post_ok(&app, &unsid, &body).await;
    assert_eq!(second.id, first.id);
    assert_eq!(second.created_date_time, first.created_date_time);
    assert_eq!(
        second.state.read_state.as_str(),
        "unread",
        "state resets on replace"
    );

    let (seq, change) = channel.next_change().await;
    assert_eq!(seq.0, 3);
    assert_eq!(change.id, first.id);
    assert_eq!(
        change.content.payload.visual_content.unwrap().title,
        "second"
    );
    let feed = device.feed(0).await;
    assert_eq!(
        feed.len(),
        1,
        "one notification, replaced in place: {feed:?}"
    );
    service.stop().await;
}

#[tokio::test]
async fn delete_and_group_delete_reach_devices_as_tombstones() {
    let service = TestService::start().await;
    let (app, device, unsid) = service.alice_and_contoso().await;
    let single = service
        .post_ok(&app, &unsid, &note("contoso.com", "single"))
        .await;
    let mut grouped = Vec::new();
    for i in 0..3 {
        let mut body = note("contoso.com", &format!("grouped {i}"));
        body["groupName"] = json!("build-7");
        grouped.push(service.post_ok(&app, &unsid, &body).await.id);
    }
    let mut channel = device.channel(4).await;
    channel.until_synced().await;

    let url = format!("{}/v1.0/me/notifications/{}", service.url, single.id);
    let deleted = service
        .as_app(Method::DELETE, &url, &app, &unsid)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let (_, tombstone) = channel.next_change().await;
    assert_eq!(tombstone.id, single.id);
    assert_eq!(tombstone.state.status, Status::Deleted);
    let again = service
        .as_app(Method::GET, &url, &app, &unsid)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);

    let group_url = format!("{}/beta/me/notifications?groupName=build-7", service.url);
    let response = service
        .as_app(Method::DELETE, &group_url, &app, &unsid)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let mut gone = Vec::new();
    for _ in 0..3 {
        let (_, change) = channel.next_change().await;
        assert_eq!(change.state.status, Status::Deleted);
        gone.push(change.id);
    }
    gone.sort();
    grouped.sort();
    assert_eq!(gone, grouped);
    service.stop().await;
}

#[tokio::test]
async fn a_group_delete_takes_that_group_of_that_app_and_nothing_else() {
    let service = TestService::start().await;
    let (app, device, unsid) = service.alice_and_contoso().await;
    let other_app = service.add_app("fabrikam.com").await;
    let other_unsid = device.subscribe("fabrikam.com").await;
    let with_group = |host: &str, title: &str, group: Option<&str>| {
        let mut body = note(host, title);
        if let Some(group) = group {
            body["groupName"] = json!(group);
        }
        body
    };
    let doomed = service
        .post_ok(
            &app,
            &unsid,
            &with_group("contoso.com", "doomed", Some("build-7")),
        )
        .await;
    let survivors = [
        service
            .post_ok(&app, &unsid, &with_group("contoso.com", "no group", None))
            .await,
        service
            .post_ok(
                &app,
                &unsid,
                &with_group("contoso.com", "other group", Some("build-8")),
            )
            .await,
        service
            .post_ok(
                &other_app,
                &other_unsid,
                &with_group("fabrikam.com", "other app, same group", Some("build-7")),
            )
            .await,
    ];
    let group_url = format!("{}/beta/me/notifications?groupName=build-7", service.url);
    let response = service
        .as_app(Method::DELETE, &group_url, &app, &unsid)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let feed = device.feed(0).await;
    let status_of = |id: &str| {
        feed.iter()
            .find(|n| n["id"] == id)
            .map(|n| n["status"].as_str().unwrap().to_owned())
    };
    assert_eq!(status_of(doomed.id.as_str()).as_deref(), Some("deleted"));
    for survivor in &survivors {
        assert_eq!(
            status_of(survivor.id.as_str()).as_deref(),
            Some("active"),
            "{:?} must survive",
            survivor.content.payload.visual_content
        );
    }
    service.stop().await;
}

#[tokio::test]
async fn users_path_accepts_me_and_the_unsid_user_only() {
    let service = TestService::start().await;
    let alice = service.add_user("alice").await;
    let bob = service.add_user("bob").await;
    let app = service.add_app("contoso.com").await;
    let device = service.sign_in("alice", "linux").await;
    let unsid = device.subscribe("contoso.com").await;
    for (user, status) in [("me", 201), (alice.as_str(), 201), (bob.as_str(), 403)] {
        let response = service
            .as_app(
                Method::POST,
                format!("{}/beta/users/{user}/notifications", service.url),
                &app,
                &unsid,
            )
            .json(&note("contoso.com", "via users path"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "user {user}");
    }
    let mut channel = device.channel(0).await;
    let (backlog, synced) = channel.until_synced().await;
    assert_eq!(backlog.len(), 2);
    assert_eq!(synced.0, 2);
    let id = &backlog[0].1.id;
    for (user, method, status) in [
        (bob.as_str(), Method::GET, 403),
        (alice.as_str(), Method::GET, 200),
        (bob.as_str(), Method::DELETE, 403),
        ("me", Method::DELETE, 204),
        (alice.as_str(), Method::GET, 404),
    ] {
        let url = format!("{}/v1.0/users/{user}/notifications/{id}", service.url);
        let response = service
            .as_app(method.clone(), url, &app, &unsid)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{method} as {user}");
    }
    let url = format!(
        "{}/beta/users/{alice}/notifications?groupName=none",
        service.url
    );
    let response = service
        .as_app(Method::DELETE, url, &app, &unsid)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let (_, tombstone) = channel.next_change().await;
    assert_eq!(
        (&tombstone.id, tombstone.state.status),
        (id, Status::Deleted)
    );
    service.stop().await;
}

#[tokio::test]
async fn healthz_and_unknown_paths() {
    let service = TestService::start().await;
    let ok = service
        .http
        .get(format!("{}/healthz", service.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let missing = service
        .http
        .get(format!("{}/nope", service.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "notFound");
    assert!(body["error"]["innerError"]["request-id"].is_string());
    service.stop().await;
}
