//! Agents open what is encrypted for them, show it and sync its state; a device with
//! no entry keeps it sealed; wrong keys are counted, never shown.

use serde_json::json;
use tidings::agent::store::LocalChange;
use tidings::agent::toast::Presenter;
use tidings::protocol::sealed::PublicKeys;
use tidings::protocol::{Notification, NotificationId, ReadState, StatePatch};

use super::{base64url, ciphertext, sealed_by_python};
use crate::helpers::{TestService, wait_until};
use crate::test_agent::TestAgent;

/// The notification `id` as `agent` stores it, once it has it.
async fn stored_on(agent: &TestAgent, id: &NotificationId) -> Notification {
    wait_until(&format!("the agent stores {id}"), || async {
        agent.handle.store().get(id).unwrap().is_some()
    })
    .await;
    agent
        .handle
        .store()
        .get(id)
        .unwrap()
        .unwrap()
        .to_notification()
}

#[tokio::test]
async fn encrypted_for_two_devices_each_agent_shows_the_cleartext_and_a_third_cannot() {
    let service = TestService::start().await;
    service.add_user("alice").await;
    let app = service.add_app("contoso.com").await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut agents = Vec::new();
    let mut subs = Vec::new();
    for (dir, platform) in dirs.iter().zip(["linux", "windows", "linux"]) {
        let device = service.sign_in("alice", platform).await;
        let agent = TestAgent::start(&service.url, &device, dir.path());
        subs.push(agent.handle.subscribe("contoso.com").await.unwrap());
        agents.push(agent);
    }
    // The backend knows the first two devices' keys (handed to it by a local app).
    let secret = format!("Your code is {}", std::process::id() % 1_000_000);
    let cleartext = json!({"visualContent": {"title": secret, "body": "ünïcödé"}}).to_string();
    let entries: Vec<_> = subs[..2]
        .iter()
        .map(|(sub, keys)| {
            let body = sealed_by_python(keys, &cleartext);
            json!({"unsid": sub.unsid, "content": body})
        })
        .collect();
    let body = json!({"targetHostName": "contoso.com", "payload": {"encryptedContent": entries}});
    let created = service.post_ok(&app, subs[0].0.unsid.as_str(), &body).await;

    for agent in &agents[..2] {
        let stored = stored_on(agent, &created.id).await;
        let payload = &stored.content.payload;
        assert_eq!(payload.visual_content.as_ref().unwrap().title, secret);
        assert!(payload.is_encrypted() && !payload.is_sealed());
        wait_until("its toast", || async {
            agent.recorder.is_shown(&created.id)
        })
        .await;
    }
    let third = stored_on(&agents[2], &created.id).await;
    assert!(third.content.payload.is_sealed(), "stored as it came");
    assert!(third.content.payload.visual_content.is_none());
    assert!(
        !agents[2].recorder.is_shown(&created.id),
        "no toast for what it cannot read"
    );
    assert_eq!(
        agents[2].handle.link().unopened_count(),
        0,
        "not a failure: not for it"
    );

    // A read on one device reaches the other, as for any notification.
    let read = LocalChange::Update(StatePatch {
        read_state: Some(ReadState::Read),
        user_action_state: None,
    });
    agents[0]
        .handle
        .change(std::slice::from_ref(&created.id), read)
        .await
        .unwrap();
    wait_until("the read reaches the second device", || async {
        agents[1]
            .handle
            .store()
            .get(&created.id)
            .unwrap()
            .unwrap()
            .state
            .read_state
            == ReadState::Read
    })
    .await;
    let again = agents[1].handle.store().get(&created.id).unwrap().unwrap();
    assert_eq!(
        again.content.payload.visual_content.unwrap().title,
        secret,
        "the new version is opened too"
    );

    // What only the device can tell is wrong, the service passes on and the device
    // counts and never shows: made with another device's keys, with this device's key
    // but a wrong auth secret, a byte of the ciphertext changed, a record cut short.
    let good = ciphertext(&sealed_by_python(&subs[0].1, &cleartext));
    let mut tampered = good.clone();
    tampered[120] ^= 1;
    let wrong_auth = PublicKeys {
        auth: subs[1].1.auth.clone(),
        ..subs[0].1.clone()
    };
    let cases = [
        sealed_by_python(&subs[1].1, &cleartext),
        sealed_by_python(&wrong_auth, &cleartext),
        base64url(&tampered),
        base64url(&good[..good.len() - 5]),
    ];
    for (n, content) in cases.into_iter().enumerate() {
        let body = json!({"targetHostName": "contoso.com", "payload": {"encryptedContent": [
            {"unsid": subs[0].0.unsid, "content": content}]}});
        let refused = service.post_ok(&app, subs[0].0.unsid.as_str(), &body).await;
        let kept = stored_on(&agents[0], &refused.id).await;
        assert!(kept.content.payload.is_sealed());
        assert_eq!(agents[0].handle.link().unopened_count(), n as u64 + 1);
        assert!(!agents[0].recorder.is_shown(&refused.id));
    }
    for agent in agents {
        agent.stop().await;
    }
    service.stop().await;
}

/// The block of `docs/encryption.md` marked `<!-- tested: NAME -->`.
fn documented(name: &str) -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/encryption.md"))
        .unwrap();
    let marker = format!("<!-- tested: {name} -->");
    let after = &doc[doc.find(&marker).expect("the marked block") + marker.len()..];
    let start = after.find("```python\n").unwrap() + "```python\n".len();
    let end = after[start..].find("```").unwrap();
    after[start..start + end].to_owned()
}

#[tokio::test]
async fn the_documented_python_sender_reaches_the_agent_opened() {
    let service = TestService::start().await;
    service.add_user("alice").await;
    let app = service.add_app("contoso.com").await;
    let device = service.sign_in("alice", "linux").await;
    let dir = tempfile::tempdir().unwrap();
    let agent = TestAgent::start(&service.url, &device, dir.path());
    let (sub, keys) = agent.handle.subscribe("contoso.com").await.unwrap();
    let sub_json = json!({
        "unsid": sub.unsid, "targetHostName": sub.target_host_name, "keys": keys,
    })
    .to_string();
    let env = [
        ("SUB", sub_json.as_str()),
        ("SERVICE", service.url.as_str()),
        ("APP_TOKEN", app.token.as_str()),
    ];
    // Off the runtime: the in-process service must answer meanwhile.
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let status = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        super::run_python_with(&documented("python-sender"), "", &env)
    })
    .await
    .unwrap();
    assert_eq!(status, "201");
    wait_until("the agent stores it opened", || async {
        let history = agent.handle.store().history(10, None).unwrap();
        history.iter().any(|r| {
            r.content.payload.is_encrypted()
                && r.content
                    .payload
                    .visual_content
                    .as_ref()
                    .is_some_and(|v| v.title == "Your code is 271828")
        })
    })
    .await;
    agent.stop().await;
    service.stop().await;
}
