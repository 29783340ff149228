//! The caller's own devices and subscriptions (`/v1/me/devices`,
//! `/v1/me/subscriptions`): listed, revoked and ended by their user, and by nobody else.

use serde_json::Value;

use crate::helpers::{Device, TestService, note};

async fn delete(device: &Device, path: &str) -> u16 {
    device
        .http
        .delete(format!("{}{path}", device.url))
        .bearer_auth(&device.token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_user_lists_their_devices_and_revokes_one_but_not_someone_elses() {
    let service = TestService::start().await;
    service.add_user("alice").await;
    service.add_user("bob").await;
    let laptop = service.sign_in("alice", "linux").await;
    let desktop = service.sign_in("alice", "windows").await;
    let bobs = service.sign_in("bob", "linux").await;
    let mut channel = desktop.channel(0).await;
    // Connected once its channel is served (synced).
    channel.until_synced().await;

    let listed = laptop.get_json("/v1/me/devices").await;
    let devices = listed["value"].as_array().unwrap();
    assert_eq!(devices.len(), 2, "{listed}");
    let me = devices
        .iter()
        .find(|d| d["id"] == laptop.id.as_str())
        .unwrap();
    assert_eq!(me["current"], true);
    assert_eq!(me["name"], "alice-linux");
    assert_eq!(me["platform"], "linux");
    assert!(me["createdDateTime"].is_string());
    let other = devices
        .iter()
        .find(|d| d["id"] == desktop.id.as_str())
        .unwrap();
    assert_eq!(
        (other["current"].clone(), other["connected"].clone()),
        (false.into(), true.into())
    );

    assert_eq!(
        delete(&laptop, &format!("/v1/me/devices/{}", bobs.id)).await,
        404
    );
    assert_eq!(
        bobs.get_json("/v1/me/devices").await["value"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        delete(&laptop, &format!("/v1/me/devices/{}", desktop.id)).await,
        204
    );
    assert_eq!(
        delete(&laptop, &format!("/v1/me/devices/{}", desktop.id)).await,
        404
    );
    let refused = desktop
        .http
        .get(format!("{}/v1/me/notifications", desktop.url))
        .bearer_auth(&desktop.token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let left = laptop.get_json("/v1/me/devices").await;
    assert_eq!(left["value"].as_array().unwrap().len(), 1, "{left}");
}

#[tokio::test]
async fn a_user_ends_a_subscription_and_its_app_is_refused_from_then_on() {
    let service = TestService::start().await;
    let (app, laptop, unsid) = service.alice_and_contoso().await;
    service.add_user("bob").await;
    let bobs = service.sign_in("bob", "linux").await;

    let listed = laptop.get_json("/v1/me/subscriptions").await;
    assert_eq!(listed["value"][0]["id"], unsid.as_str(), "{listed}");
    assert_eq!(listed["value"][0]["targetHostName"], "contoso.com");
    assert_eq!(listed["value"][0]["deviceId"], laptop.id.as_str());
    assert_eq!(listed["value"][0]["deviceName"], "alice-linux");
    assert_eq!(
        bobs.get_json("/v1/me/subscriptions").await["value"],
        Value::Array(vec![])
    );

    assert_eq!(
        delete(&bobs, &format!("/v1/me/subscriptions/{unsid}")).await,
        404
    );
    service
        .post_ok(&app, &unsid, &note("contoso.com", "still subscribed"))
        .await;
    assert_eq!(
        delete(&laptop, &format!("/v1/me/subscriptions/{unsid}")).await,
        204
    );
    let refused = service
        .post(&app, &unsid, &note("contoso.com", "after"))
        .await;
    assert_eq!(refused.status(), 404);
    assert_eq!(
        laptop.get_json("/v1/me/subscriptions").await["value"],
        Value::Array(vec![])
    );
    // Subscribing again gives a fresh UNSID.
    assert_ne!(laptop.subscribe("contoso.com").await, unsid);
}
