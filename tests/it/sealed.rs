//! Web Push message encryption (`tidings::protocol::sealed`) against an independent
//! implementation: Python's `http_ece` from PyPI, in `target/python`
//! (`scripts/python-env.sh`, run by the test command). Content it encrypts for a
//! device's keys opens there, in one record and in several; content tidings encrypts
//! opens in `http_ece`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::json;
use tidings::protocol::sealed::{DeviceKeys, SealError};

use tidings::agent::store::LocalChange;
use tidings::agent::toast::Presenter;
use tidings::protocol::{Notification, NotificationId, ReadState, StatePatch};

use crate::helpers::{TestService, wait_until};
use crate::test_agent::TestAgent;

/// The environment's Python; a missing one fails the test and says how to make it.
fn python() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/python/bin/python");
    assert!(
        path.exists(),
        "{} is missing: run ./scripts/python-env.sh (the test command does)",
        path.display()
    );
    path
}

/// Runs `script` with `input` on stdin; its stdout.
fn run_python(script: &str, input: &str) -> String {
    let mut child = Command::new(python())
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Encrypts stdin's message (line 3) for p256dh and auth (lines 1 and 2) with record
/// size `rs` (line 4), as a Web Push application server does.
const ENCRYPT: &str = r#"
import base64, sys, http_ece
from cryptography.hazmat.primitives.asymmetric import ec
def b64d(s): return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
p256dh, auth, message, rs = sys.stdin.read().split("\n")[:4]
sender = ec.generate_private_key(ec.SECP256R1())
body = http_ece.encrypt(message.encode(), private_key=sender, dh=b64d(p256dh),
                        auth_secret=b64d(auth), version="aes128gcm", rs=int(rs))
print(base64.urlsafe_b64encode(body).decode())
"#;

/// Decrypts stdin's body (line 3) with the device's private scalar and auth secret
/// (lines 1 and 2, base64url), as a user agent does.
const DECRYPT: &str = r#"
import base64, sys, http_ece
from cryptography.hazmat.primitives.asymmetric import ec
def b64d(s): return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
scalar, auth, body = sys.stdin.read().split("\n")[:3]
device = ec.derive_private_key(int.from_bytes(b64d(scalar), "big"), ec.SECP256R1())
print(http_ece.decrypt(b64d(body), private_key=device, auth_secret=b64d(auth),
                       version="aes128gcm").decode())
"#;

#[test]
fn content_sealed_by_http_ece_opens_on_the_device_in_one_record_or_several() {
    let keys = DeviceKeys::generate().unwrap();
    let public = keys.public();
    let message = r#"{"visualContent":{"title":"Your code is 271828","body":"ünïcödé ✓"}}"#;
    for rs in [4096, 40] {
        let body = run_python(
            ENCRYPT,
            &format!("{}\n{}\n{message}\n{rs}\n", public.p256dh, public.auth),
        );
        tidings::protocol::sealed::check_content(&body).unwrap();
        assert_eq!(keys.open(&body).unwrap(), message.as_bytes(), "rs {rs}");
        // Another device of the same user cannot read it.
        let other = DeviceKeys::generate().unwrap();
        assert!(matches!(other.open(&body), Err(SealError::Decrypt(_))));
    }
}

#[test]
fn content_tidings_seals_opens_in_http_ece() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let keys = DeviceKeys::generate().unwrap();
    let message = r#"{"rawContent":"a backend's own data"}"#;
    let body = keys.public().seal(message.as_bytes()).unwrap();
    let stored = keys.to_bytes();
    let opened = run_python(
        DECRYPT,
        &format!(
            "{}\n{}\n{body}\n",
            b64.encode(&stored[..32]),
            b64.encode(&stored[32..])
        ),
    );
    assert_eq!(opened, message);
}

/// Every file the service side keeps: its data directory, and with PostgreSQL the
/// cluster's files after a checkpoint (so what the database holds is on disk).
async fn service_side_files(service: &TestService) -> Vec<(PathBuf, Vec<u8>)> {
    let mut roots = vec![service.dir.path().to_owned()];
    if let Some(url) = crate::pg::enabled()
        .then(|| std::fs::read_to_string(service.dir.path().join("database-url")).ok())
        .flatten()
    {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client.batch_execute("CHECKPOINT").await.unwrap();
        roots.push(crate::pg::shared().dir.path().to_owned());
    }
    let mut files = Vec::new();
    while let Some(dir) = roots.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                roots.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                files.push((path, bytes));
            }
        }
    }
    files
}

fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Encrypts `message` for `keys` with Python's http_ece.
fn sealed_by_python(keys: &DeviceKeys, message: &str) -> String {
    let public = keys.public();
    run_python(
        ENCRYPT,
        &format!("{}\n{}\n{message}\n4096\n", public.p256dh, public.auth),
    )
}

#[tokio::test]
async fn the_service_carries_encrypted_content_it_cannot_read_and_refuses_bad_entries() {
    let service = TestService::start().await;
    let (app, laptop, unsid) = service.alice_and_contoso().await;
    let phone = service.sign_in("alice", "android").await;
    let phone_unsid = phone.subscribe("contoso.com").await;
    service.add_user("bob").await;
    let bobs = service.sign_in("bob", "linux").await;
    let bobs_unsid = bobs.subscribe("contoso.com").await;
    let (laptop_keys, phone_keys) = (
        DeviceKeys::generate().unwrap(),
        DeviceKeys::generate().unwrap(),
    );
    let secret = format!("one-time code {}", std::process::id() * 7919);
    let cleartext = json!({"visualContent": {"title": secret}}).to_string();
    let entries = json!([
        {"unsid": unsid, "content": sealed_by_python(&laptop_keys, &cleartext)},
        {"unsid": phone_unsid, "content": sealed_by_python(&phone_keys, &cleartext)},
    ]);
    let body = json!({"targetHostName": "contoso.com", "payload": {"encryptedContent": entries}});
    let mut channel = phone.channel(0).await;
    channel.until_synced().await;
    let created = service.post_ok(&app, &unsid, &body).await;
    assert!(created.content.payload.visual_content.is_none());

    // The phone's channel carries both entries as sent; only the phone's opens for it.
    let (_, delivered) = channel.next_change().await;
    let carried = delivered.content.payload.encrypted_content.unwrap();
    assert_eq!(carried.len(), 2);
    assert_eq!(carried[1].unsid.as_str(), phone_unsid);
    assert_eq!(
        phone_keys.open(&carried[1].content).unwrap(),
        cleartext.as_bytes()
    );
    assert!(phone_keys.open(&carried[0].content).is_err());

    // Entries that no device of this user can open are refused, naming the entry.
    let good = sealed_by_python(&laptop_keys, &cleartext);
    let refused = [
        (
            json!([{"unsid": unsid, "content": good}, {"unsid": bobs_unsid, "content": good}]),
            "payload.encryptedContent[1].unsid",
        ),
        (
            json!([{"unsid": "no-such-unsid", "content": good}]),
            "payload.encryptedContent[0].unsid",
        ),
        (
            json!([{"unsid": unsid, "content": &good[..90]}]),
            "payload.encryptedContent[0].content",
        ),
        (
            json!([{"unsid": unsid, "content": "A".repeat(40_000)}]),
            "payload.encryptedContent[0].content",
        ),
    ];
    for (entries, field) in refused {
        let body =
            json!({"targetHostName": "contoso.com", "payload": {"encryptedContent": entries}});
        let response = service.post(&app, &unsid, &body).await;
        assert_eq!(response.status(), 400);
        let error: serde_json::Value = response.json().await.unwrap();
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(field), "{message}");
    }
    drop(laptop);

    // The cleartext is nowhere on the service side: not in its store, not in /metrics.
    let metrics = service
        .http
        .get(format!("{}/metrics", service.url))
        .send()
        .await
        .unwrap();
    assert!(!metrics.text().await.unwrap().contains(&secret));
    let files = service_side_files(&service).await;
    assert!(
        files
            .iter()
            .any(|(_, bytes)| holds(bytes, carried[1].content.as_bytes())
                || holds(bytes, &ciphertext_bytes(&carried[1].content))),
        "the ciphertext should be stored somewhere: is the scan looking in the right place?"
    );
    for (path, bytes) in &files {
        assert!(
            !holds(bytes, secret.as_bytes()),
            "the cleartext is in {}",
            path.display()
        );
    }
    service.stop().await;
}

fn ciphertext_bytes(content: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(content.trim_end_matches('='))
        .unwrap()
}

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
            let body = run_python(
                ENCRYPT,
                &format!("{}\n{}\n{cleartext}\n4096\n", keys.p256dh, keys.auth),
            );
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

    // Content for the first device made with another device's keys: counted, not shown.
    let wrong = run_python(
        ENCRYPT,
        &format!(
            "{}\n{}\n{cleartext}\n4096\n",
            subs[1].1.p256dh, subs[1].1.auth
        ),
    );
    let body = json!({"targetHostName": "contoso.com", "payload": {"encryptedContent": [
        {"unsid": subs[0].0.unsid, "content": wrong}]}});
    let refused = service.post_ok(&app, subs[0].0.unsid.as_str(), &body).await;
    let kept = stored_on(&agents[0], &refused.id).await;
    assert!(kept.content.payload.is_sealed());
    assert_eq!(agents[0].handle.link().unopened_count(), 1);
    assert!(!agents[0].recorder.is_shown(&refused.id));
    for agent in agents {
        agent.stop().await;
    }
    service.stop().await;
}
