//! The agent against a hostile service: a stand-in written here with axum, since our own
//! service never sends what this one does (the one fake of its kind, at an edge no real
//! part reaches). It signs the agent in, then on its channel sends a change whose title
//! breaks the limits apps are held to, a frame far over the agent's limit, and valid
//! changes. The agent must store only the valid ones and keep its disk and memory
//! bounded, reconnecting after the oversized frame.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tidings::agent::Settings;

use crate::helpers::{TestService, note, wait_until};

/// A valid notification as the real service sends it, to derive the hostile ones from.
async fn template() -> Value {
    let service = TestService::start().await;
    let (app, device, unsid) = service.alice_and_contoso().await;
    service
        .post_ok(&app, &unsid, &note("contoso.com", "ok"))
        .await;
    let mut item = device.feed(0).await.remove(0);
    service.stop().await;
    item.as_object_mut().unwrap().remove("seq");
    item
}

fn change(template: &Value, seq: u64, id: &str, title: &str) -> String {
    let mut notification = template.clone();
    notification["id"] = json!(id);
    notification["payload"]["visualContent"]["title"] = json!(title);
    json!({"type": "change", "seq": seq, "notification": notification}).to_string()
}

/// `change`, with `edit` applied to its notification.
fn edited(template: &Value, seq: u64, id: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut notification = template.clone();
    notification["id"] = json!(id);
    edit(&mut notification);
    json!({"type": "change", "seq": seq, "notification": notification}).to_string()
}

/// The first connection's frames: what breaks the limits, among valid changes, and at
/// the end a frame over the agent's limit (which ends the link).
fn hostile_frames(template: &Value) -> Vec<String> {
    vec![
        change(template, 1, "too-long", &"x".repeat(600)),
        change(template, 2, "fine-1", "fine"),
        edited(template, 3, "fat-fallback", |n| {
            n["fallbackPolicy"] = json!({"padding": "p".repeat(480 * 1024)});
        }),
        edited(template, 4, "many-platforms", |n| {
            n["targetPolicy"] = json!({"platformTypes": vec!["linux"; 50_000]});
        }),
        edited(template, 5, "distant", |n| {
            n["payload"]["visualContent"]["title"] = json!("distant");
            n["expirationDateTime"] = json!("9999-12-31T00:00:00Z");
        }),
        change(
            template,
            u64::MAX,
            "end-of-time",
            "moves the cursor to the end",
        ),
        change(template, 6, "huge", &"y".repeat(2 << 20)),
    ]
}

#[tokio::test]
async fn an_agent_stores_nothing_a_hostile_service_sends_beyond_the_limits() {
    let template = template().await;
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    let app = Router::new()
        .route(
            "/oauth2/v2.0/token",
            post(|| async {
                Json(json!({"access_token": "at.x.y", "token_type": "Bearer", "expires_in": 3600}))
            }),
        )
        .route(
            "/v1/me/channel",
            get(move |upgrade: WebSocketUpgrade| {
                let template = template.clone();
                let attempt = counted.fetch_add(1, Ordering::SeqCst);
                async move {
                    upgrade.on_upgrade(move |mut socket| async move {
                        let frames = if attempt == 0 {
                            hostile_frames(&template)
                        } else {
                            vec![
                                change(&template, 6, "fine-2", "fine again"),
                                json!({"type": "synced", "seq": 6}).to_string(),
                            ]
                        };
                        for frame in frames {
                            if socket.send(Message::Text(frame.into())).await.is_err() {
                                return;
                            }
                        }
                        // Hold the channel open until the agent goes.
                        while let Some(Ok(_)) = futures_util::StreamExt::next(&mut socket).await {}
                    })
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::new(url, "rt.d.s", dir.path().to_owned());
    let agent = crate::test_agent::TestAgent::launch(settings);
    let handle = agent.handle.clone();
    wait_until("the agent stores the valid changes", || async {
        handle.store().len() == 3
    })
    .await;
    let titles: Vec<String> = handle
        .store()
        .history(10, None)
        .unwrap()
        .iter()
        .map(|n| {
            n.content
                .payload
                .visual_content
                .as_ref()
                .unwrap()
                .title
                .clone()
        })
        .collect();
    assert_eq!(titles, ["fine again", "distant", "fine"]);
    assert_eq!(
        handle.store().cursor().unwrap().0,
        6,
        "the cursor never jumped"
    );
    let distant = handle
        .store()
        .get(&tidings::protocol::NotificationId::new("distant"))
        .unwrap()
        .unwrap();
    let latest = tidings::protocol::Timestamp::now().plus(tidings::protocol::validate::MAX_EXPIRY);
    assert!(
        distant.content.expiration_date_time <= latest,
        "the expiry is clamped to the service's maximum"
    );
    assert!(
        connections.load(Ordering::SeqCst) >= 2,
        "the oversized frame ended the link and the agent came back"
    );
    agent.stop().await;
    server.abort();
}
