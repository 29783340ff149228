//! Table tests for every rule of the notification resource (`validate.rs`).

use super::*;
use serde_json::json;

fn now() -> Timestamp {
    Timestamp::parse_rfc3339("2026-06-01T00:00:00Z").unwrap()
}

fn base() -> serde_json::Value {
    json!({
        "targetHostName": "contoso.com",
        "payload": {"visualContent": {"title": "Hello"}}
    })
}

fn check(body: &serde_json::Value) -> Result<NotificationContent, ValidationError> {
    NotificationInput::from_json(body.to_string().as_bytes())?.validate(now())
}

fn with(path: &[&str], value: serde_json::Value) -> serde_json::Value {
    let mut body = base();
    let mut at = &mut body;
    for key in &path[..path.len() - 1] {
        at = at
            .as_object_mut()
            .unwrap()
            .entry(*key)
            .or_insert_with(|| json!({}));
    }
    at[path[path.len() - 1]] = value;
    body
}

#[test]
fn graph_documentation_example_is_accepted() {
    let body = json!({
        "targetHostName": "graphnotifications.sample.windows.com",
        "appNotificationId": "sampleRawNotification",
        "payload": {"visualContent": {"title": "Hello World!", "body": "Notifications are fun"}},
        "targetPolicy": {"platformTypes": ["windows", "ios", "android"]},
        "priority": "High",
        "groupName": "TestGroup",
        "displayTimeToLive": "60",
        "expirationDateTime": "2026-06-02T00:00:00Z",
        "@odata.type": "#microsoft.graph.notification",
        "fallbackPolicy": {"platformTypes": ["webPush"]}
    });
    let content = check(&body).unwrap();
    assert_eq!(content.display_time_to_live, Some(60));
    assert_eq!(content.priority, Priority::High);
    assert_eq!(
        content.target_policy.platform_types,
        Some(vec![Platform::Windows, Platform::Ios, Platform::Android])
    );
    assert!(content.fallback_policy.is_some());
}

#[test]
fn defaults_are_filled_in() {
    let content = check(&base()).unwrap();
    assert_eq!(content.priority, Priority::None);
    assert_eq!(content.expiration_date_time, now().plus(DEFAULT_EXPIRY));
    assert_eq!(content.target_policy.platform_types, None);
    assert_eq!(content.display_time_to_live, None);
}

#[test]
fn far_expiry_is_clamped_to_thirty_days() {
    let content = check(&with(
        &["expirationDateTime"],
        json!("2030-01-01T00:00:00Z"),
    ))
    .unwrap();
    assert_eq!(content.expiration_date_time, now().plus(MAX_EXPIRY));
}

#[test]
fn host_names_are_lowercased() {
    let content = check(&with(&["targetHostName"], json!("Contoso.COM"))).unwrap();
    assert_eq!(content.target_host_name, "contoso.com");
}

#[test]
fn every_rule_names_its_field() {
    let long = |n: usize| json!("x".repeat(n));
    let cases: Vec<(serde_json::Value, &str)> = vec![
        (json!([1, 2]), "body"),
        (
            with(&["targetHostName"], json!("not a host")),
            "targetHostName",
        ),
        (
            with(
                &["targetHostName"],
                json!(format!("{}.com", "a".repeat(250))),
            ),
            "targetHostName",
        ),
        (
            with(&["targetHostName"], json!("-bad.com")),
            "targetHostName",
        ),
        (with(&["appNotificationId"], json!("")), "appNotificationId"),
        (with(&["appNotificationId"], long(257)), "appNotificationId"),
        (with(&["groupName"], long(257)), "groupName"),
        (with(&["displayTimeToLive"], json!(0)), "displayTimeToLive"),
        (
            with(&["displayTimeToLive"], json!(2_592_001)),
            "displayTimeToLive",
        ),
        (
            with(&["displayTimeToLive"], json!("soon")),
            "displayTimeToLive",
        ),
        (with(&["displayTimeToLive"], json!(-5)), "displayTimeToLive"),
        (
            with(&["expirationDateTime"], json!("2020-01-01T00:00:00Z")),
            "expirationDateTime",
        ),
        (
            with(&["expirationDateTime"], json!("next week")),
            "expirationDateTime",
        ),
        (with(&["priority"], json!("urgent")), "priority"),
        (
            with(&["payload", "visualContent", "title"], json!("")),
            "payload.visualContent.title",
        ),
        (
            with(&["payload", "visualContent", "title"], long(513)),
            "payload.visualContent.title",
        ),
        (
            with(&["payload", "visualContent", "body"], long(4097)),
            "payload.visualContent.body",
        ),
        (
            with(&["payload", "rawContent"], long(16 * 1024 + 1)),
            "payload.rawContent",
        ),
        (
            json!({"targetHostName": "contoso.com", "payload": {}}),
            "payload",
        ),
        (json!({"targetHostName": "contoso.com"}), "payload"),
        (json!({"payload": {"rawContent": "x"}}), "targetHostName"),
        (
            with(&["targetPolicy", "platformTypes"], json!(["amiga"])),
            "targetPolicy.platformTypes",
        ),
        (
            with(&["targetPolicy", "platformTypes"], json!("linux")),
            "targetPolicy.platformTypes",
        ),
    ];
    for (body, field) in cases {
        let err = check(&body).expect_err(&body.to_string());
        assert_eq!(err.field, field, "{body}: {err}");
    }
}

#[test]
fn limits_are_inclusive() {
    let body = with(
        &["payload", "visualContent", "title"],
        json!("é".repeat(512)),
    );
    assert!(check(&body).is_ok(), "512 characters, not bytes");
    assert!(check(&with(&["displayTimeToLive"], json!(2_592_000))).is_ok());
    assert!(
        check(&with(
            &["payload", "rawContent"],
            json!("x".repeat(16 * 1024))
        ))
        .is_ok()
    );
}

#[test]
fn raw_only_and_case_insensitive_values_are_accepted() {
    let body = json!({
        "targetHostName": "contoso.com",
        "priority": "low",
        "targetPolicy": {"platformTypes": ["LINUX", "macos", "WebPush"]},
        "payload": {"rawContent": "{\"k\":1}"},
        "someFutureField": true
    });
    let content = check(&body).unwrap();
    assert_eq!(content.priority, Priority::Low);
    assert_eq!(
        content.target_policy.platform_types,
        Some(vec![Platform::Linux, Platform::MacOs, Platform::WebPush])
    );
}

#[test]
fn state_patch_needs_a_field() {
    assert!(StatePatch::from_json(b"{}").is_err());
    let patch = StatePatch::from_json(br#"{"readState":"READ"}"#).unwrap();
    assert_eq!(patch.read_state, Some(ReadState::Read));
    let err = StatePatch::from_json(br#"{"userActionState":"gone"}"#).unwrap_err();
    assert_eq!(err.field, "userActionState");
}

/// A body whose payload is `entries` of encrypted content.
fn sealed(entries: &serde_json::Value) -> serde_json::Value {
    json!({"targetHostName": "contoso.com", "payload": {"encryptedContent": entries}})
}

/// A well-formed `aes128gcm` body for a fresh device.
fn ciphertext() -> String {
    let keys = crate::protocol::sealed::DeviceKeys::generate().unwrap();
    keys.public()
        .seal(br#"{"visualContent":{"title":"t"}}"#)
        .unwrap()
}

#[test]
fn encrypted_content_replaces_the_payload_and_each_entry_is_checked() {
    let good = ciphertext();
    let content = check(&sealed(&json!([{"unsid": "u1", "content": good}]))).unwrap();
    assert!(content.payload.is_sealed());
    assert!(content.size() > good.len());
    let many: Vec<_> = (0..32)
        .map(|n| json!({"unsid": format!("u{n}"), "content": good}))
        .collect();
    assert!(check(&sealed(&json!(many))).is_ok());

    let entry = |unsid: serde_json::Value, content: serde_json::Value| json!({"unsid": unsid, "content": content});
    let too_many: Vec<_> = (0..33)
        .map(|n| entry(json!(format!("u{n}")), json!(good)))
        .collect();
    let short = &good[..100];
    let cases: Vec<(serde_json::Value, &str, &str)> = vec![
        (sealed(&json!([])), "payload.encryptedContent", "1 to 32"),
        (
            sealed(&json!(too_many)),
            "payload.encryptedContent",
            "got 33",
        ),
        (
            sealed(&json!([{"content": good}])),
            "payload.encryptedContent[0].unsid",
            "required",
        ),
        (
            sealed(&json!([entry(json!("u1"), json!(good)), {"unsid": "u2"}])),
            "payload.encryptedContent[1].content",
            "required",
        ),
        (
            sealed(&json!([
                entry(json!("u1"), json!(good)),
                entry(json!("u1"), json!(good))
            ])),
            "payload.encryptedContent[1].unsid",
            "earlier entry",
        ),
        (
            sealed(&json!([entry(json!("a\u{7}b"), json!(good))])),
            "payload.encryptedContent[0].unsid",
            "control",
        ),
        (
            sealed(&json!([entry(json!("u1"), json!("not base64!"))])),
            "payload.encryptedContent[0].content",
            "base64url",
        ),
        (
            sealed(&json!([entry(json!("u1"), json!(short))])),
            "payload.encryptedContent[0].content",
            "bytes",
        ),
        (
            sealed(&json!([entry(json!("u1"), json!("A".repeat(40_000)))])),
            "payload.encryptedContent[0].content",
            "bytes",
        ),
        (
            json!({"targetHostName": "contoso.com", "payload": {
                "visualContent": {"title": "in the clear"},
                "encryptedContent": [entry(json!("u1"), json!(good))]}}),
            "payload.encryptedContent",
            "replaces visualContent",
        ),
    ];
    for (body, field, words) in cases {
        let err = check(&body).expect_err(&body.to_string()[..80.min(body.to_string().len())]);
        assert_eq!(err.field, field, "{err}");
        assert!(err.message.contains(words), "{err}");
    }
}
