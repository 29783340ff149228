//! Bad requests: every validation rule answered 400 naming the field, 401 / 403 / 413 /
//! 415, and compressed bodies.

use reqwest::Method;
use std::io::Write;
use std::time::Duration;

use serde_json::{Value, json};
use tidings::protocol::{DeviceId, Timestamp, UserId};
use tidings::service::auth::Claims;

use crate::helpers::{Event, TestService, note};

async fn error_of(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[tokio::test]
async fn each_validation_rule_is_answered_400_with_the_field_named() {
    let service = TestService::start().await;
    let (app, device, unsid) = service.alice_and_contoso().await;
    let long = |n: usize| json!("x".repeat(n));
    let mut cases: Vec<(Value, &str)> = Vec::new();
    let mut set = |key: &str, value: Value, field: &'static str| {
        let mut body = note("contoso.com", "t");
        body[key] = value;
        cases.push((body, field));
    };
    set("appNotificationId", json!(""), "appNotificationId");
    set("appNotificationId", long(257), "appNotificationId");
    set("groupName", long(257), "groupName");
    set("displayTimeToLive", json!(0), "displayTimeToLive");
    set("displayTimeToLive", json!("2592001"), "displayTimeToLive");
    set("displayTimeToLive", json!("a minute"), "displayTimeToLive");
    set(
        "expirationDateTime",
        json!("2001-01-01T00:00:00Z"),
        "expirationDateTime",
    );
    set("expirationDateTime", json!("soon"), "expirationDateTime");
    set("priority", json!("urgent"), "priority");
    set(
        "targetPolicy",
        json!({"platformTypes": ["beos"]}),
        "targetPolicy.platformTypes",
    );
    set("payload", json!({}), "payload");
    set(
        "payload",
        json!({"visualContent": {"title": ""}}),
        "payload.visualContent.title",
    );
    set(
        "payload",
        json!({"visualContent": {"title": "x".repeat(513)}}),
        "payload.visualContent.title",
    );
    set(
        "payload",
        json!({"visualContent": {"title": "t", "body": "x".repeat(4097)}}),
        "payload.visualContent.body",
    );
    set(
        "payload",
        json!({"rawContent": "x".repeat(16 * 1024 + 1)}),
        "payload.rawContent",
    );
    set("targetHostName", json!("bad host!"), "targetHostName");
    set("appNotificationId", json!("a\u{0}b"), "appNotificationId");
    set(
        "appNotificationId",
        json!("a\u{1b}[2Jb"),
        "appNotificationId",
    );
    set("groupName", json!("g\u{9b}1m"), "groupName");
    set(
        "targetPolicy",
        json!({"platformTypes": []}),
        "targetPolicy.platformTypes",
    );
    cases.push((json!({"payload": {"rawContent": "r"}}), "targetHostName"));
    for (body, field) in cases {
        let (status, code, message) = error_of(service.post(&app, &unsid, &body).await).await;
        assert_eq!(status, 400, "{field}: {message}");
        assert_eq!(code, "invalidRequest");
        assert!(
            message.starts_with(&format!("{field}:")),
            "{field} not named in {message:?}"
        );
    }
    let raw = service
        .as_app(
            Method::POST,
            format!("{}/beta/me/notifications", service.url),
            &app,
            &unsid,
        )
        .header("Content-Type", "application/json")
        .body("{\"targetHostName\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(raw).await.0, 400);
    let no_unsid = service
        .http
        .post(format!("{}/beta/me/notifications", service.url))
        .bearer_auth(&app.token)
        .json(&note("contoso.com", "t"))
        .send()
        .await
        .unwrap();
    let (status, _, message) = error_of(no_unsid).await;
    assert_eq!(status, 400);
    assert!(message.starts_with("X-UNS-ID:"), "{message}");
    assert!(
        device.feed(0).await.is_empty(),
        "nothing invalid was stored"
    );
    service.stop().await;
}

#[tokio::test]
async fn a_wrong_method_gets_405_with_allow_and_the_graph_error_body() {
    let service = TestService::start().await;
    let response = service
        .http
        .put(format!("{}/beta/me/notifications", service.url))
        .send()
        .await
        .unwrap();
    let allow = response.headers()["allow"].to_str().unwrap().to_owned();
    assert!(
        allow.contains("POST") && allow.contains("DELETE"),
        "{allow}"
    );
    let (status, code, _) = error_of(response).await;
    assert_eq!((status, code.as_str()), (405, "methodNotAllowed"));
    service.stop().await;
}

#[tokio::test]
async fn tokens_missing_garbage_or_expired_get_401() {
    let service = TestService::start().await;
    let (app, _, unsid) = service.alice_and_contoso().await;
    let url = format!("{}/beta/me/notifications", service.url);
    let body = note("contoso.com", "t");

    let missing = service
        .http
        .post(&url)
        .header("X-UNS-ID", &unsid)
        .json(&body)
        .send()
        .await
        .unwrap();
    let garbage = service
        .http
        .post(&url)
        .bearer_auth("at.garbage.token")
        .header("X-UNS-ID", &unsid)
        .json(&body)
        .send()
        .await
        .unwrap();
    let two_hours_ago = Timestamp::now().plus(Duration::ZERO).as_millis() - 2 * 3600 * 1000;
    let expired_token = service.state.signer.issue(
        Claims::App {
            client_id: tidings::protocol::ClientId::new(app.client_id.clone()),
        },
        Timestamp::from_millis(two_hours_ago),
    );
    let expired = service
        .http
        .post(&url)
        .bearer_auth(&expired_token)
        .header("X-UNS-ID", &unsid)
        .json(&body)
        .send()
        .await
        .unwrap();
    for (what, response) in [
        ("missing", missing),
        ("garbage", garbage),
        ("expired", expired),
    ] {
        assert_eq!(response.headers()["www-authenticate"], "Bearer", "{what}");
        let (status, code, message) = error_of(response).await;
        assert_eq!(
            (status, code.as_str()),
            (401, "unauthenticated"),
            "{what}: {message}"
        );
    }

    service.stop().await;
}

#[tokio::test]
async fn revoked_or_unknown_devices_get_401() {
    let service = TestService::start().await;
    let user = service.add_user("alice").await;
    let app = service.add_app("contoso.com").await;
    let device = service.sign_in("alice", "linux").await;
    let unsid = device.subscribe("contoso.com").await;
    let body = note("contoso.com", "t");
    let feed_url = format!("{}/v1/me/notifications", service.url);
    let ok = service
        .http
        .get(&feed_url)
        .bearer_auth(&device.token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    service
        .admin("device.revoke", json!({"id": device.id}))
        .await
        .unwrap();
    let revoked = service
        .http
        .get(&feed_url)
        .bearer_auth(&device.token)
        .send()
        .await
        .unwrap();
    let (status, _, message) = error_of(revoked).await;
    assert_eq!(status, 401);
    assert!(message.contains("revoked"), "{message}");
    let refresh = service
        .http
        .post(format!("{}/oauth2/v2.0/token", service.url))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", device.refresh.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refresh.status(), 401, "a revoked device cannot refresh");
    let forged = service.state.signer.issue(
        Claims::Device {
            device: DeviceId::new("no-such-device"),
            user: UserId::new(user),
        },
        Timestamp::now(),
    );
    let unknown = service
        .http
        .get(&feed_url)
        .bearer_auth(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 401);
    let gone = service.post(&app, &unsid, &body).await;
    assert_eq!(gone.status(), 404, "a revoked device's UNSIDs are gone");
    service.stop().await;
}

/// `grant_type=refresh_token` with `refresh`: the status and the answer.
async fn refresh_grant(service: &TestService, refresh: &str) -> (u16, Value) {
    let response = service
        .http
        .post(format!("{}/oauth2/v2.0/token", service.url))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh)])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_replaced_one_used_again_revokes_the_device() {
    let service = TestService::start().await;
    service.add_user("alice").await;
    let device = service.sign_in("alice", "linux").await;
    let (status, first) = refresh_grant(&service, &device.refresh).await;
    assert_eq!(status, 200);
    let second_token = first["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_token, device.refresh, "each use replaces the token");
    let (status, second) = refresh_grant(&service, &second_token).await;
    assert_eq!(status, 200);
    // The answer was lost: the token just replaced is taken once more, for a while.
    let (status, again) = refresh_grant(&service, &second_token).await;
    assert_eq!(status, 200, "{again}");
    let third_token = again["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(third_token, second["refresh_token"].as_str().unwrap());
    let mut channel = device.channel(0).await;
    channel.until_synced().await;
    // The first token again: someone holds a copy. The device is signed out.
    let (status, answer) = refresh_grant(&service, &device.refresh).await;
    assert_eq!(status, 401);
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("already replaced"), "{message}");
    assert_eq!(service.device_info(&device.id).await["revoked"], true);
    assert!(matches!(
        channel.next_event().await,
        Event::Closed(Some(1008))
    ));
    let (status, _) = refresh_grant(&service, &third_token).await;
    assert_eq!(status, 401, "even the newest token is dead with its device");
    service.stop().await;
}

#[tokio::test]
async fn an_unused_refresh_token_expires_and_devices_per_user_are_capped() {
    let service = TestService::start_with(|settings| {
        settings.refresh_token_ttl = Duration::from_secs(3600);
        settings.max_devices_per_user = 2;
    })
    .await;
    service.add_user("alice").await;
    let device = service.sign_in("alice", "linux").await;
    // An hour passes, unused: the service's clock is moved, nothing sleeps.
    service.state.clock.advance(Duration::from_secs(3600));
    let (status, answer) = refresh_grant(&service, &device.refresh).await;
    assert_eq!(status, 401);
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("expired"), "{message}");
    service.sign_in("alice", "linux").await;
    let third = service
        .http
        .post(format!("{}/oauth2/v2.0/token", service.url))
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "alice-pw"),
        ])
        .send()
        .await
        .unwrap();
    let (status, _, message) = error_of(third).await;
    assert_eq!(status, 403);
    assert!(message.contains("device revoke"), "{message}");
    service.stop().await;
}

#[tokio::test]
async fn refresh_and_bad_sign_ins() {
    let service = TestService::start().await;
    service.add_user("alice").await;
    let device = service.sign_in("alice", "linux").await;
    let token_url = format!("{}/oauth2/v2.0/token", service.url);
    let refreshed = service
        .http
        .post(&token_url)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", device.refresh.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
    let body: Value = refreshed.json().await.unwrap();
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["device_id"], device.id.as_str());
    let cases: Vec<(Vec<(&str, &str)>, u16)> = vec![
        (
            vec![
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "wrong"),
            ],
            401,
        ),
        (
            vec![
                ("grant_type", "password"),
                ("username", "mallory"),
                ("password", "x"),
            ],
            401,
        ),
        (vec![("grant_type", "password"), ("username", "alice")], 400),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "x"),
                ("client_secret", "y"),
            ],
            401,
        ),
        (
            vec![("grant_type", "refresh_token"), ("refresh_token", "rt.x.y")],
            401,
        ),
        (vec![("grant_type", "implicit")], 400),
        (
            vec![
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "alice-pw"),
                ("platform", "amiga"),
            ],
            400,
        ),
    ];
    for (form, status) in cases {
        let response = service
            .http
            .post(&token_url)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{form:?}");
    }
    service.stop().await;
}

#[tokio::test]
async fn an_app_of_another_host_gets_403() {
    let service = TestService::start().await;
    service.add_user("alice").await;
    let contoso = service.add_app("contoso.com").await;
    let fabrikam = service.add_app("fabrikam.com").await;
    let device = service.sign_in("alice", "linux").await;
    let unsid = device.subscribe("contoso.com").await;
    let (status, code, _) = error_of(
        service
            .post(&fabrikam, &unsid, &note("fabrikam.com", "t"))
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (403, "forbidden"));
    let (status, _, message) = error_of(
        service
            .post(&contoso, &unsid, &note("fabrikam.com", "t"))
            .await,
    )
    .await;
    assert_eq!(status, 403, "body host differs from the app's: {message}");
    let device_token_on_app_route = service
        .http
        .post(format!("{}/beta/me/notifications", service.url))
        .bearer_auth(&device.token)
        .header("X-UNS-ID", &unsid)
        .json(&note("contoso.com", "t"))
        .send()
        .await
        .unwrap();
    assert_eq!(device_token_on_app_route.status(), 403);
    assert!(device.feed(0).await.is_empty());
    service.stop().await;
}

#[tokio::test]
async fn size_type_and_encoding_limits() {
    let service = TestService::start().await;
    let (app, device, unsid) = service.alice_and_contoso().await;
    let url = format!("{}/beta/me/notifications", service.url);
    let send = |body: Vec<u8>, content_type: &'static str, encoding: Option<&'static str>| {
        let mut request = service
            .as_app(Method::POST, &url, &app, &unsid)
            .header("Content-Type", content_type)
            .body(body);
        if let Some(encoding) = encoding {
            request = request.header("Content-Encoding", encoding);
        }
        request.send()
    };
    let mut big = note("contoso.com", "big");
    big["padding"] = json!("x".repeat(70 * 1024));
    let big = serde_json::to_vec(&big).unwrap();
    assert_eq!(
        send(big.clone(), "application/json", None)
            .await
            .unwrap()
            .status(),
        413
    );
    // 70 KiB of JSON compresses to well under 64 KiB: the limit holds after decompression.
    let bomb = gzip(&big);
    assert!(bomb.len() < 64 * 1024);
    assert_eq!(
        send(bomb, "application/json", Some("gzip"))
            .await
            .unwrap()
            .status(),
        413
    );

    // Real bombs: 100 MiB of zeros in about 100 KiB, in each encoding. Bounded
    // inflation stops at the limit (413); unbounded inflation would take 100 MiB.
    let zeros = vec![0u8; 100 << 20];
    for (name, bomb) in [
        ("gzip", gzip(&zeros)),
        ("deflate", zlib(&zeros)),
        ("deflate", raw_deflate(&zeros)),
    ] {
        assert!(bomb.len() < 64 * 1024 * 4, "{name}: {}", bomb.len());
        let status = send(
            bomb[..bomb.len().min(60 * 1024)].to_vec(),
            "application/json",
            Some(name),
        )
        .await
        .unwrap()
        .status();
        assert_eq!(status, 413, "{name}");
    }
    // A chunked body (no Content-Length) over the limit.
    let chunks =
        futures_util::stream::iter((0..20).map(|_| Ok::<_, std::io::Error>(vec![b' '; 8 * 1024])));
    let chunked = service
        .as_app(Method::POST, &url, &app, &unsid)
        .header("Content-Type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(chunked.status(), 413);

    let small = serde_json::to_vec(&note("contoso.com", "gzipped")).unwrap();
    assert_eq!(
        send(small.clone(), "text/plain", None)
            .await
            .unwrap()
            .status(),
        415
    );
    assert_eq!(
        send(small.clone(), "application/json", Some("br"))
            .await
            .unwrap()
            .status(),
        415
    );
    let gz = send(
        gzip(&small),
        "application/json; charset=utf-8",
        Some("gzip"),
    )
    .await
    .unwrap();
    assert_eq!(gz.status(), 201);
    let deflated = send(zlib(&small), "application/json", Some("deflate"))
        .await
        .unwrap();
    assert_eq!(deflated.status(), 201);
    let broken = send(
        b"not gzip at all".to_vec(),
        "application/json",
        Some("gzip"),
    )
    .await
    .unwrap();
    assert_eq!(broken.status(), 400);
    assert_eq!(device.feed(0).await.len(), 2);
    service.stop().await;
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn raw_deflate(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn a_nul_character_anywhere_is_answered_400_on_every_store() {
    // PostgreSQL's text columns cannot hold NUL: without the check at the edge these
    // were 500s there (error 22021), some before any authentication.
    let service = TestService::start().await;
    let (app, device, unsid) = service.alice_and_contoso().await;
    let base = &service.url;
    let http = &service.http;
    let form = |pairs: &[(&str, &str)]| {
        http.post(format!("{base}/oauth2/v2.0/token"))
            .form(&pairs.to_vec())
    };
    let refresh = format!("{}%00", device.refresh);
    let cases: Vec<(&str, reqwest::RequestBuilder)> = vec![
        (
            "an id in the path (app)",
            service.as_app(
                Method::GET,
                format!("{base}/beta/me/notifications/a%00b"),
                &app,
                &unsid,
            ),
        ),
        (
            "an id in the path (device)",
            http.patch(format!("{base}/v1/me/notifications/a%00b"))
                .bearer_auth(&device.token)
                .json(&json!({"readState": "read"})),
        ),
        (
            "a group name",
            service.as_app(
                Method::DELETE,
                format!("{base}/beta/me/notifications?groupName=g%00"),
                &app,
                &unsid,
            ),
        ),
        (
            "a client id",
            form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "id\0"),
                ("client_secret", "s"),
            ]),
        ),
        (
            "a user name",
            form(&[
                ("grant_type", "password"),
                ("username", "al\0ice"),
                ("password", "pw"),
            ]),
        ),
        (
            "a device name",
            form(&[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "pw"),
                ("device_name", "lap\0top"),
            ]),
        ),
        (
            "a device id inside a refresh token",
            http.post(format!("{base}/oauth2/v2.0/token"))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(format!("grant_type=refresh_token&refresh_token={refresh}")),
        ),
        (
            "a web sign-in",
            http.post(format!("{base}/web/session"))
                .header("Origin", base.as_str())
                .json(&json!({"username": "al\u{0}ice", "password": "pw"})),
        ),
        (
            "a device id to revoke",
            http.delete(format!("{base}/v1/me/devices/d%00"))
                .bearer_auth(&device.token),
        ),
    ];
    for (what, request) in cases {
        let (status, code, message) = error_of(request.send().await.unwrap()).await;
        assert_eq!(
            (status, code.as_str()),
            (400, "invalidRequest"),
            "{what}: {message}"
        );
        assert!(message.contains("NUL"), "{what}: {message}");
    }
}
